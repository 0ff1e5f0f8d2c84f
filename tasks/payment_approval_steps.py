"""The steps of the ``payment-approval`` flow (:mod:`flows.payment_approval`): the decision form, the options
shown to finance, resolving the answer, and closing the deposit's review items. The flow module holds the
orchestration only.
"""

from __future__ import annotations


from prefect.input import RunInput
from pydantic import ConfigDict, Field, model_validator

from renkei.domain.money import format_yen
from renkei.domain.reconciliation import Candidate, MatchDecision
from renkei.tasks.approval_form import EMAIL_PATTERN, comment_required_when
from renkei.tasks.payments import OpenBook
from renkei.tasks.runtime import get_runtime

WRITEBACK_FLOW = "payment-writeback"
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


class PaymentDecision(RunInput):
    # "unrelated" needs a comment: refused by the server before the run resumes (JSON schema if/then)
    model_config = ConfigDict(json_schema_extra=comment_required_when({
        "if": {"properties": {"unrelated": {"const": True}}, "required": ["unrelated"]},
        "then": {"properties": {"comment": {"minLength": 1, "pattern": "\\S"}}, "required": ["comment"]}}))

    choice: str = Field(default="", max_length=500, title="消込先 / Invoices",
                        description="候補の記号 (A, B …) または請求書番号/ID をカンマ区切り — option letter, "
                                    "or invoice number(s) / id(s) separated by commas")
    unrelated: bool = Field(default=False, title="無関係な入金 / Unrelated",
                            description="請求書と無関係な入金 (消込しない) — not a customer payment")
    approver: str = Field(title="承認者メール / Approver e-mail", description="あなたのメールアドレス — your e-mail",
                          pattern=EMAIL_PATTERN, max_length=254)
    comment: str = Field(default="", max_length=2000, title="コメント / Comment",
                         description="無関係の場合は必須 — required for unrelated")

    @model_validator(mode="after")
    def _unrelated_needs_comment(self) -> "PaymentDecision":
        if self.unrelated and not self.comment.strip():
            raise ValueError("a comment is required to mark a deposit unrelated / 無関係にはコメントが必要です")
        return self


def _options_markdown(decision: MatchDecision, options: list[Candidate], book: OpenBook) -> str:
    lines = [f"### 入金 / Deposit {decision.deposit_id}",
             f"- 入金日: {decision.received_on.isoformat()}  金額: **{format_yen(decision.amount)}**  "
             f"振込名義: `{decision.payer_name}`",
             f"- 判定 / engine: {decision.kind.value}, score {decision.score:.2f} — "
             f"{', '.join(r.value for r in decision.reasons)}",
             f"- {decision.explanation}", "", "#### 候補 / Options",
             "| | 取引先 / partner | 請求書 / invoices | 消込額 | 手数料 | 説明 |", "|---|---|---|---|---|---|"]
    for letter, c in zip(LETTERS, options):
        inv = ", ".join(f"{a.label} ({a.invoice_id}) {format_yen(a.outstanding_before)}" for a in c.allocations)
        lines.append(f"| **{letter}** | {c.partner_name or '-'} | {inv} | {format_yen(c.applied_total)} | "
                     f"{format_yen(c.fee)} | {c.fit.value}, score {c.score:.2f} |")
    partners = {c.partner_id for c in options if c.partner_id}
    shown = {a.invoice_id for c in options for a in c.allocations}
    others = [i for i in book.invoices if i.partner_id in partners and i.invoice_id not in shown]
    if others:
        lines += ["", "#### 同じ取引先の他の未入金請求書 / other open invoices of these partners"]
        lines += [f"- {i.number or i.invoice_id} (id {i.invoice_id}) {i.partner_name} 残 {format_yen(i.outstanding)}"
                  f" 期日 {i.due_date or '-'}" for i in others[:30]]
    lines += ["", "記号か請求書番号を `choice` に入力するか、無関係なら `unrelated` をオンにしてください。",
              "Type an option letter or invoice numbers in `choice`, or tick `unrelated` (comment required)."]
    return "\n".join(lines)


def _resolve(form: PaymentDecision, options: list[Candidate], book: OpenBook) -> tuple[list[str] | None, str | None]:
    """(invoice ids, problem)."""
    choice = form.choice.strip()
    if form.unrelated and choice:
        return None, "choose invoices or mark the deposit unrelated, not both"
    if form.unrelated:
        return ([], None) if form.comment.strip() else (None, "a comment is required to mark a deposit unrelated")
    if not choice:
        return None, "type an option letter or invoice number(s), or mark the deposit unrelated"
    if len(choice) == 1 and choice.upper() in LETTERS:
        i = LETTERS.index(choice.upper())
        if i >= len(options):
            return None, f"there is no option {choice.upper()}"
        return list(options[i].invoice_ids), None
    ids = []
    for part in choice.replace("、", ",").split(","):
        if not part.strip():
            continue
        ref = book.by_label(part)
        if ref is None:
            return None, f"{part.strip()} is not an open invoice"
        ids.append(ref.invoice_id)
    return (ids, None) if ids else (None, "no invoice given")


def _close(deposit_id: str, decision: str, who: str, comment: str) -> None:
    rt = get_runtime()
    for item in rt.store.list_reviews("open", flow=WRITEBACK_FLOW):
        if item.entity == "deposit" and item.entity_key == deposit_id:
            rt.store.decide_review(item.id, decision=decision, decided_by=who, comment=comment)


def deal_owners(book: OpenBook, candidate: Candidate | None) -> list[str]:
    """The CRM owner ids of the deals behind the chosen invoices (segregation of duties: a deal's owner
    cannot approve the payment of their own deal). Invoices without a known CRM deal have no owner."""
    if candidate is None:
        return []
    deals = sorted({ref.crm_deal_id for i in candidate.invoice_ids
                    if (ref := book.refs.get(i)) is not None and ref.crm_deal_id})
    if not deals:
        return []
    rt = get_runtime()
    return sorted({str(r.value.owner) for r in rt.crm.get_deals(deals, with_line_items=False)
                   if r.ok and r.value.owner})
