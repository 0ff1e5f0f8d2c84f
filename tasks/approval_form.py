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


def start_approval_run(store, key: str, owner: str, *, deployment: str, parameters: dict, run_name: str,
                       tags: list[str], lease_seconds: int = 600,
                       after_start=None) -> tuple[str | None, str]:
    """Start the approval run of ledger ``key`` exactly once (the same protocol as every external write):
    claim → on doubt look the run up by its key tag → ``run_deployment`` → commit the run id.

    Callers write the review item *before* calling this, so a kill at any line leaves the item (and a
    recovered claim finds the run it started). ``after_start(run)`` runs between the start and the commit
    (the tests' crash hooks). Returns ``(run id or None, outcome)`` with outcome ``committed`` (started
    before), ``recovered`` (found by its tag), ``started``, ``held`` (another live run holds the claim) or
    ``not_started`` (no deployment / server: the claim is given back, or kept when the server could not be
    asked whether the run exists)."""
    from prefect.deployments import run_deployment

    claim = store.claim(key, owner, lease_seconds=lease_seconds)
    if claim.state == "committed":
        return claim.external_id, "committed"
    if claim.state == "held":
        return None, "held"
    tag = approval_key_tag(key)
    if claim.must_check_external:
        found = find_run_by_tag(tag)
        if found is not None:
            store.commit(key, owner, found, {"recovered": True})
            return found, "recovered"
    try:
        run = run_deployment(deployment, parameters=parameters, timeout=0, tags=[*tags, tag],
                             flow_run_name=run_name, as_subflow=False)
    except Exception:  # noqa: BLE001 - no deployment yet: the review item still stands
        try:  # on doubt (the request may have reached the server), look the run up before giving the claim back
            found = find_run_by_tag(tag)
        except Exception:  # noqa: BLE001 - the server cannot be asked: keep the lease, the next run looks again
            return None, "not_started"
        if found is not None:
            store.commit(key, owner, found, {"recovered": True})
            return found, "recovered"
        store.release(key, owner)
        return None, "not_started"
    if after_start is not None:
        after_start(run)
    store.commit(key, owner, str(run.id), {"name": run.name})
    return str(run.id), "started"
