"""subscription-proration (継続課金・日割り精算・売上按分): mid-term changes of subscriptions → prorated
charges/credits in freee, renewal invoices, and the monthly revenue journals (前受金 → 売上高).

Per run (daily, or on demand with ``as_of``):

1. read the won deals modified since the committed cursor, one task per page; deals with recurring line
   items are subscriptions: their versions are recorded and their timeline advanced
   (:func:`tasks.subscriptions.advance`); the cursor moves only after the page is done;
2. re-read every subscription already known (line-item edits do not always touch the deal), one task per
   100 deals, and advance their timelines the same way;
3. post the revenue journals of every billing for the months closed by ``as_of`` (one task), exactly once,
   and publish the recognition schedule as a table artifact (``subscription-revenue-schedule``).

Prorations that create a net credit or exceed ``[proration] approval_amount_threshold`` open a review item
and start one ``proration-approval`` run; that subscription waits for the decision. See
``docs/subscriptions.md`` for how users record amendments in HubSpot.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.context import get_run_context

from renkei.domain.dates import today_tokyo
from renkei.domain.money import format_yen
from renkei.store.subscriptions import SubscriptionStore
from renkei.tasks.reporting import run_name, RunReport, flush, publish_report
from renkei.tasks.review_retries import finish_retries, pending_retries
from renkei.tasks.runtime import get_runtime
from renkei.tasks.subscriptions import FLOW
from renkei.tasks.housekeeping import reap_dead_runs
from renkei.tasks.preflight import preflight
from renkei.tasks.subscription_steps import changed_page, refresh_batch, revenue_journals

CURSOR = "subscription-proration:hubspot-deals"
SCHEDULE_ARTIFACT = "subscription-revenue-schedule"
MAX_SCHEDULE_ROWS = 2000


def _run_name() -> str:
    return run_name(FLOW)


@flow(name=FLOW, flow_run_name=_run_name, log_prints=False)
def subscription_proration(as_of: str | None = None, lease_seconds: int = 300, start_approvals: bool = True,
                           max_pages: int = 1000) -> dict[str, Any]:
    """Subscription changes → prorations in freee (exactly once), renewals, revenue journals per month.

    ``as_of``: the business date (Asia/Tokyo, ISO) the run acts on — default today; events after it wait.
    """
    reap_dead_runs(FLOW)  # earlier runs killed mid-way: marked Crashed, their leases freed
    preflight(FLOW)  # connections, store and the CRM schema, or one line naming the setting to fix
    log = get_run_logger()
    rt = get_runtime()
    day = date.fromisoformat(as_of) if as_of else today_tokyo()
    flow_run_id = str(get_run_context().flow_run.id)
    report = RunReport(FLOW, flow_run_id)
    report.notes.append(f"as of {day.isoformat()} (Asia/Tokyo)")
    handled: set[str] = set()
    cursor = rt.store.get_cursor(CURSOR)
    for _ in range(max_pages):
        page_report, done, watermark, exhausted = changed_page(cursor, day.isoformat(), flow_run_id, lease_seconds,
                                                               start_approvals)
        report.merge(page_report)
        handled.update(done)
        if watermark is not None and watermark != cursor:
            rt.store.set_cursor(CURSOR, watermark, flow_run_id)  # after the page's work is committed
            cursor = watermark
        if exhausted:
            break
    retries = pending_retries(rt, FLOW, "deal")  # decided "fixed at source → retry": read again, once
    known = list(dict.fromkeys([d for d in SubscriptionStore(rt.store).deal_ids() if d not in handled]
                               + [r.entity_key for r in retries if r.entity_key not in handled]))
    for i in range(0, len(known), 100):
        chunk = known[i: i + 100]
        report.merge(refresh_batch(chunk, len(chunk), day.isoformat(), flow_run_id, lease_seconds, start_approvals))
    flush(rt.store, report)
    finish_retries(rt, FLOW, retries)  # passed, or open again with the new reason
    journal_report, rows = revenue_journals(day.isoformat(), flow_run_id, lease_seconds)
    report.merge(journal_report)
    posted = rt.erp.capabilities.journals
    if rows:
        shown = rows[-MAX_SCHEDULE_ROWS:]  # the newest billings when there are very many
        create_table_artifact(
            key=SCHEDULE_ARTIFACT, table=[{**r, "amount": format_yen(r["amount"]),
                                           "deferred_after": format_yen(r["deferred_after"])} for r in shown],
            description=f"## 売上按分スケジュール / revenue recognition schedule (as of {day.isoformat()})\n"
                        "Straight-line by days per billed period, largest-remainder rounding; "
                        + ("前受金 → 売上高 journals at each month close." if posted else
                           f"kept in Renkei's state store: {rt.erp.capabilities.label} takes no journals, "
                           "so none are posted.")
                        + (f"\n\n(last {len(shown)} of {len(rows)} rows)" if len(shown) < len(rows) else ""))
    report.note_held("subscription")
    summary = publish_report(report, "subscription-proration: prorations, renewals, revenue journals")
    log.info("subscription-proration: %s", summary)
    return summary
