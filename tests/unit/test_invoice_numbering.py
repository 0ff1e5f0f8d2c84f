"""Invoice numbers of a company that numbers by hand (手動採番): the policy format, and the gapless,
crash-safe reservation inside the invoice's ledger claim (SQLite and PostgreSQL)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import date
from types import SimpleNamespace

import pytest

from renkei.domain.invoice import NumberFormat
from renkei.policy import InvoiceNumberingPolicy, load_policy


@pytest.mark.parametrize("pattern, reset, day, seq, number, period", [
    ("INV-{yyyy}{mm}-{seq:05d}", "monthly", date(2026, 12, 5), 42, "INV-202612-00042", "202612"),
    ("INV-{yyyy}{mm}-{seq:05d}", "monthly", date(2027, 1, 1), 1, "INV-202701-00001", "202701"),
    ("{yy}-{seq:04d}", "yearly", date(2026, 4, 1), 7, "26-0007", "2026"),
    ("R{seq}", "never", date(2026, 4, 1), 123456, "R123456", "all"),
    ("請求{yyyy}/{mm}/{seq:03d}", "monthly", date(2026, 3, 31), 1000, "請求2026/03/1000", "202603"),  # wider than 3: not cut
])
def test_format_renders_the_sequence_of_its_period(pattern, reset, day, seq, number, period):
    fmt = NumberFormat(pattern, reset)
    assert fmt.render(day, seq) == number
    assert fmt.period(day) == period


@pytest.mark.parametrize("pattern, reset, why", [
    ("INV-{yyyy}{mm}", "monthly", "exactly one {seq}"),
    ("INV-{seq}-{seq}", "never", "exactly one {seq}"),
    ("INV-{seq}", "monthly", "needs {yyyy} or {yy}"),
    ("INV-{yyyy}-{seq}", "monthly", "needs {mm}"),
    ("INV-{seq}", "yearly", "needs {yyyy} or {yy}"),
    ("INV-{dd}-{seq}", "never", "unknown placeholder {dd}"),
    ("INV-{seq:5d}", "never", "unknown placeholder"),
    ("INV-{seq}}", "never", "unbalanced"),
    ("INV-{seq}", "weekly", "reset is one of"),
])
def test_a_format_that_could_repeat_a_number_is_refused(pattern, reset, why):
    with pytest.raises(ValueError, match=why.replace("{", r"\{").replace("}", r"\}")):
        NumberFormat(pattern, reset)


def test_policy_refuses_a_bad_format_when_loaded(tmp_path):
    assert load_policy().invoice_numbering.mode == "manual"  # as `renkei sandbox serve` numbers
    f = tmp_path / "p.toml"
    f.write_text('[invoice_numbering]\nformat = "INV-{seq}"\nreset = "monthly"\n', encoding="utf-8")
    with pytest.raises(ValueError, match="needs"):
        load_policy(f)
    assert InvoiceNumberingPolicy(format="A{seq:03d}", reset="never").number_format().render(date(2026, 1, 1), 5) \
        == "A005"


def _rt(store, **numbering):
    policy = load_policy()
    if numbering:
        policy = policy.model_copy(update={"invoice_numbering": InvoiceNumberingPolicy(**numbering)})
    return SimpleNamespace(policy=policy, store=store)


def test_the_number_lives_in_the_claim_and_is_reused(store):
    from renkei.tasks.invoicing import reserve_invoice_number

    rt = _rt(store)
    day = date(2026, 12, 5)
    store.claim("invoice:deal:1", "w1")
    first = reserve_invoice_number(rt, "invoice:deal:1", "w1", day)
    assert first == "INV-202612-00001"
    assert reserve_invoice_number(rt, "invoice:deal:1", "w1", day) == first  # a retry: same number
    assert store.ledger_entry("invoice:deal:1").result["invoice_number"] == first
    store.release("invoice:deal:1", "w1")  # freee refused: the claim goes back, the number stays with it
    assert store.claim("invoice:deal:1", "w2").state == "won"
    assert reserve_invoice_number(rt, "invoice:deal:1", "w2", day) == first
    store.claim("invoice:deal:2", "w1")
    assert reserve_invoice_number(rt, "invoice:deal:2", "w1", day) == "INV-202612-00002"
    store.claim("invoice:deal:3", "w1")
    assert reserve_invoice_number(rt, "invoice:deal:3", "w1", date(2027, 1, 4)) == "INV-202701-00001"  # monthly reset
    with pytest.raises(KeyError):  # only the claim's holder reserves
        reserve_invoice_number(rt, "invoice:deal:2", "intruder", day)
    assert store.get_cursor("invoice-number:202612") == "2"


def test_concurrent_reservations_are_unique_and_gapless(store):
    from renkei.tasks.invoicing import reserve_invoice_number

    rt = _rt(store, format="N{seq}", reset="never")
    keys = [f"invoice:deal:{n}" for n in range(24)]
    for k in keys:
        store.claim(k, "w")

    def reserve(key: str) -> str:
        return reserve_invoice_number(rt, key, "w", date(2026, 12, 5))

    with ThreadPoolExecutor(max_workers=6) as pool:
        numbers = list(pool.map(reserve, keys))
    assert sorted(int(n[1:]) for n in numbers) == list(range(1, 25))
    assert store.get_cursor("invoice-number:all") == "24"
