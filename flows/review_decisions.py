"""review-decisions (確認事項の判断): decide review items in the Prefect UI.

One run takes one review item (or a batch of items of one kind), shows it as a markdown artifact and in
the form's description, and suspends with a typed form (:func:`decision_form`): the choice is an enum
of the item's options (a batch offers the choices every item has), plus a value, the decider's e-mail
and a reason; labels in Japanese with English beside. The Prefect server refuses input that does not
fit the form's schema (an unknown choice, an invalid e-mail) before the run resumes; what only the
decision rules can check (a value of the field's type, a reason to dismiss) is checked for every item
before anything is recorded, and the form is asked again with the problem on top.

The decision is recorded through the same model as ``renkei reviews resolve``
(:meth:`store.repo.Store.record_decision`, rules in :mod:`domain.decisions`): audited, stored with the
item, carried out by the owning flow's next run, once. ``renkei reviews open-form ID`` starts a run.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.flow_runs import suspend_flow_run

from renkei.domain.decisions import DecisionRefused, decide, kind_of, options
from renkei.tasks.runtime import get_runtime
from renkei.tasks.review_decisions_steps import _describe, decision_form

FLOW = "review-decisions"


@flow(name=FLOW, log_prints=False)
def review_decisions(review_ids: list[int] | None = None, timeout_hours: float = 72.0) -> dict[str, Any]:
    """Suspend with a typed form for ``review_ids`` (one item, or several of one kind); record the decision."""
    log = get_run_logger()
    if not review_ids:
        return {"decided": [], "note": "no review item given (renkei reviews open-form ID)"}
    store = get_runtime().store
    items = []
    for rid in review_ids:
        it = store.get_review(int(rid))
        if it is None:
            raise ValueError(f"no review item {rid}")
        items.append(it)
    items = [it for it in items if it.status == "open"]
    if not items:
        return {"decided": [], "note": "the item(s) are decided already"}
    kinds = {kind_of(it.flow, it.reason_code, it.entity, it.payload) for it in items}
    if len(kinds) > 1:
        raise ValueError(f"a batch must hold items of one kind, not {sorted(kinds)}")
    if kinds == {"approval"}:
        raise ValueError("finance approvals are decided in their own approval runs (renkei approvals)")
    per_item = [[o.choice for o in options(it.flow, it.reason_code, it.entity, it.payload)] for it in items]
    choices = [c for c in per_item[0] if all(c in other for other in per_item[1:])]
    if not choices:
        raise ValueError("these items share no choice: decide them one by one")
    Form = decision_form(choices)
    description = _describe(items)
    create_markdown_artifact(description, key="review-decision",
                             description=f"review item(s) {', '.join(str(i.id) for i in items)}")
    attempt = 0
    while True:
        got = suspend_flow_run(wait_for_input=Form.with_initial_data(description=description),
                               timeout=int(timeout_hours * 3600), key=f"review-decision-{attempt}")
        value = got.value.strip() or None
        problems = []
        for it in items:  # every item checked before anything is recorded
            try:
                decide(flow=it.flow, reason_code=it.reason_code, entity=it.entity, entity_key=it.entity_key,
                       payload=it.payload, status=it.status, choice=got.choice, by=got.decided_by,
                       reason=got.reason, value=value)
            except DecisionRefused as exc:
                problems.append(f"review {it.id}: {exc}")
        if not problems:
            break
        attempt += 1
        description = (f"**{'; '.join(problems)}** — もう一度入力してください / please submit again.\n\n"
                       + _describe(items))
    decided = []
    for it in items:
        row = store.record_decision(it.id, choice=got.choice, by=got.decided_by, reason=got.reason, value=value,
                                    via="prefect-ui")
        decided.append({"id": row.id, "status": row.status, "choice": row.decision,
                        "applied": row.applied_at is not None})
    log.info("review decisions by %s: %s", got.decided_by, decided)
    return {"decided": decided, "by": got.decided_by}
