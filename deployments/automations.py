"""Renkei's alerts as Prefect automations, defined here and created or updated by ``renkei setup``.

=====================  ========================================================================================
automation             fires when
=====================  ========================================================================================
``renkei-run-failed``  any flow run of a Renkei flow enters ``Failed`` or ``Crashed`` (an approval that timed out
                       ends Failed with "The flow was … and never resumed." and is included)
``renkei-approval-``   an approval run (tag ``renkei-approval``) has been ``Paused``/``Suspended`` for
``reminder``           ``[alerts] approval_reminder_hours`` without any further state change (proactive trigger,
                       one bucket per flow run)
``renkei-approval-``   an expired approval was requested again (``renkei.approval.rerequested``: the owning flow
``rerequested``        started a fresh approval run; tasks/approval_expiry.py)
``renkei-review-``     one run opened ``[alerts] review_flood_threshold`` review items within
``flood``              ``review_flood_window_hours`` (``renkei.review.opened`` events, one bucket per run)
=====================  ========================================================================================

Each sends a notification through one notification block (``--notify webhook:URL | slack:URL | email:ADDR``,
saved as ``renkei-notify``). Subjects and bodies are Jinja rendered by the Prefect server. Notifications are
best effort (Prefect retries a few times, then drops the message into ``$PREFECT_HOME/dlq``).

Automations are matched by name: re-running setup updates them in place; an alert switched off in the policy is
deleted.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any
from uuid import UUID

from prefect.automations import Automation, EventTrigger, Posture, SendNotification

from renkei.policy import AlertsPolicy

NOTIFY_BLOCK_NAME = "renkei-notify"
APPROVAL_TAG = "renkei-approval"
PREFIX = "renkei-"
RENKEI_FLOWS = ["customer-sync", "product-sync", "order-to-invoice", "payment-writeback", "subscription-proration",
                "invoice-approval", "payment-approval", "proration-approval", "review-decisions"]

RUN_FAILED = "renkei-run-failed"
APPROVAL_REMINDER = "renkei-approval-reminder"
REVIEW_FLOOD = "renkei-review-flood"
APPROVAL_REREQUESTED = "renkei-approval-rerequested"

_RUN_LINK = "{{ event.resource['prefect.resource.id'] }}"


# ------------------------------------------------------------------------------------- notification block
def notification_block(spec: str) -> Any:
    """The notification block for ``webhook:URL``, ``slack:URL`` or ``email:ADDR[,ADDR…]``.

    E-mail goes through SendGrid (core Prefect has no SMTP notification block): the API key comes from
    ``RENKEI_SENDGRID_API_KEY`` and the sender from ``RENKEI_NOTIFY_SENDER`` (default ``renkei@localhost``)."""
    kind, _, target = spec.partition(":")
    kind = kind.strip().lower()
    if not target:
        raise ValueError(f"--notify {spec!r}: expected webhook:URL, slack:URL or email:ADDR")
    if kind == "webhook":
        from prefect.blocks.notifications import CustomWebhookNotificationBlock

        return CustomWebhookNotificationBlock(
            name="renkei", url=target, method="POST",
            json_data={"subject": "{{subject}}", "body": "{{body}}", "source": "renkei"})
    if kind == "slack":
        from prefect.blocks.notifications import SlackWebhook

        return SlackWebhook(url=target)
    if kind == "email":
        from prefect.blocks.notifications import SendgridEmail

        key = os.environ.get("RENKEI_SENDGRID_API_KEY")
        if not key:
            raise ValueError("--notify email:… sends through SendGrid: set RENKEI_SENDGRID_API_KEY (or use a "
                             "webhook to your own mail relay)")
        return SendgridEmail(api_key=key, sender_email=os.environ.get("RENKEI_NOTIFY_SENDER", "renkei@localhost"),
                             to_emails=[a.strip() for a in target.split(",") if a.strip()])
    raise ValueError(f"--notify {spec!r}: unknown kind {kind!r} (webhook | slack | email)")


def save_notification_block(spec: str, name: str = NOTIFY_BLOCK_NAME) -> UUID:
    """Save (overwrite) the notification block ``name``; returns its document id."""
    block = notification_block(spec)
    return block.save(name, overwrite=True, _sync=True)


def existing_notification_block(name: str = NOTIFY_BLOCK_NAME) -> UUID | None:
    """The document id of a notification block saved earlier under ``name`` (any notification type)."""
    from prefect import get_client

    with get_client(sync_client=True) as client:
        for doc in client.read_block_documents():
            if doc.name == name and not doc.is_anonymous:
                return doc.id
    return None


# --------------------------------------------------------------------------------------------- automations
def renkei_automations(alerts: AlertsPolicy, block_id: UUID) -> tuple[list[Automation], list[str]]:
    """The automations the policy asks for, and the names of those it switches off."""
    wanted: list[Automation] = []
    off: list[str] = []
    flows_related = {"prefect.resource.role": "flow", "prefect.resource.name": RENKEI_FLOWS}

    if alerts.on_failure:
        wanted.append(Automation(
            name=RUN_FAILED, description="A Renkei flow run ended Failed or Crashed.",
            trigger=EventTrigger(
                expect={"prefect.flow-run.Failed", "prefect.flow-run.Crashed"},
                match={"prefect.resource.id": "prefect.flow-run.*"}, match_related=flows_related,
                posture=Posture.Reactive, threshold=1, within=timedelta(0)),
            actions=[SendNotification(
                block_document_id=block_id,
                subject="Renkei: run {{ event.resource['prefect.resource.name'] }} "
                        "{{ event.resource['prefect.state-name'] }}",
                body="Flow run {{ event.resource['prefect.resource.name'] }} ended "
                     "{{ event.resource['prefect.state-name'] }}: {{ event.resource['prefect.state-message'] }}\n"
                     f"Run: {_RUN_LINK}")]))
    else:
        off.append(RUN_FAILED)

    if alerts.approval_reminder_hours > 0:
        wanted.append(Automation(
            name=APPROVAL_REMINDER,
            description=f"An approval run has waited {alerts.approval_reminder_hours:g} h for a decision.",
            trigger=EventTrigger(
                after={"prefect.flow-run.Paused", "prefect.flow-run.Suspended"},
                expect={"prefect.flow-run.*"},
                for_each={"prefect.resource.id"},
                match={"prefect.resource.id": "prefect.flow-run.*"},
                match_related={"prefect.resource.id": f"prefect.tag.{APPROVAL_TAG}", "prefect.resource.role": "tag"},
                posture=Posture.Proactive, threshold=1,
                within=timedelta(hours=alerts.approval_reminder_hours)),
            actions=[SendNotification(
                block_document_id=block_id,
                subject="Renkei: approval waiting — {{ event.resource['prefect.resource.name'] }}",
                body=f"Approval run {{{{ event.resource['prefect.resource.name'] }}}} has waited more than "
                     f"{alerts.approval_reminder_hours:g} h for a decision (renkei approvals list).\n"
                     f"Run: {_RUN_LINK}")]))
    else:
        off.append(APPROVAL_REMINDER)

    if alerts.on_approval_rerequested:
        wanted.append(Automation(
            name=APPROVAL_REREQUESTED, description="An expired approval was requested again in a fresh run.",
            trigger=EventTrigger(
                expect={"renkei.approval.rerequested"}, match={"prefect.resource.id": "prefect.flow-run.*"},
                posture=Posture.Reactive, threshold=1, within=timedelta(0)),
            actions=[SendNotification(
                block_document_id=block_id,
                subject="Renkei: approval requested again — {{ event.resource['renkei.entity'] }} "
                        "{{ event.resource['renkei.entity-key'] }}",
                body="Nobody decided in time: approval run {{ event.resource['renkei.expired-run.id'] }} expired "
                     "and a new one waits for a decision (renkei approvals list).\n"
                     f"Run: {_RUN_LINK}")]))
    else:
        off.append(APPROVAL_REREQUESTED)

    if alerts.review_flood_threshold > 0:
        wanted.append(Automation(
            name=REVIEW_FLOOD,
            description=f"A run opened {alerts.review_flood_threshold} review items or more.",
            trigger=EventTrigger(
                expect={"renkei.review.opened"}, match={"prefect.resource.id": "renkei.review.*"},
                for_each={"renkei.flow-run.id"}, posture=Posture.Reactive,
                threshold=alerts.review_flood_threshold,
                within=timedelta(hours=alerts.review_flood_window_hours)),
            actions=[SendNotification(
                block_document_id=block_id,
                subject="Renkei: {{ event.resource['renkei.flow'] }} opened many review items",
                body=f"A {{{{ event.resource['renkei.flow'] }}}} run opened at least {alerts.review_flood_threshold} "
                     "review items (latest: {{ event.resource['prefect.resource.name'] }}); "
                     "flow run {{ event.resource['renkei.flow-run.id'] }} (renkei reviews list).")]))
    else:
        off.append(REVIEW_FLOOD)
    return wanted, off


def apply_automations(alerts: AlertsPolicy, block_id: UUID) -> dict[str, str]:
    """Create or update each wanted automation by name and delete those switched off; idempotent.
    Returns ``{name: created | updated | deleted}``."""
    from prefect import get_client

    wanted, off = renkei_automations(alerts, block_id)
    out: dict[str, str] = {}
    with get_client(sync_client=True) as client:
        for auto in wanted:
            existing = client.read_automations_by_name(auto.name)
            if existing:
                keep, *dupes = existing
                for d in dupes:
                    client.delete_automation(d.id)
                auto.id = keep.id
                auto.update()
                out[auto.name] = "updated"
            else:
                auto.create()
                out[auto.name] = "created"
        for name in off:
            for d in client.read_automations_by_name(name):
                client.delete_automation(d.id)
                out[name] = "deleted"
    return out
