"""The engine builds its output models without re-validation and with one shared ``model_fields_set`` per
shape (memory of 100,000-deposit batches): they must be the models validation would build."""

from __future__ import annotations

from datetime import date

from renkei.domain.model import BankDeposit
from renkei.domain.reconciliation import (
    Allocation,
    BatchResult,
    Candidate,
    MatchDecision,
    MatchKind,
    OpenInvoice,
    reconcile_batch,
)


def _inv(invoice_id: str, partner_id: str, name: str, kana: str, amount: int) -> OpenInvoice:
    return OpenInvoice(invoice_id=invoice_id, number=f"INV-{invoice_id}", partner_id=partner_id, partner_name=name,
                       partner_kana=kana, total=amount, outstanding=amount, issue_date=date(2026, 4, 30),
                       due_date=date(2026, 5, 31))


def _same_as_validated(model, cls) -> None:
    again = cls.model_validate(model.model_dump())
    assert model == again and repr(model) == repr(again)
    assert list(model.__dict__) == list(again.__dict__)  # every field, in declaration order
    # the names given, as model_construct records them: every required field, optional ones when given
    assert {n for n, f in cls.model_fields.items() if f.is_required()} <= model.model_fields_set
    assert model.model_fields_set <= set(cls.model_fields)


def test_output_models_equal_validated_ones_and_share_fields_sets_safely() -> None:
    invoices = [_inv("1", "P-Y", "株式会社山田商事", "ヤマダショウジ", 110_000),
                _inv("2", "P-Y", "株式会社山田商事", "ヤマダショウジ", 55_000),
                _inv("3", "P-T", "田中商店", "タナカショウテン", 33_000)]
    paid = date(2026, 5, 29)
    deposits = [BankDeposit(erp_id="W1", received_on=paid, amount=109_890, payer_name="ｶ)ﾔﾏﾀﾞｼﾖｳｼﾞ"),
                BankDeposit(erp_id="W2", received_on=paid, amount=10_000, payer_name="ﾀﾅｶｼﾖｳﾃﾝ"),
                BankDeposit(erp_id="W3", received_on=paid, amount=1_234, payer_name="ﾘｿｸ")]
    result = reconcile_batch(deposits, invoices)
    assert [d.kind for d in result.decisions] == [MatchKind.AUTO, MatchKind.NEEDS_APPROVAL, MatchKind.UNMATCHED]
    _same_as_validated(result, BatchResult)
    for d in result.decisions:
        _same_as_validated(d, MatchDecision)
        for c in ([d.proposal] if d.proposal else []) + list(d.alternatives):
            _same_as_validated(c, Candidate)
            for a in c.allocations:
                _same_as_validated(a, Allocation)
    auto, approval, unmatched = result.decisions
    assert unmatched.proposal is None and "proposal" not in unmatched.model_fields_set
    # the shared set is never changed through one model
    shared = auto.model_fields_set
    before = set(shared)
    copied = unmatched.model_copy(update={"proposal": auto.proposal})
    assert "proposal" in copied.model_fields_set and "proposal" not in unmatched.model_fields_set
    assert auto.model_fields_set is shared and shared == before and approval.model_fields_set == before
