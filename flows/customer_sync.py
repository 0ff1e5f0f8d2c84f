"""customer-sync (顧客マスタ連携): one customer master across HubSpot companies and freee partners (取引先).

Per run:

1. **freee read** — partners updated since the committed freee cursor (a JST date: freee filters by
   ``update_date``), 3,000 per request; the first run of each JST day reads every partner instead, which
   is also how partners deleted in freee are noticed (a few requests for tens of thousands of partners).
   Then the decisions people took on review items (``renkei reviews resolve`` / the review-decisions
   form) are carried out, each once: link to the chosen partner, create a new record, retry an invalid
   record (:func:`tasks.customer_sync.apply_review_decisions`); decided field conflicts are applied by
   the merge below and marked applied when the pair is recorded.
2. **HubSpot pages** — companies modified since the committed cursor (boundary-safe keyset search of the
   connector, 200 per page, the next page prefetched while one is processed). One task per page: merges
   (``hs_merged_object_ids``: the ID map follows the survivor), matching for companies without a partner
   (LINK / CREATE by 取引先コード ``HS-<id>`` / REVIEW), the 3-way merge per pair, validated writes, base
   snapshots. The cursor moves only after the page's work is committed.
3. **freee remainder** — changed partners no HubSpot page covered: linked ones are merged against what
   was last seen of their company; new ones are matched (HubSpot search for candidates) and created in
   HubSpot by upsert on ``renkei_freee_partner_id`` or sent to review. Deactivated partners are reported.
4. **deletes** — companies archived in HubSpot → ``sync.on_crm_delete`` (default: review item, nothing
   deleted in accounting); after a full freee read, vanished partners → ``sync.on_erp_delete``.
5. The freee cursor moves to the date the read started; one table artifact per run (counts per side),
   an audit event per change, review items with reason codes.

A rerun with nothing changed writes nothing: unchanged records hash equal to the stored snapshot.
Retries are per task and only for transient errors (429 / 5xx / transport, after the HTTP layer's own).
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from prefect import flow, get_run_logger
from prefect.context import get_run_context
from prefect.utilities.annotations import quote

from renkei.tasks.concurrency import chunks, prefetch
from renkei.tasks import customer_sync as cs
from renkei.tasks.reporting import RunReport, publish_report, report_progress
from renkei.tasks.runtime import get_runtime
from renkei.tasks.housekeeping import reap_dead_runs
from renkei.tasks.preflight import preflight
from renkei.tasks.customer_sync_steps import (FLOW, _STATES, apply_decisions, apply_review_decisions, check_deletes,
                                              read_erp_changes, sync_crm_page, sync_erp_chunk)

LAST_TIMING = ""  # phase seconds of the last run in this process (benchmarks print it)


def _run_name() -> str:
    now = datetime.now(cs.JST).strftime("%Y-%m-%d %H:%M")
    try:
        rt = get_runtime()
        cursor = rt.store.get_cursor(cs.CRM_CURSOR)
    except Exception:  # noqa: BLE001 - a name must never fail the run
        cursor = None
    if not cursor:
        return f"customer-sync {now} full (first sync)"
    try:  # a millisecond watermark reads as a time; any other watermark is shown as it is
        since = datetime.fromtimestamp(int(str(cursor).split(":")[0]) / 1000, cs.JST).strftime("%m-%d %H:%M")
    except (TypeError, ValueError, OverflowError, OSError):
        since = str(cursor)[:40]
    return f"customer-sync {now} changes since {since}"


@flow(name=FLOW, flow_run_name=_run_name, log_prints=False)
def customer_sync(full: bool = False, check_crm_deletes: bool = True, lookback_ms: int = 0,
                  erp_chunk: int = 500, max_pages: int = 10_000, full_chunk: int = 500,
                  company_ids: list[str] | None = None) -> dict[str, Any]:
    """HubSpot companies ⇄ freee partners, per-field ownership from the policy config.

    ``full`` ignores both cursors (a complete reconciliation; unchanged pairs still write nothing);
    ``lookback_ms`` re-reads that margin before the HubSpot cursor (search indexing lag of the real API).
    Returns the counts per side (``{"crm": {...}, "erp": {...}, "renkei": {...}}``).
    ``company_ids`` (a webhook-triggered run): just those CRM companies, as one page; cursors, the freee
    read and delete checks are left to the scheduled run (the reconciling poll).
    """
    reap_dead_runs(FLOW)  # earlier runs killed mid-way: marked Crashed, their leases freed
    preflight(FLOW)  # connections, store and the CRM schema, or one line naming the setting to fix
    rt = get_runtime()
    flow_run_id = str(get_run_context().flow_run.id)
    report = RunReport(FLOW, flow_run_id)
    state = _STATES[flow_run_id] = cs.SyncState.load(rt)
    try:
        if company_ids:
            return _run_companies(rt, state, report, flow_run_id, company_ids)
        return _run(rt, state, report, flow_run_id, full, check_crm_deletes, lookback_ms, erp_chunk, max_pages,
                    full_chunk)
    finally:
        if state.erp_writer is not None:  # a failed run: let queued writes finish, record what landed
            try:
                state.drain()
            except Exception:  # noqa: BLE001 - the run's own error is the one to report
                pass
        _STATES.pop(flow_run_id, None)
        state.close()


def _run_companies(rt: Any, state: cs.SyncState, report: RunReport, flow_run_id: str,
                   company_ids: list[str]) -> dict[str, Any]:
    ids = list(dict.fromkeys(str(c).strip() for c in company_ids if str(c).strip()))
    for start in range(0, len(ids), 100):
        records = rt.crm.get_companies(ids[start:start + 100])
        report.merge(sync_crm_page(quote(records), len(records), flow_run_id))
    deferred = state.drain()
    if deferred is not None:
        report.merge(deferred)
        cs.flush_fast(rt, report)
    summary = publish_report(report, f"customer-sync: {len(ids)} {rt.crm.capabilities.label} companies from webhooks")
    get_run_logger().info("customer-sync (companies %s): %s", ",".join(ids[:20]), summary)
    return summary


def _run(rt: Any, state: cs.SyncState, report: RunReport, flow_run_id: str, full: bool, check_crm_deletes: bool,
         lookback_ms: int, erp_chunk: int, max_pages: int, full_chunk: int) -> dict[str, Any]:
    log = get_run_logger()

    crm_cursor = None if full else rt.store.get_cursor(cs.CRM_CURSOR)
    erp_cursor = None if full else rt.store.get_cursor(cs.ERP_CURSOR)
    read_date = cs.today_jst()
    t0 = time.perf_counter()
    timing: dict[str, float] = {}
    erp_full = erp_cursor is None or erp_cursor < read_date  # first run of the day: every partner
    # the records go to state.erp_changed, out of memory (cs.PartnerRecords); pages read them back by id
    n_read = read_erp_changes(None if erp_full else erp_cursor, flow_run_id)
    state.erp_full = erp_full
    timing['freee_read'] = time.perf_counter() - t0
    report.count("erp", "read", n_read)
    report.notes.append(f"freee: {'all partners' if erp_full else 'partners updated since ' + str(erp_cursor)}"
                        f" ({n_read})")

    if state.decisions or state.decided_links:  # people's decisions on review items, before the pages
        report.merge(apply_review_decisions(len(state.decisions) + len(state.decided_links), flow_run_id))
    pages = 0
    full_read = crm_cursor is None
    next_cursor: str | None = None
    if full_read:
        state.start_writer(report)
    if full_read:
        # First sync (or full=True): read every company as fast as both rate-limit buckets allow (list
        # and search streams together); a change feed over 10,000s of records costs twice the requests.
        next_cursor = str(cs.crm_probe(rt))
        for page in chunks(rt.crm.iter_all_companies(), full_chunk):
            report.merge(sync_crm_page(quote(page), len(page), flow_run_id))
            pages += 1
            report_progress(report, report.counts[("crm", "read")])
    else:
        changes = rt.crm.iter_company_changes(crm_cursor, lookback_ms=lookback_ms)
        cursor = crm_cursor
        for batch in prefetch(changes):
            if batch.records:
                report.merge(sync_crm_page(quote(batch.records), len(batch.records), flow_run_id))
            wm = str(batch.watermark) if batch.watermark is not None else None
            if wm is not None and wm != cursor:
                rt.store.set_cursor(cs.CRM_CURSOR, str(wm), flow_run_id)  # after the page's work is committed
                cursor = wm
            pages += 1
            report_progress(report, report.counts[("crm", "read")])
            if pages >= max_pages:
                report.notes.append(f"stopped after {pages} HubSpot pages; the next run continues")
                break
    timing['hubspot_pages'] = time.perf_counter() - t0 - sum(timing.values())
    report.notes.append(f"HubSpot: {'all companies' if full_read else 'changes since ' + str(crm_cursor)}"
                        f" ({pages} pages)")

    rest = [k for k in state.erp_changed if k not in state.erp_done]  # ids; records read back per chunk
    for i in range(0, len(rest), erp_chunk):
        got = state.erp_changed.get_many(rest[i:i + erp_chunk])
        chunk = [got[k] for k in rest[i:i + erp_chunk] if k in got]
        report.merge(sync_erp_chunk(quote(chunk), len(chunk), flow_run_id))
    timing['freee_remainder'] = time.perf_counter() - t0 - sum(timing.values())
    if full_read:
        state.wait_pages()  # every HubSpot write has landed (freee writes may still be queued)
        wrote = [report.counts, state.deferred.counts if state.deferred else {}]
        if any(c.get(("crm", "updated")) or c.get(("crm", "created")) for c in wrote):
            # Our own writes moved hs_lastmodifieddate of what we wrote. Read everything once more now
            # (as cheap as the first read, and far cheaper than a change feed over that many records;
            # our own writes are recognised by their timestamp and skipped) so the next run's feed
            # holds only what changed after this run; edits people made meanwhile are caught here.
            next_cursor = str(cs.crm_probe(rt))
            echoed = 0
            for page in chunks(rt.crm.iter_all_companies(), full_chunk):
                # our own writes coming back unchanged are counted here, without a task run each page;
                # only what someone else changed meanwhile (or a record we did not write) is synced
                ours = cs.own_echoes(state, page)
                rest = [r for r in page if str(r.source_id) not in ours]
                echoed += len(page) - len(rest)
                if rest:
                    report.merge(sync_crm_page(quote(rest), len(rest), flow_run_id))
            report.count("crm", "read", echoed)
            report.count("crm", "unchanged", echoed)
        state.written_ts.clear()  # only the echo read needed them
    timing['echo_read'] = time.perf_counter() - t0 - sum(timing.values())
    deferred = state.drain()  # the freee writes queued behind the pages have landed (or the run fails)
    if deferred is not None:
        report.merge(deferred)
        cs.flush_fast(rt, report)
    timing['drain_freee_writes'] = time.perf_counter() - t0 - sum(timing.values())
    decided = [p for p in cs.resolution_pairs(state) if p.erp_id not in state.erp_done]
    if decided:
        report.merge(apply_decisions(quote(decided), len(decided), flow_run_id))
    report.merge(check_deletes(flow_run_id, check_crm_deletes))
    if full_read:
        rt.store.set_cursor(cs.CRM_CURSOR, str(next_cursor), flow_run_id)
    timing['deletes'] = time.perf_counter() - t0 - sum(timing.values())
    report.notes.append('seconds: ' + ', '.join(f'{k} {v:.1f}' for k, v in timing.items()))
    log.info('customer-sync timing: %s', report.notes[-1])
    global LAST_TIMING
    LAST_TIMING = report.notes[-1]
    if pages < max_pages:
        rt.store.set_cursor(cs.ERP_CURSOR, read_date, flow_run_id)  # every freee change above is committed
    summary = publish_report(report, f"customer-sync: {rt.crm.capabilities.label} companies ⇄ {rt.erp.capabilities.label} partners")
    log.info("customer-sync: %s", summary)
    return summary
