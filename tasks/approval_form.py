"""The typed forms finance fills in to resume a paused approval run (Prefect ``RunInput``), and the loop
every approval flow waits in (:func:`await_decision`).

The Prefect UI renders a form from its JSON schema (labels in Japanese with English beside, ``approved`` as a
toggle, text areas for the rest) and the server validates input against that schema **before** resuming:
an invalid e-mail, or a rejection without a comment (a JSON-schema ``if``/``then`` rule, also checked by the
model), keeps the run paused with the field marked — nothing is resumed and asked again later.
``renkei approvals decide`` submits exactly the same input through the same resume API.

Who may decide is checked after the resume against the policy's ``[authority]`` (:mod:`domain.authority`):
a refusal is audited (``approval_refused``) and the run suspends again with the reason on top of the form;
an approval above the second-approval threshold waits for a second, different approver (both recorded).
Before each suspend the draft is published as a markdown artifact (its own page in the UI, visible before
anyone clicks Resume) and a ``renkei-approval`` run input summarises the request for ``renkei approvals``.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Sequence

from prefect.input import RunInput
from pydantic import ConfigDict, Field, model_validator

EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
SUMMARY_KEY = "renkei-approval"  # the run input holding the request's summary (kind, amount, reasons ...)
REJECT_NEEDS_COMMENT = "a comment is required to reject / 却下にはコメントが必要です"

_REJECT_RULE = {"if": {"properties": {"approved": {"const": False}}, "required": ["approved"]},
                "then": {"properties": {"comment": {"minLength": 1, "pattern": "\\S"}}, "required": ["comment"]}}


class ApprovalDecision(RunInput):
    """Invoice and proration approvals."""

    model_config = ConfigDict(json_schema_extra=_REJECT_RULE)

    approved: bool = Field(title="承認 / Approve", description="オン: 承認、オフ: 却下 — on: approve, off: reject")
    approver: str = Field(title="承認者メール / Approver e-mail", description="あなたのメールアドレス — your e-mail",
                          pattern=EMAIL_PATTERN, max_length=254)
    comment: str = Field(default="", title="コメント / Comment",
                         description="却下の場合は必須 — required to reject", max_length=2000)

    @model_validator(mode="after")
    def _reject_needs_comment(self) -> "ApprovalDecision":
        if not self.approved and not self.comment.strip():
            raise ValueError(REJECT_NEEDS_COMMENT)
        return self


def decision_problem(decision: ApprovalDecision) -> str | None:
    """Why a submitted decision cannot be accepted, or ``None`` (the model already refuses a bare reject)."""
    if not decision.approved and not decision.comment.strip():
        return REJECT_NEEDS_COMMENT
    return None


def artifact_key(kind: str, entity_key: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", f"approval-{kind}-{entity_key}".lower()).strip("-")[:100]


def publish_request(kind: str, entity: str, entity_key: str, markdown: str, summary: dict[str, Any]) -> None:
    """The draft as a markdown artifact (its own page, before Resume) and the summary run input (once)."""
    from prefect.artifacts import create_markdown_artifact
    from prefect.input.actions import create_flow_run_input, read_flow_run_input

    create_markdown_artifact(markdown=markdown, key=artifact_key(kind, entity_key),
                             description=f"承認待ち / awaiting approval: {kind} {entity} {entity_key}")
    if read_flow_run_input(SUMMARY_KEY) is None:
        create_flow_run_input(SUMMARY_KEY, {"kind": kind, "entity": entity, "entity_key": str(entity_key), **summary})


def _audit_once(rt, run_id: str, attempt: int, **event: Any) -> None:
    """One audit event per submitted input: a replay after the next resume does not repeat it."""
    key, owner = f"approval-audit:{run_id}:{attempt}", f"approval:{run_id}"
    if rt.store.claim(key, owner, lease_seconds=60).proceed:
        rt.store.audit(flow_run_id=run_id, system="renkei", **event)
        rt.store.commit(key, owner, None, {"action": event["action"]})


def await_decision(rt, *, run_id: str, kind: str, entity: str, entity_key: str, amount: int, timeout_s: int,
                   render: Callable[[], tuple[str, dict[str, Any]]], form: type[RunInput] = ApprovalDecision,
                   problem_of: Callable[[Any], str | None] | None = None,
                   approving: Callable[[Any], bool] = lambda a: bool(a.approved),
                   owner_ids: Sequence[str] = (), summary: dict[str, Any] | None = None,
                   artifact_text: Callable[[str], str] | None = None) -> tuple[Any, list[str]]:
    """Suspend until an acceptable, authorised decision arrives; returns ``(input, approvers)``.

    ``render()`` → (markdown of the request, initial form values), called before every suspend (a flow may
    re-read the source). ``problem_of(input)`` → why the input cannot be used (shown, asked again).
    After each resume Prefect re-runs the flow from the top; the keyed suspends return the inputs already
    given, so this loop replays to the same point (audit events are written once per input)."""
    from prefect import suspend_flow_run

    from renkei.domain.authority import check, norm_email

    rules = rt.policy.authority.rules()
    attempt = 0
    notice: str | None = None
    approvers: list[str] = []
    while True:
        markdown, initial = render()
        head = ""
        if approvers:
            head += (f"**1人目の承認 / first approval: {approvers[0]}** — 別の承認者による2人目の承認が必要です / "
                     "a second, different approver must approve.\n\n")
        if notice:
            head += f"**{notice}** — もう一度入力してください / please submit again.\n\n"
        text = head + markdown
        # the artifact is seen by anyone with the UI; only the form shows what ``artifact_text`` takes out
        publish_request(kind, entity, entity_key, artifact_text(text) if artifact_text else text,
                        {"amount": amount, **(summary or {})})
        answer = suspend_flow_run(wait_for_input=form.with_initial_data(description=text, **initial),
                                  timeout=timeout_s, key=f"decision-{attempt}")
        attempt += 1
        notice = problem_of(answer) if problem_of else None
        if notice:
            continue
        approve = approving(answer)
        verdict = check(rules, kind=kind, amount=amount, approver=answer.approver, approve=approve,
                        owner_ids=owner_ids, earlier_approvers=approvers)
        if not verdict.allowed:
            _audit_once(rt, run_id, attempt, actor=norm_email(answer.approver), action="approval_refused",
                        entity=entity, entity_key=str(entity_key),
                        changes={"kind": kind, "amount": amount, "decision": "approve" if approve else "reject",
                                 "code": verdict.code, "reason": verdict.message, "roles": list(verdict.roles)})
            notice = f"認められません / refused: {verdict.message}"
            continue
        if approve and verdict.needs_second:
            _audit_once(rt, run_id, attempt, actor=norm_email(answer.approver), action="first_approval",
                        entity=entity, entity_key=str(entity_key),
                        changes={"kind": kind, "amount": amount, "comment": getattr(answer, "comment", ""),
                                 "roles": list(verdict.roles)})
            approvers.append(norm_email(answer.approver))
            continue
        if approve:
            approvers.append(norm_email(answer.approver))
        return answer, approvers


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
