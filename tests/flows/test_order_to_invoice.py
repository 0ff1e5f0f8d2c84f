"""order-to-invoice against both sandboxes over HTTP, on the session's Prefect server."""

from __future__ import annotations


from renkei.flows.order_to_invoice import order_to_invoice
from tests.flows.builders import freee_invoices, freee_partner, hs_company, hs_deal, move_stage
from tests.spawned import SPAWN, run_spawned

YAMADA_CORP = "7010705000725"


def _deal_props(world, deal_id: str) -> dict:
    return world.hs().deals.get(deal_id, properties=["renkei_invoice_id", "renkei_invoice_number",
                                                      "renkei_invoice_status", "renkei_invoiced_at"])["properties"]


def test_won_deal_becomes_one_invoice_with_per_rate_totals(world):
    partner = freee_partner(world, "㈱山田商事", registration=f"T{YAMADA_CORP}")
    company = hs_company(world, "株式会社山田商事", renkei_corporate_number=YAMADA_CORP, domain="yamada-shoji.co.jp")
    deal = hs_deal(world, "山田商事 11月分", company, [
        {"name": "保守サービス", "quantity": 3, "price": 10000, "renkei_tax_category": "standard_10"},
        {"name": "お茶（ケース）", "quantity": 2, "price": 5400, "renkei_tax_category": "reduced_8"},
    ])
    open_deal = hs_deal(world, "山田商事 見込み", company, [{"name": "x", "quantity": 1, "price": 100}],
                        stage="contractsent")

    summary = order_to_invoice()

    (inv,) = freee_invoices(world)
    assert inv["partner_id"] == int(partner)
    # 10%: 30,000 → tax 3,000; 8% (reduced): 10,800 → tax 864 (one rounding per rate); total 44,664
    assert inv["total_amount"] == 44_664
    props = _deal_props(world, deal)
    assert props["renkei_invoice_status"] == "created"
    assert props["renkei_invoice_id"] == str(inv["id"])
    assert props["renkei_invoice_number"] and props["renkei_invoiced_at"]
    assert world.rt.store.erp_id_for("company", company) == partner  # linked by corporate number, no new partner
    assert len(world.fr().list_partners(limit=100)) == 1
    assert _deal_props(world, open_deal).get("renkei_invoice_status") in (None, "")
    assert summary["erp"]["created"] == 1

    # rerun: nothing new
    order_to_invoice()
    move_stage(world, deal, "closedwon")  # touched again: still one invoice
    order_to_invoice()
    assert len(freee_invoices(world)) == 1


def test_crash_after_the_erp_call_then_rerun_finds_the_invoice(world, monkeypatch):
    freee_partner(world, "佐藤物産株式会社", registration="T4011001098993")
    company = hs_company(world, "佐藤物産株式会社", renkei_corporate_number="4011001098993")
    deal = hs_deal(world, "佐藤物産 導入", company, [{"name": "導入支援", "quantity": 1, "price": 50000}])
    monkeypatch.setenv("RENKEI_TEST_CRASH_AFTER_INVOICE", deal)
    state = order_to_invoice(lease_seconds=1, return_state=True)
    assert state.is_failed()
    assert len(freee_invoices(world)) == 1  # created, ledger not committed
    assert world.rt.store.get_cursor("order-to-invoice:hubspot-deals") is None  # cursor did not move
    monkeypatch.delenv("RENKEI_TEST_CRASH_AFTER_INVOICE")
    import time

    time.sleep(1.2)  # the crashed worker's lease expires
    order_to_invoice(lease_seconds=1)
    (inv,) = freee_invoices(world)
    entry = world.rt.store.ledger_entry(f"invoice:deal:{deal}")
    assert entry.status == "committed" and entry.external_id == str(inv["id"]) and entry.attempts == 2
    assert _deal_props(world, deal)["renkei_invoice_status"] == "created"


def test_exceptions_become_review_items_and_never_block_other_deals(world):
    freee_partner(world, "株式会社鈴木電機", registration="T7120001168421")
    ok_company = hs_company(world, "株式会社鈴木電機", renkei_corporate_number="7120001168421")
    big = hs_deal(world, "鈴木電機 大型案件", ok_company, [{"name": "設備一式", "quantity": 1, "price": 9_000_000}])
    mismatch = hs_deal(world, "鈴木電機 金額不一致", ok_company, [{"name": "部品", "quantity": 1, "price": 1000}],
                       amount=1500)
    no_lines = hs_deal(world, "鈴木電機 明細なし", ok_company, [], amount=1000)
    clean = hs_deal(world, "鈴木電機 通常", ok_company, [{"name": "部品", "quantity": 2, "price": 1000}])
    order_to_invoice(start_approvals=False)

    assert len(freee_invoices(world)) == 1
    reviews = {r.entity_key: r.reason_code for r in world.rt.store.list_reviews("open", flow="order-to-invoice")}
    assert reviews[big] == "AMOUNT_OVER_THRESHOLD"
    assert reviews[mismatch] == "AMOUNT_MISMATCH"
    assert reviews[no_lines] == "NO_LINE_ITEMS"
    assert clean not in reviews
    assert _deal_props(world, big)["renkei_invoice_status"] == "pending_approval"


def test_daily_quota_ends_the_run_cleanly_and_the_next_run_resumes(world):
    """freee's daily cap hit mid-run: the run completes saying so, and the next day's run finishes the
    rest — every deal invoiced exactly once."""
    freee_partner(world, "株式会社森田商店", registration="T7120001168421")
    company = hs_company(world, "株式会社森田商店", renkei_corporate_number="7120001168421")
    deals = [hs_deal(world, f"森田商店 {i}", company, [{"name": "部品", "quantity": 1, "price": 1000 + i}])
             for i in range(6)]
    limits = world.freee.app.state.limits
    limits.iv_daily.limit = 3  # freee請求書's daily cap: three more invoices today
    try:
        state = order_to_invoice(return_state=True)
        assert state.is_completed()
        summary = state.result()
        assert summary["erp"].get("quota_exhausted") == 1
    finally:
        limits.iv_daily.limit = 0  # lifted so that the test itself can look
    assert len(freee_invoices(world)) == 3  # what the cap allowed, committed
    limits.iv_daily.clear()  # the next day
    order_to_invoice()
    invoices = freee_invoices(world)
    assert len(invoices) == 6
    assert sorted(i["total_amount"] for i in invoices) == sorted((1000 + i) * 110 // 100 for i in range(6))
    for d in deals:
        assert world.rt.store.ledger_entry(f"invoice:deal:{d}").status == "committed"


def test_hubspot_daily_cap_ends_the_run_cleanly_and_the_next_day_finishes(world, monkeypatch):
    """HubSpot's daily cap, counted in the shared limiter, runs out right after the third invoice: the run
    completes saying so, nothing is lost and nothing doubled — the next day's run finishes the rest."""
    from sqlalchemy import text

    from renkei.tasks.runtime import get_runtime, reset_runtime

    monkeypatch.setenv("RENKEI_RATE_LIMITS", "shared")  # the rows in the state store (SQLite here)
    monkeypatch.setenv("RENKEI_HUBSPOT_DAILY_CAP", "10000")
    reset_runtime()
    world.rt = rt = get_runtime()
    freee_partner(world, "株式会社森田商店", registration="T7120001168421")
    company = hs_company(world, "株式会社森田商店", renkei_corporate_number="7120001168421")
    deals = [hs_deal(world, f"森田商店 {i}", company, [{"name": "部品", "quantity": 1, "price": 1000 + i}])
             for i in range(6)]
    limiter = rt.crm.client.rate_limiter
    daily = limiter.bucket_name("daily")
    assert limiter.state()[daily]["kind"] == "calendar"

    def set_used(sql: str) -> None:
        with rt.store.engine.begin() as conn:
            conn.execute(text(f"UPDATE rate_bucket SET {sql} WHERE name = :n"), {"n": daily})

    create, made = rt.erp.create_invoice, []

    def create_then_cap(invoice):
        out = create(invoice)
        made.append(out)
        if len(made) == 3:
            set_used("used = limit_n")  # the account's day is used up (by Renkei and the other apps)
        return out

    monkeypatch.setattr(rt.erp, "create_invoice", create_then_cap)
    state = order_to_invoice(return_state=True)
    assert state.is_completed()
    summary = state.result()
    # HubSpot's cap, so the CRM side says so (not the ERP's)
    assert summary["crm"].get("quota_exhausted") == 1 and "quota_exhausted" not in summary.get("erp", {})
    assert rt.store.get_cursor("order-to-invoice:hubspot-deals") is None  # the page is not done
    first = len(freee_invoices(world))
    assert 3 <= first <= 6
    assert sum(rt.store.ledger_entry(f"invoice:deal:{d}") is not None and
               rt.store.ledger_entry(f"invoice:deal:{d}").status == "committed" for d in deals) == first

    set_used("window_start = 0, used = 0")  # the next day in the account's zone
    order_to_invoice()
    invoices = freee_invoices(world)
    assert len(invoices) == 6 and len(made) == 6  # the rest made once, nothing made twice
    assert sorted(i["total_amount"] for i in invoices) == sorted((1000 + i) * 110 // 100 for i in range(6))
    for d in deals:
        assert _deal_props(world, d)["renkei_invoice_status"] == "created"


def _line_up(monkeypatch, parties: int, *methods: str) -> None:
    """Make concurrent runs really race: each run's first call of each Store method waits until every
    run has reached it, so all of them link the same company and move the same cursor at one instant
    (deterministic, not left to thread timing). A run that never reaches a point releases the others
    after a timeout."""
    import threading

    from renkei.store.repo import Store

    for name in methods:
        barrier = threading.Barrier(parties)
        seen: set[int] = set()
        original = getattr(Store, name)

        def wrapped(self, *a, _original=original, _barrier=barrier, _seen=seen, **kw):
            me = threading.get_ident()
            if me not in _seen:
                _seen.add(me)
                try:
                    _barrier.wait(timeout=60)
                except threading.BrokenBarrierError:
                    pass
            return _original(self, *a, **kw)

        monkeypatch.setattr(Store, name, wrapped)


def _concurrent_runs(n: int) -> list:
    import threading

    barrier = threading.Barrier(n)
    states: list = []

    def worker():
        barrier.wait()
        states.append(order_to_invoice(return_state=True))

    threads = [threading.Thread(target=worker) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    return states


def _use_postgresql(world, pg_url, monkeypatch) -> None:
    from renkei.tasks.runtime import get_runtime, reset_runtime

    monkeypatch.setenv("RENKEI_DATABASE_URL", pg_url)
    reset_runtime()
    world.rt = get_runtime()


def test_two_concurrent_runs_on_postgresql_make_one_invoice_per_deal(world, pg_url, monkeypatch):
    """Two workers run order-to-invoice at the same moment against one PostgreSQL store: both link the
    company at the same instant (an identical link is success, not IdConflict), both move the cursor at
    the same instant (an upsert, not a UniqueViolation), and the ledger claim lets exactly one of them
    create each invoice."""
    _use_postgresql(world, pg_url, monkeypatch)
    partner = freee_partner(world, "株式会社並行テスト", registration="T4011001098993")
    company = hs_company(world, "株式会社並行テスト", renkei_corporate_number="4011001098993")
    deals = [hs_deal(world, f"並行 {i}", company, [{"name": "作業", "quantity": 1, "price": 10_000 + i}])
             for i in range(8)]
    _line_up(monkeypatch, 2, "link_or_adopt", "set_cursor")
    states = _concurrent_runs(2)
    assert len(states) == 2 and all(s.is_completed() for s in states), [s.message for s in states]
    order_to_invoice()  # anything a worker skipped as "held" is finished by the next run
    invoices = freee_invoices(world)
    assert len(invoices) == 8
    assert sorted(i["total_amount"] for i in invoices) == sorted((10_000 + i) * 110 // 100 for i in range(8))
    entries = [world.rt.store.ledger_entry(f"invoice:deal:{d}") for d in deals]
    assert all(e.status == "committed" for e in entries)
    assert [(r.crm_id, r.erp_id) for r in world.rt.store.id_map("company")] == [(company, partner)]


def _run_in_own_process(barriers: dict, out) -> None:
    """One ``renkei run order-to-invoice`` worker: its own process, runtime, store engine and connectors.
    Its first link and first cursor move wait for the other workers (see :func:`_line_up`)."""
    import threading

    from renkei.store.repo import Store

    for name, barrier in barriers.items():
        original, done = getattr(Store, name), []

        def wrapped(self, *a, _original=original, _barrier=barrier, _done=done, **kw):
            if not _done:
                _done.append(True)
                try:
                    _barrier.wait(60)
                except threading.BrokenBarrierError:
                    pass
            return _original(self, *a, **kw)

        setattr(Store, name, wrapped)
    from renkei.flows.order_to_invoice import order_to_invoice as run

    try:
        state = run(return_state=True)
        out.put((state.type.value, state.message))
    except BaseException as exc:  # noqa: BLE001 - reported to the test
        out.put(("EXCEPTION", f"{type(exc).__name__}: {exc}"))


def test_three_concurrent_runs_on_postgresql_none_fails(world, pg_url, monkeypatch):
    """Three order-to-invoice runs at once on PostgreSQL, each in its own process, racing on linking an
    existing partner, creating a new one (same 取引先コード) and moving the cursor: no run Failed,
    exactly one invoice per deal, one partner per company."""
    _use_postgresql(world, pg_url, monkeypatch)
    existing = freee_partner(world, "株式会社三並列", registration="T4011001098993")
    matched = hs_company(world, "株式会社三並列", renkei_corporate_number="4011001098993")
    new = hs_company(world, "有限会社新規三並列", renkei_billing_email="keiri@shinki.example.co.jp")
    deals = [hs_deal(world, f"三並列 {i}", matched if i % 2 else new,
                     [{"name": "作業", "quantity": 1, "price": 20_000 + i}]) for i in range(6)]
    barriers = {"link_or_adopt": SPAWN.Barrier(3), "set_cursor": SPAWN.Barrier(3)}
    out = SPAWN.Queue()
    results = run_spawned(_run_in_own_process, [(barriers, out)] * 3, out, timeout=600)
    assert [r[0] for r in results] == ["COMPLETED"] * 3, results
    order_to_invoice()  # deals a worker skipped as "held" are finished by the next run
    invoices = freee_invoices(world)
    assert len(invoices) == len(deals)
    assert sorted(i["total_amount"] for i in invoices) == sorted((20_000 + i) * 110 // 100 for i in range(6))
    partners = world.fr().list_partners(limit=100)
    assert len(partners) == 2  # the existing one, and one created for the new company
    pairs = {r.crm_id: r.erp_id for r in world.rt.store.id_map("company")}
    assert pairs[matched] == existing and pairs[new] in {str(p["id"]) for p in partners} - {existing}
    for d in deals:
        assert world.rt.store.ledger_entry(f"invoice:deal:{d}").status == "committed"
