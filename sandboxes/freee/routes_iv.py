"""freee請求書 API routes (``https://api.freee.co.jp/iv/...``)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from .context import begin, parse_id, state_of
from .errors import bad_request
from .models import InvoiceCreate, parse_body

__all__ = ["router"]

router = APIRouter(prefix="/iv")


@router.get("/invoices/templates")
async def list_invoice_templates(request: Request) -> Response:
    call = await begin(request, "iv")
    templates = state_of(request).store.templates.values()
    return call.respond({"templates": [{"id": t.id, "name": t.name} for t in templates]})


@router.get("/invoices")
async def list_invoices(request: Request) -> Response:
    call = await begin(request, "iv")
    q = call.query
    offset, limit = q.page(20, 100, max_offset=2147483647)
    raw_partner_ids = q.text("partner_ids")
    partner_ids: list[int] | None = None
    if raw_partner_ids is not None:
        parts = [p.strip() for p in raw_partner_ids.split(",") if p.strip()]
        if not all(p.isdigit() for p in parts):
            raise bad_request("iv", "partner_ids はカンマ区切りの取引先IDで指定してください。")
        partner_ids = [int(p) for p in parts]
    store = state_of(request).store
    rows = store.list_invoices(
        call.company_id,
        invoice_number=q.text("invoice_number"),
        subject=q.text("subject"),
        partner_ids=partner_ids,
        payment_status=q.text("payment_status", choices=("settled", "unsettled", "canceled", "unprocessed", "failed")),
        deal_status=q.text("deal_status", choices=("registered", "unregistered")),
        sending_status=q.text("sending_status", choices=("sent", "unsent")),
        cancel_status=q.text("cancel_status", choices=("canceled", "uncanceled")),
        start_billing_date=q.day("start_billing_date"),
        end_billing_date=q.day("end_billing_date"),
        start_payment_date=q.day("start_payment_date"),
        end_payment_date=q.day("end_payment_date"),
    )
    page = rows[offset : offset + limit]
    return call.respond({"invoices": [store.invoice_to_api(i, summary=True) for i in page]})


@router.post("/invoices")
async def create_invoice(request: Request) -> Response:
    call = await begin(request, "iv", company="body")
    store = state_of(request).store
    invoice = store.create_invoice(parse_body(InvoiceCreate, call.body, "iv"))
    return call.respond({"invoice": store.invoice_to_api(invoice)}, 201)


@router.get("/invoices/{invoice_id}")
async def get_invoice(request: Request, invoice_id: str) -> Response:
    call = await begin(request, "iv")
    store = state_of(request).store
    invoice = store.get_invoice(call.company_id, parse_id(invoice_id, "iv", "請求書"))
    return call.respond({"invoice": store.invoice_to_api(invoice)})
