"""The steps of the ``review-decisions`` flow (:mod:`flows.review_decisions`): the decision form and the
description of the items shown to people. The flow module holds the orchestration only.
"""

from __future__ import annotations

from typing import Any, Literal

from prefect.input import RunInput
from pydantic import Field, create_model

from renkei.domain.decisions import EMAIL, kind_of, options, shown_value
from renkei.domain.normalise import safe_text

EMAIL_PATTERN = EMAIL.pattern


def decision_form(choices: list[str]) -> type[RunInput]:
    """The typed form for these choices (a new model per set of choices: the enum is the item's own)."""
    return create_model(
        "ReviewDecision", __base__=RunInput,
        choice=(Literal[tuple(choices)], Field(title="判断 / Decision",
                                                description="判断 — decision (see the options above)")),
        value=(str, Field(default="", max_length=2000, title="入力値 / Value",
                          description="入力値 (「値を入力」/候補IDの場合) — value (for 'value'; or a candidate id)")),
        decided_by=(str, Field(title="判断者メール / Your e-mail", description="判断者のメールアドレス — your e-mail",
                               pattern=EMAIL_PATTERN,
                               max_length=254)),
        reason=(str, Field(default="", max_length=2000, title="理由 / Reason",
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
