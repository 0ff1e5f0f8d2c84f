"""The steps of the ``proration-approval`` flow (:mod:`flows.proration_approval`): reading the subscription
deal. The flow module holds the orchestration only.
"""

from __future__ import annotations



from renkei.tasks.runtime import get_runtime
from renkei.tasks.subscriptions import SubscriptionProblem, read_subscription


def _read(deal_id: str):
    rt = get_runtime()
    (sd,) = rt.crm.get_subscription_deals([deal_id])
    if sd is None:
        raise SubscriptionProblem("NOT_A_SUBSCRIPTION", "no recurring line items")
    return read_subscription(sd)
