"""How subscription versions are read from HubSpot line items (no sandbox, no Prefect): the sandbox demo
amendments, in-place edits, quantity 0 as "ended", and the review reasons."""

from __future__ import annotations

from datetime import date

import pytest

from renkei.sandboxes import demo_data
from renkei.store.models import SubscriptionVersion
from renkei.connectors.hubspot.deal_ops import subscription_from_hubspot
from renkei.tasks.subscriptions import SubscriptionProblem, plan_new_versions
from renkei.tasks.subscriptions import read_subscription as _read_subscription


def read_subscription(raw: dict):
    """A raw HubSpot deal as the HubSpot connector hands it to the subscription steps."""
    sd = subscription_from_hubspot(raw)
    if sd is None:
        raise SubscriptionProblem("NOT_A_SUBSCRIPTION", "no recurring line items")
    return _read_subscription(sd)


def raw_deal(key: str) -> dict:
    d = demo_data.deal(key)
    return {"id": key, "properties": d.hubspot_properties(), "companies": ["C1"],
            "line_items": [{"id": f"{key}-L{i}", "properties": li.hubspot_properties()}
                           for i, li in enumerate(d.line_items, 1)]}


def summary(planned) -> list[tuple[str, list[tuple[str, str]]]]:
    return [(e.isoformat(), sorted((l["key"], l["quantity"]) for l in lines)) for e, lines in planned]


def stored(deal_id: str, version: int, effective: str, lines: list[dict], status: str = "applied") -> SubscriptionVersion:
    return SubscriptionVersion(deal_id=deal_id, version=version, effective_date=effective, lines=lines, status=status)


def test_demo_seat_addition_is_a_second_version():
    sub = read_subscription(raw_deal("D15"))
    assert (sub.anchor, sub.frequency.value, sub.term_months) == (date(2026, 9, 1), "monthly", 12)
    assert summary(plan_new_versions(sub, None)) == [
        ("2026-09-01", [("RK-SAAS-STD", "10")]),
        ("2026-11-16", [("RK-SAAS-STD", "10"), ("RK-SAAS-STD", "5")]),
    ]


def test_demo_plan_upgrade_ends_the_old_plan_with_quantity_zero():
    sub = read_subscription(raw_deal("D16"))
    assert summary(plan_new_versions(sub, None)) == [
        ("2026-08-01", [("RK-SAAS-STD", "8")]),
        ("2026-12-01", [("RK-SAAS-PRO", "8")]),
    ]


def test_demo_annual_subscription_and_one_off_lines():
    sub = read_subscription(raw_deal("D14"))
    assert sub.frequency.value == "annually"
    ((e, lines),) = plan_new_versions(sub, None)
    assert {l["key"]: l["unit_price"] for l in lines} == {"RK-SAAS-ENT": 1_200_000, "RK-SUP-Y": 200_000}
    one_off = read_subscription(raw_deal("D13"))  # the onboarding line is not part of the subscription
    assert [l["key"] for l in plan_new_versions(one_off, None)[0][1]] == ["RK-SAAS-PRO"]


def test_in_place_edit_with_an_effective_date_is_diffed_against_the_stored_version():
    raw = raw_deal("D17")
    sub = read_subscription(raw)
    ((e1, v1),) = plan_new_versions(sub, None)
    latest = stored("D17", 1, e1.isoformat(), v1)
    assert plan_new_versions(sub, latest) == []  # nothing changed
    raw["line_items"][0]["properties"] |= {"quantity": "2", "renkei_effective_date": "2027-02-10"}
    ((e2, v2),) = plan_new_versions(read_subscription(raw), latest)
    assert e2 == date(2027, 2, 10) and [l["quantity"] for l in v2] == ["2"]
    # the same edit without a date is refused; so is a date before the stored version
    raw["line_items"][0]["properties"].pop("renkei_effective_date")
    with pytest.raises(SubscriptionProblem) as exc:
        plan_new_versions(read_subscription(raw), latest)
    assert exc.value.code == "AMENDMENT_WITHOUT_EFFECTIVE_DATE"
    raw["line_items"][0]["properties"]["renkei_effective_date"] = "2026-10-01"
    with pytest.raises(SubscriptionProblem) as exc:
        plan_new_versions(read_subscription(raw), latest)
    assert exc.value.code == "AMENDMENT_BEFORE_LAST_VERSION"


def test_cancellation_and_deleted_line_take_the_date_of_the_other_changes():
    raw = raw_deal("D14")
    ((e1, v1),) = plan_new_versions(read_subscription(raw), None)
    latest = stored("D14", 1, e1.isoformat(), v1)
    # support line deleted, licence set to quantity 0 from 2027-04-01 → everything ends on that date
    raw["line_items"] = [raw["line_items"][0]]
    raw["line_items"][0]["properties"] |= {"quantity": "0", "renkei_effective_date": "2027-04-01"}
    assert summary(plan_new_versions(read_subscription(raw), latest)) == [("2027-04-01", [])]


def test_mixed_frequencies_are_refused():
    raw = raw_deal("D14")
    raw["line_items"][1]["properties"]["recurringbillingfrequency"] = "monthly"
    with pytest.raises(SubscriptionProblem) as exc:
        read_subscription(raw)
    assert exc.value.code == "SUBSCRIPTION_INVALID"


def test_an_ended_add_on_line_does_not_end_the_base_line_on_later_runs():
    raw = raw_deal("D15")
    planned = plan_new_versions(read_subscription(raw), None)
    latest = stored("D15", 2, planned[1][0].isoformat(), planned[1][1])
    # the +5 add-on (line 2) ends from 2027-01-01: back to 10 seats
    raw["line_items"][1]["properties"] |= {"quantity": "0", "renkei_effective_date": "2027-01-01"}
    ((e3, v3),) = plan_new_versions(read_subscription(raw), latest)
    assert (e3.isoformat(), sorted(l["quantity"] for l in v3)) == ("2027-01-01", ["10"])
    # next run: the zero line is history, not a new change (the base line stays)
    assert plan_new_versions(read_subscription(raw), stored("D15", 3, "2027-01-01", v3)) == []


def test_a_change_is_prorated_against_what_was_billed():
    from renkei.tasks.subscriptions import billed_version

    v = [stored("D", 1, "2026-11-01", [], "applied"),
         stored("D", 2, "2026-11-05", [], "rejected"),          # finance refused the credit: still billed v1
         stored("D", 3, "2026-11-10", [], "invoiced"),          # proration billed: now v3
         stored("D", 4, "2026-11-12", [], "applied"),           # behaviour none: still v3
         stored("D", 5, "2026-11-20", [], "scheduled")]
    v[3].proration = {"behavior": "none"}
    assert billed_version(v, 1, 3).version == 1
    assert billed_version(v, 1, 5).version == 3
    assert billed_version(v, 4, 5).version == 4  # a period invoice billed with v4 in force


def test_a_line_ended_by_a_zero_line_stays_ended_on_later_runs():
    raw = raw_deal("D16")
    sub = read_subscription(raw)
    (e1, v1), (e2, v2) = plan_new_versions(sub, None)
    history = [stored("D16", 1, e1.isoformat(), v1), stored("D16", 2, e2.isoformat(), v2, "scheduled")]
    assert plan_new_versions(read_subscription(raw), history[-1], history) == []
