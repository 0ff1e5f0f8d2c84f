"""Tables of the state store. Rows never hold secrets; personal data in the audit log is masked."""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any, Optional

from sqlalchemy import JSON, BigInteger, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class IdMap(SQLModel, table=True):
    """One row per entity pair: a CRM record ⇄ an ERP record, unique both ways."""

    __tablename__ = "id_map"
    __table_args__ = (
        UniqueConstraint("entity", "crm_id", name="uq_id_map_crm"),
        UniqueConstraint("entity", "erp_id", name="uq_id_map_erp"),
    )

    id: Optional[int] = Field(default=None, primary_key=True)
    entity: str = Field(max_length=32, description="company | product | deal | ...")
    crm_id: str = Field(max_length=64)
    erp_id: str = Field(max_length=64)
    status: str = Field(default="active", max_length=16, description="active | merged | archived")
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class SyncCursor(SQLModel, table=True):
    """Watermark of an incremental read; moved only after the work it covers is committed."""

    __tablename__ = "sync_cursor"

    name: str = Field(primary_key=True, max_length=128)
    value: str = Field(max_length=512)
    flow_run_id: Optional[str] = Field(default=None, max_length=64)
    updated_at: datetime = Field(default_factory=utcnow)


class BaseSnapshot(SQLModel, table=True):
    """Per-record base for 3-way change detection: the field values both sides agreed on last."""

    __tablename__ = "base_snapshot"

    entity: str = Field(primary_key=True, max_length=32)
    key: str = Field(primary_key=True, max_length=128, description="usually the id_map row id or crm id")
    fields: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    crm_hash: Optional[str] = Field(default=None, max_length=64)
    erp_hash: Optional[str] = Field(default=None, max_length=64)
    updated_at: datetime = Field(default_factory=utcnow)


class LedgerEntry(SQLModel, table=True):
    """Idempotency ledger for external writes: claimed before the call, committed after it.

    ``status``: claimed (a worker holds it until ``lease_until``) → committed (``external_id`` set)
    or released (the attempt failed before any external effect; may be claimed again).

    ``result`` of a claimed row may hold what is being sent (``{"sent": …}``, stored before the external
    call) so that a recovery re-sends exactly that. ``writeback`` is the CRM outbox state of a committed
    fact: ``pending`` (the CRM does not show it yet) → ``done``; NULL when nothing is written back
    (:mod:`tasks.outbox`).
    """

    __tablename__ = "idempotency_ledger"
    __table_args__ = (Index("ix_ledger_writeback", "writeback", "key"),)

    key: str = Field(primary_key=True, max_length=200)
    status: str = Field(default="claimed", max_length=16)
    owner: str = Field(max_length=128)
    attempts: int = Field(default=1)
    external_id: Optional[str] = Field(default=None, max_length=128)
    result: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    claimed_at: datetime = Field(default_factory=utcnow)
    lease_until: datetime = Field(default_factory=utcnow)
    committed_at: Optional[datetime] = None
    writeback: Optional[str] = Field(default=None, max_length=16, description="pending | done | NULL (none)")


class ReviewItem(SQLModel, table=True):
    """A record that needs a person: reason code, payload, decision."""

    __tablename__ = "review_item"
    __table_args__ = (Index("ix_review_item_status", "status"), Index("ix_review_item_dedupe", "dedupe_key"))

    id: Optional[int] = Field(default=None, primary_key=True)
    flow: str = Field(max_length=64)
    reason_code: str = Field(max_length=64)
    entity: str = Field(max_length=32)
    entity_key: str = Field(max_length=128)
    message: str = Field(default="", max_length=2000)
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    dedupe_key: str = Field(max_length=300, description="flow:reason:entity:key — one open item per key")
    status: str = Field(default="open", max_length=16, description="open | approved | rejected | resolved | dismissed")
    flow_run_id: Optional[str] = Field(default=None, max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    decided_by: Optional[str] = Field(default=None, max_length=254)
    decided_at: Optional[datetime] = None
    decision: Optional[str] = Field(default=None, max_length=32)
    comment: Optional[str] = Field(default=None, max_length=2000)
    fingerprint: Optional[str] = Field(default=None, max_length=128,
                                       description="the source record's fingerprint: a dismissed item stays "
                                                   "dismissed while it is unchanged")
    decision_data: Optional[dict[str, Any]] = Field(default=None, sa_column=Column(JSON, nullable=True),
                                                    description="the typed decision (domain.decisions)")
    applied_at: Optional[datetime] = Field(default=None, description="when the owning flow carried the decision out")


class AuditEvent(SQLModel, table=True):
    """Append-only: when, which flow run, who, what entity, what changed (personal data masked)."""

    __tablename__ = "audit_event"
    __table_args__ = (Index("ix_audit_entity", "entity", "entity_key"), Index("ix_audit_deal", "deal_id"))

    id: Optional[int] = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow)
    flow_run_id: Optional[str] = Field(default=None, max_length=64)
    actor: str = Field(max_length=254, description="flow name, or the approver's e-mail")
    action: str = Field(max_length=64, description="create | update | link | approve | reject | ...")
    system: str = Field(default="renkei", max_length=16, description="crm | erp | renkei")
    entity: str = Field(max_length=32)
    entity_key: str = Field(max_length=128)
    changes: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    deal_id: Optional[str] = Field(default=None, max_length=64,
                                   description="the CRM deal the event belongs to (a trace reads by it)")


class SubscriptionVersion(SQLModel, table=True):
    """One version of a subscription (継続課金) — version 1 as sold, then one per dated amendment.

    HubSpot only holds a deal's *current* line items; the versions kept here are what every later change
    is prorated against. ``status``: scheduled (effective date not reached) → applied (no proration:
    nothing billed to adjust, behaviour none, rejected) | pending_next (proration lines wait for the next
    period invoice) | awaiting_approval → invoiced (proration billed, ``invoice_id``) | rejected.
    """

    __tablename__ = "subscription_version"

    deal_id: str = Field(primary_key=True, max_length=64)
    version: int = Field(primary_key=True)
    effective_date: str = Field(max_length=10, description="ISO date the version takes effect")
    lines: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    status: str = Field(default="scheduled", max_length=24)
    proration: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    net: int = Field(default=0)
    invoice_id: Optional[str] = Field(default=None, max_length=64)
    decided_by: Optional[str] = Field(default=None, max_length=254)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class SubscriptionBilling(SQLModel, table=True):
    """One billing of a subscription: a period invoice or an immediate proration invoice, with the revenue
    segments (service range + 税抜 amount) its monthly recognition schedule is computed from."""

    __tablename__ = "subscription_billing"

    deal_id: str = Field(primary_key=True, max_length=64)
    key: str = Field(primary_key=True, max_length=64, description="period:<start> | proration:v<n>")
    kind: str = Field(max_length=16, description="period | proration")
    period_start: str = Field(max_length=10)
    period_end: str = Field(max_length=10)
    version: int = Field(default=1)
    issue_date: str = Field(max_length=10)
    amount: int = Field(default=0, description="税抜 amount recognised as revenue")
    invoice_id: Optional[str] = Field(default=None, max_length=64)
    invoice_number: Optional[str] = Field(default=None, max_length=64)
    segments: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)


class PayerAliasRow(SQLModel, table=True):
    """振込名義 → 取引先: a bank payer name (normalised, :func:`domain.reconciliation.payer_key`) known to
    pay for a freee partner — registered by finance or learned from an approved deposit (入金消込)."""

    __tablename__ = "payer_alias"

    payer_key: str = Field(primary_key=True, max_length=128, description="normalised payer name")
    partner_id: str = Field(primary_key=True, max_length=64, description="freee partner id")
    payer_name: str = Field(default="", max_length=200, description="the name as the bank printed it")
    source: str = Field(default="learned", max_length=16, description="registered | learned")
    approved_by: Optional[str] = Field(default=None, max_length=254)
    approved_at: datetime = Field(default_factory=utcnow)
    deposit_id: Optional[str] = Field(default=None, max_length=64, description="the deposit it was learned from")


class CredentialRow(SQLModel, table=True):
    """A rotating credential shared by every worker (the freee token set): one row per name, locked
    (``SELECT … FOR UPDATE`` / ``BEGIN IMMEDIATE``) while a worker refreshes it. ``ciphertext`` is the
    token set encrypted with a key derived from ``RENKEI_DATA_KEY`` — never the token in clear."""

    __tablename__ = "credential"

    name: str = Field(primary_key=True, max_length=128, description="e.g. freee:<company id>")
    ciphertext: Optional[str] = Field(default=None, max_length=8000, description="Fernet token of the JSON set")
    generation: int = Field(default=0, description="rotations so far (not secret)")
    updated_at: datetime = Field(default_factory=utcnow)


class ReportSnapshot(SQLModel, table=True):
    """One reporting snapshot (``domain.reporting.Snapshot`` as JSON) with its drift counts, for the trend."""

    __tablename__ = "report_snapshot"
    __table_args__ = (Index("ix_report_snapshot_taken", "taken_at"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    taken_at: datetime = Field(default_factory=utcnow)
    as_of: str = Field(max_length=10, description="ISO Asia/Tokyo business date")
    flow_run_id: Optional[str] = Field(default=None, max_length=64)
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    drift: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False),
                                  description="drift kind → count")
    drift_items: list[Any] = Field(default_factory=list, sa_column=Column(JSON, nullable=False),
                                   description="the drift items (apart: pages that show figures do not load them)")


class ReportRecord(SQLModel, table=True):
    """A deal, invoice or payment as read by the snapshot ``snapshot_id``: what search and trace read.
    ``counterparty`` is the company name (a 個人事業者's masked); no other personal data."""

    __tablename__ = "report_record"
    __table_args__ = (Index("ix_report_record_search", "snapshot_id", "kind", "day"),
                      Index("ix_report_record_deal", "snapshot_id", "deal_id"),
                      Index("ix_report_record_party", "snapshot_id", "counterparty_key"))

    id: Optional[int] = Field(default=None, primary_key=True)
    snapshot_id: int = Field(index=False)
    kind: str = Field(max_length=16, description="deal | invoice | payment")
    key: str = Field(max_length=128)
    day: Optional[str] = Field(default=None, max_length=10, description="ISO date: close / issue / payment date")
    amount: int = Field(default=0, sa_type=BigInteger)
    counterparty: str = Field(default="", max_length=255)
    counterparty_key: str = Field(default="", max_length=255, description="normalised name for search")
    deal_id: Optional[str] = Field(default=None, max_length=64)
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class RateBucket(SQLModel, table=True):
    """One external API pace shared by every worker on every host (``store.ratelimit.DbRateLimiter``).

    ``rolling``: at most ``limit_n`` acquisitions in any ``window_s`` seconds — the times of the last
    ``limit_n`` acquisitions are a ring in ``rate_slot`` and ``next_slot`` points at the oldest.
    ``calendar``: at most ``limit_n`` per calendar window (a daily cap), counted in ``used`` since
    ``window_start``. ``blocked_until`` (epoch seconds) is set after a 429 so every process backs off."""

    __tablename__ = "rate_bucket"

    name: str = Field(primary_key=True, max_length=200, description="<scope>:<bucket>, e.g. freee:123:iv_minute")
    kind: str = Field(default="rolling", max_length=16, description="rolling | calendar")
    limit_n: int = Field(description="acquisitions allowed per window")
    window_s: float = Field(description="window length in seconds")
    next_slot: int = Field(default=0, description="rolling: ring position of the oldest acquisition")
    window_start: float = Field(default=0.0, description="calendar: start of the counted window (epoch s)")
    used: int = Field(default=0, description="calendar: acquisitions in the current window")
    blocked_until: float = Field(default=0.0, description="epoch seconds; after a 429 (penalise)")
    acquired_total: int = Field(default=0, description="acquisitions ever (monitoring)")
    penalised_total: int = Field(default=0, description="429s reported (monitoring)")
    updated_at: datetime = Field(default_factory=utcnow)


class RateSlot(SQLModel, table=True):
    """The ring of one rolling bucket: when each of its last ``limit_n`` acquisitions happened."""

    __tablename__ = "rate_slot"

    bucket: str = Field(primary_key=True, max_length=200)
    idx: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    at: float = Field(description="epoch seconds of the acquisition")


class WebhookEvent(SQLModel, table=True):
    """One delivered webhook event (HubSpot ``eventId`` or an inbound idempotency key), written before the
    receiver acknowledges: a second delivery of the same key is a replay and emits nothing. ``status`` is
    ``pending`` until its Prefect event is sent (``emitted``), or ``ignored`` (not relevant: a deal moved
    to a stage that is not won, a property nobody reads); an emitted deal that a working webhook run took
    over from its queued run is ``taken``. ``payload`` is the Prefect event's payload (ids,
    stage; an inbound body) so a pending row can be emitted again after a restart. Never a secret."""

    __tablename__ = "webhook_event"
    __table_args__ = (
        UniqueConstraint("source", "event_key", name="uq_webhook_event_key"),
        Index("ix_webhook_event_status", "status"),
    )

    id: Optional[int] = Field(default=None, primary_key=True)
    source: str = Field(max_length=32, description="hubspot | inbound:order | inbound:payment")
    event_key: str = Field(max_length=128, description="HubSpot eventId, or the inbound idempotency key")
    event: str = Field(default="", max_length=64, description="Prefect event name (empty when ignored)")
    object_id: str = Field(default="", max_length=64, description="deal / company id, or the inbound record id")
    status: str = Field(default="pending", max_length=16,
                        description="pending | emitted | taken (a working run took it) | ignored")
    batch_id: Optional[str] = Field(default=None, max_length=64)
    payload: Optional[dict[str, Any]] = Field(default=None, sa_column=Column(JSON, nullable=True))
    occurred_at: Optional[datetime] = Field(default=None, description="when the change happened at the source")
    received_at: datetime = Field(default_factory=utcnow)
    emitted_at: Optional[datetime] = Field(default=None)


class PaymentNotice(SQLModel, table=True):
    """A payment notice (``POST /inbound/payment``): money announced by a bank, a payment service or a
    Zapier / Make scenario. ``open`` until a reconciled bank line that is the same money closes it
    (``matched``, ``deposit_id``); ``unmatched`` once no line came within the rule's days (a
    ``PAYMENT_NOTICE_UNMATCHED`` review item is open; a line that comes later still closes it). Never a
    payment in the ERP. The payer's name is kept as a keyed hash (matching) and as finance may see it
    (an individual masked) — :mod:`renkei.domain.payment_notices`."""

    __tablename__ = "payment_notice"
    __table_args__ = (Index("ix_payment_notice_status_day", "status", "day"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    notice_key: str = Field(max_length=128, unique=True, description="the sender's idempotency key")
    webhook_event_id: Optional[int] = Field(default=None, description="webhook_event row it came in")
    amount: int = Field(sa_type=BigInteger, description="yen")
    day: date = Field(description="the day the money arrived, as the notice says (Asia/Tokyo)")
    payer_key: Optional[str] = Field(default=None, max_length=80, description="hmac-sha256 of the comparable name")
    payer_display: str = Field(default="", max_length=255, description="as finance may see it: an individual masked")
    invoice_number: Optional[str] = Field(default=None, max_length=64)
    status: str = Field(default="open", max_length=16, description="open | matched | unmatched")
    deposit_id: Optional[str] = Field(default=None, max_length=64, description="the bank line that closed it")
    evidence: Optional[str] = Field(default=None, max_length=128)
    received_at: datetime = Field(default_factory=utcnow)
    closed_at: Optional[datetime] = None


class SettledDeposit(SQLModel, table=True):
    """A bank line Renkei reconciled (applied to invoices, exactly once): what a payment notice is closed
    against. ``notice_key`` once a notice took it (one notice per line)."""

    __tablename__ = "settled_deposit"
    __table_args__ = (Index("ix_settled_deposit_amount_day", "amount", "day"),)

    deposit_id: str = Field(primary_key=True, max_length=64)
    amount: int = Field(sa_type=BigInteger, description="yen received")
    day: date
    payer_key: Optional[str] = Field(default=None, max_length=80)
    invoice_numbers: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    notice_key: Optional[str] = Field(default=None, max_length=128)
    settled_at: datetime = Field(default_factory=utcnow)
