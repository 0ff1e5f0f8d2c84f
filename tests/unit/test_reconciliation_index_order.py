"""The reconciliation indexes answer as a full sort would, without sorting (domain/reconciliation_index.py).

Worked example (amount-only ranking, 第三者払い): a ¥110,000 deposit from an unknown payer on 2026-03-10;
open invoices of ¥110,000 — A (due 01-31), B (due 02-28), C (issued 03-20: after the deposit + 7 days,
outside the date window) — and D of ¥110,110 (due 01-31, the deposit is D less a ¥110 fee). Ranked:
in-window before out-of-window, smaller shortfall before larger, oldest first → A, B, D, then C.
The ¥110,000 bucket is kept oldest first, so the first in-window invoices are read, never sorted.
"""

from __future__ import annotations

import random
from collections import Counter
from datetime import date, timedelta

from renkei.domain.reconciliation import OpenInvoice, Reconciler, ReconciliationPolicy
from renkei.domain.reconciliation_index import AmountIndex, OpenItem, _most_common, first_in_order


def _item(iid: str, amount: int, issued: date, due: date | None) -> OpenItem:
    return OpenItem(iid, None, "P1", amount, amount, issued, due, (due or issued, issued, iid))


def _inv(iid: str, amount: int, issued: date, due: date, pid: str = "P1") -> OpenInvoice:
    return OpenInvoice(invoice_id=iid, partner_id=pid, partner_name=f"取引先{pid}", total=amount, outstanding=amount,
                       issue_date=issued, due_date=due)


def test_worked_example_amount_only_ranking_reads_buckets_oldest_first() -> None:
    invoices = [
        _inv("C", 110_000, date(2026, 3, 20), date(2026, 4, 30), "P3"),
        _inv("B", 110_000, date(2026, 2, 1), date(2026, 2, 28), "P2"),
        _inv("A", 110_000, date(2026, 1, 5), date(2026, 1, 31), "P1"),
        _inv("D", 110_110, date(2026, 1, 6), date(2026, 1, 31), "P4"),
    ]
    rec = Reconciler(invoices, ReconciliationPolicy(max_amount_only_candidates=3))
    fits, count = rec._amount_only(110_000, date(2026, 3, 10))
    assert count == 4
    assert [f.items[0].invoice_id for f in fits] == ["A", "B", "D", "C"]
    assert [f.in_window for f in fits] == [True, True, True, False]


def test_amount_buckets_stay_in_fifo_order_through_adds_and_removes() -> None:
    rng = random.Random(3)
    idx = AmountIndex()
    live: dict[str, OpenItem] = {}
    for n in range(400):
        if live and rng.random() < 0.35:
            it = live.pop(rng.choice(sorted(live)))
            idx.remove(it)
        else:
            issued = date(2026, 1, 1) + timedelta(days=rng.randrange(200))
            it = _item(f"I{rng.randrange(10**6):06d}", rng.choice([1100, 2200, 3300]), issued,
                       issued + timedelta(days=30) if rng.random() < 0.8 else None)
            if it.invoice_id in live:
                continue
            live[it.invoice_id] = it
            idx.add(it)
    for amount in (1100, 2200, 3300):
        want = sorted((i for i in live.values() if i.outstanding == amount), key=lambda i: i.fifo)
        assert [i.invoice_id for i in idx.exact(amount)] == [i.invoice_id for i in want]


def test_first_in_order_equals_sorting_everything() -> None:
    rng = random.Random(5)
    for _ in range(300):
        buckets = [[(b, k, rng.random() < 0.6) for k in range(rng.randrange(6))] for b in range(rng.randrange(5))]
        keep = rng.randrange(1, 6)
        got, count = first_in_order(buckets, keep, lambda x: x[2])
        flat = [x for b in buckets for x in b]
        assert count == len(flat)
        assert got == sorted(flat, key=lambda x: (not x[2], x[0], x[1]))[:keep]


def test_top_k_blocking_equals_most_common() -> None:
    rng = random.Random(9)
    for _ in range(200):
        counts = Counter(rng.choices(range(rng.randint(1, 300)), k=rng.randint(1, 2000)))
        k = rng.randint(1, 150)
        assert _most_common(counts, k) == counts.most_common(k)
