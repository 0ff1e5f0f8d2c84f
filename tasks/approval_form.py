"""The typed form finance fills in to resume a paused approval run (Prefect ``RunInput``).

The Prefect UI renders it from its JSON schema (``approved`` as a toggle, text areas for the rest) and
the server validates input against that schema before resuming, so an invalid e-mail keeps the run
paused with the field marked. The rule "a comment is required to reject" cannot be expressed in the
schema; :func:`decision_problem` checks it and the approval flow asks again instead of failing.
``renkei approvals decide`` submits exactly the same input through the same resume API.
"""

from __future__ import annotations

from prefect.input import RunInput
from pydantic import Field

EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


class ApprovalDecision(RunInput):
    approved: bool = Field(description="承認する (on) / 却下する (off) — approve or reject")
    approver: str = Field(description="承認者のメールアドレス — your e-mail", pattern=EMAIL_PATTERN, max_length=254)
    comment: str = Field(default="", description="コメント (却下の場合は必須) — required to reject", max_length=2000)


def decision_problem(decision: ApprovalDecision) -> str | None:
    """Why a submitted decision cannot be accepted, or ``None``."""
    if not decision.approved and not decision.comment.strip():
        return "a comment is required to reject"
    return None


def approval_key_tag(key: str) -> str:
    """The Prefect tag that makes an approval run findable by its ledger key (deterministic reference):
    a claim recovered after a kill between ``run_deployment`` and the ledger commit looks it up instead
    of starting a second run."""
    return f"renkei-approval-key:{key.removeprefix('approval:')}"


def find_run_by_tag(tag: str) -> str | None:
    """The id of a flow run carrying ``tag`` (an approval an interrupted attempt started), or None."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[tag])), limit=1)
    return str(runs[0].id) if runs else None
