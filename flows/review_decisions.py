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

from typing import Any, Literal

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.flow_runs import suspend_flow_run
from prefect.input import RunInput
from pydantic import Field, create_model

from renkei.domain.decisions import EMAIL, DecisionRefused, decide, kind_of, options, shown_value
from renkei.domain.normalise import safe_text
from renkei.tasks.runtime import get_runtime

FLOW = "review-decisions"
EMAIL_PATTERN = EMAIL.pattern


def decision_form(choices: list[str]) -> type[RunInput]:
    """The typed form for these choices (a new model per set of choices: the enum is the item's own)."""
    return create_model(
        "ReviewDecision", __base__=RunInput,
        choice=(Literal[tuple(choices)], Field(description="判断 — decision (see the options above)")),
        value=(str, Field(default="", max_length=2000,
                          description="入力値 (「値を入力」/候補IDの場合) — value (for 'value'; or a candidate id)")),
        decided_by=(str, Field(description="判断者のメールアドレス — your e-mail", pattern=EMAIL_PATTERN,
                               max_length=254)),
        reason=(str, Field(default="", max_length=2000,
                           description="理由 (閉じる・紐付けない場合は必須) — reason, required to dismiss or ignore")),
    )


def _describe(items: list[Any]) -> str:
    """The item(s) and their options as markdown (record text escaped; personal values stay masked)."""
    out: list[str] = []
    for it in items:
        p = it.payload or {}
        out.append(f"### 確認事項 / Review {it.id}: {safe_text(it.reason_code)} ({kind_of(it.flow, it.reason_code, it.entity, p)})")
        out.append(f"{safe_text(it.flow)} · {safe_text(it.entity)}:{safe_text(it.entity_key)}\n\n{safe_text(it.message)}")
        if p.get("candidates"):
            out.append("\n".join(["| 候補 / candidate | 名前 / name | 理由 / reasons |", "|---|---|---|",
                                  *(f"| {safe_text(c.get('id'))} | {safe_text(c.get('name'))} | "
                                    f"{safe_text(', '.join(c.get('reasons') or []))} |" for c in p["candidates"])]))
        if p.get("field"):
            out.append(f"項目 / field **{safe_text(p['field'])}**: CRM `{safe_text(shown_value(p.get('crm')))}` · "
                       f"ERP `{safe_text(shown_value(p.get('erp')))}` · "
                       f"base `{safe_text(shown_value(p.get('base')))}`")
        out.append("選択肢 / options: " + "; ".join(f"`{o.choice}` = {o.label}" for o in
                                                 options(it.flow, it.reason_code, it.entity, p)))
    return "\n\n".join(out)


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
