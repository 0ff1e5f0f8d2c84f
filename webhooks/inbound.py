"""The bodies of the generic inbound webhook (``POST /inbound/order`` and ``/inbound/payment``), validated
before anything is stored or emitted (a refused body is answered 422 with the fields at fault, never their
values: an order or a payment notice may carry people's names and addresses).

* **order** — the sender (a Zapier / Make scenario, your own system) names the CRM deal that was ordered:
  ``{"id": "<idempotency key>", "deal_id": "<CRM deal id>", ...}``. Renkei then runs order-to-invoice for
  just that deal, exactly as for a HubSpot deal webhook (the deal must be won in the CRM; the invoice is
  made from the CRM's deal, never from the body).
* **payment** — a bank or payment service telling that money arrived:
  ``{"id": "...", "amount": 55000, "date": "2026-12-05", "payer_name": "ｶ)ﾔﾏﾀﾞｼｮｳｼﾞ", "invoice_number":
  "INV-0001"}``, amount in integer yen, payer and invoice optional. Renkei runs payment-writeback now and
  keeps the notice (table ``payment_notice``): a reconciled ERP bank line that is the same money (amount,
  day within a few days, payer, invoice — :mod:`renkei.domain.payment_notices`) closes it; a notice no line
  matches in time becomes one ``PAYMENT_NOTICE_UNMATCHED`` review item. A notice never creates a payment
  in the ERP: the ERP's bank lines are the money.

Other fields are allowed (kept with the body in the state store, never in a Prefect event).
"""

from __future__ import annotations

import re
import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError, field_validator

# HubSpot deal ids are digits; Salesforce Opportunity ids 15/18 alphanumerics
DEAL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
MAX_YEN = 10**12


class InboundOrder(BaseModel):
    model_config = ConfigDict(extra="allow")

    deal_id: str = Field(description="the CRM deal to invoice (HubSpot deal id, Salesforce Opportunity id)")

    @field_validator("deal_id", mode="before")
    @classmethod
    def _deal_reference(cls, v: Any) -> str:
        if isinstance(v, bool) or not isinstance(v, (str, int)):
            raise ValueError("deal_id is a CRM deal id (a string or an integer)")
        text = str(v).strip()
        if not DEAL_ID.match(text):
            raise ValueError("deal_id is not a CRM deal id (letters, digits, _ . : -, at most 64)")
        return text


class InboundPayment(BaseModel):
    model_config = ConfigDict(extra="allow")

    amount: StrictInt = Field(gt=0, le=MAX_YEN, description="the amount received, integer yen")
    date: dt.date = Field(description="the day the money arrived, YYYY-MM-DD (Asia/Tokyo)")
    currency: Literal["JPY"] = "JPY"
    payer_name: str | None = Field(None, max_length=255, description="the payer as the bank shows it (振込名義)")
    invoice_number: str | None = Field(None, max_length=64, description="the invoice the payment is for")

    @field_validator("payer_name", "invoice_number", mode="before")
    @classmethod
    def _text(cls, v: Any) -> Any:
        if v is None:
            return None
        if not isinstance(v, str):
            raise ValueError("a string")
        return v.strip() or None

    @field_validator("date", mode="before")
    @classmethod
    def _iso_day(cls, v: Any) -> Any:
        if not isinstance(v, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", v.strip()):
            raise ValueError("date is a day as YYYY-MM-DD")
        return v.strip()


SCHEMAS: dict[str, type[BaseModel]] = {"order": InboundOrder, "payment": InboundPayment}


def validate(kind: str, data: dict[str, Any]) -> tuple[BaseModel | None, list[dict[str, str]]]:
    """(the parsed body, []) or (None, the refused fields with the reason — never the value sent)."""
    try:
        return SCHEMAS[kind].model_validate(data), []
    except ValidationError as exc:
        return None, [{"field": ".".join(str(p) for p in e["loc"]) or "(body)", "error": e["msg"]}
                      for e in exc.errors(include_url=False, include_input=False, include_context=False)]
