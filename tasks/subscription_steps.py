"""The steps of the ``subscription-proration`` flow (:mod:`flows.subscription_proration`): the Prefect tasks it
composes (one page of changed subscriptions, a refresh batch, the revenue journals) and the per-subscription
step behind them. The flow module holds the orchestration only.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Sequence

from prefect import task

from renkei.connectors.base import SubscriptionDeal
from renkei.connectors.http import QuotaExhausted, TransientError
from renkei.store.subscriptions import SubscriptionStore
from renkei.tasks.invoicing import SimulatedCrash, safe_error
from renkei.tasks.retry import BATCH_TASK
from renkei.tasks.reporting import RunReport, flush
from renkei.tasks.runtime import get_runtime
from renkei.tasks.subscriptions import FLOW, Context, SubscriptionProblem, advance, post_journals, \
    read_subscription


def process_subscriptions(subs: Sequence[SubscriptionDeal | None], as_of: date, report: RunReport, *,
                          lease_seconds: int, start_approvals: bool) -> list[str]:
    """Advance each subscription among ``subs`` (:meth:`CRMDeals.subscription_deal` of the deals read;
    ``None``: not a subscription); per-deal problems become review items. Returns the subscription deal
    ids handled."""
    rt = get_runtime()
    won = rt.crm.won_stage_ids()
    ctx = Context(rt, SubscriptionStore(rt.store), report, as_of, lease_seconds, start_approvals)
    known = set(ctx.subs.deal_ids())
    done: list[str] = []
    for sd in subs:
        if sd is None:
            continue
        deal_id = sd.deal_id
        if sd.stage not in won and deal_id not in known:
            report.count("crm", "not_won")
            continue
        try:
            sub = read_subscription(sd)
            advance(ctx, sub)
        except SubscriptionProblem as exc:
            report.review(reason_code=exc.code, entity="deal", entity_key=deal_id, message=str(exc), side="crm")
        except (TransientError, QuotaExhausted, SimulatedCrash):
            raise  # not about this record: the batch retries / the run stops cleanly / a test's simulated death
        except Exception as exc:  # noqa: BLE001 - per-record isolation: one review item, never a failed batch
            report.review(reason_code="SUBSCRIPTION_FAILED", entity="deal", entity_key=deal_id,
                          message=safe_error(exc))
        done.append(deal_id)
        report.count("crm", "subscription")
    flush(rt.store, report)
    return done


@task(**BATCH_TASK, task_run_name="subscriptions changed since {since}")
def changed_page(since: str | None, as_of: str, flow_run_id: str, lease_seconds: int,
                 start_approvals: bool) -> tuple[RunReport, list[str], str | None, bool]:
    """One page of won deals modified since the cursor: advance the subscriptions among them."""
    rt = get_runtime()
    report = RunReport(FLOW, flow_run_id)
    for batch in rt.crm.iter_deal_changes(since, stages=rt.crm.won_stage_ids()):
        wm = batch.watermark.encode() if hasattr(batch.watermark, "encode") else batch.watermark
        subs = [rt.crm.subscription_deal(r) for r in batch.records]
        done = process_subscriptions(subs, date.fromisoformat(as_of), report, lease_seconds=lease_seconds,
                                     start_approvals=start_approvals)
        return report, done, (wm if wm is not None else since), batch.exhausted
    return report, [], since, True


@task(**BATCH_TASK, task_run_name="refresh {n} subscriptions")
def refresh_batch(deal_ids: list[str], n: int, as_of: str, flow_run_id: str, lease_seconds: int,
                  start_approvals: bool) -> RunReport:
    """Re-read known subscriptions (amended line items) and advance their timelines."""
    rt = get_runtime()
    report = RunReport(FLOW, flow_run_id)
    subs = rt.crm.get_subscription_deals(deal_ids)
    process_subscriptions(subs, date.fromisoformat(as_of), report, lease_seconds=lease_seconds,
                          start_approvals=start_approvals)
    return report


@task(**BATCH_TASK, task_run_name="revenue journals up to {as_of}")
def revenue_journals(as_of: str, flow_run_id: str, lease_seconds: int) -> tuple[RunReport, list[dict[str, Any]]]:
    rt = get_runtime()
    report = RunReport(FLOW, flow_run_id)
    billings = SubscriptionStore(rt.store).billings()
    rows = post_journals(rt, billings, date.fromisoformat(as_of), report, lease_seconds=lease_seconds) if billings else []
    flush(rt.store, report)
    return report, rows
