"""freee会計 API routes (``https://api.freee.co.jp/api/1/...``)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from .context import begin, parse_id, state_of
from .errors import bad_request
from .models import (
    DealCreate,
    DealPaymentCreate,
    DealUpdate,
    ItemBody,
    ManualJournalCreate,
    PartnerBody,
    PartnerUpsert,
    WalletTxnCreate,
    parse_body,
)

__all__ = ["router"]

router = APIRouter(prefix="/api/1")

_WALLETABLE_TYPES = ("bank_account", "credit_card", "wallet")


# -- companies --------------------------------------------------------------------------------------


@router.get("/companies")
async def list_companies(request: Request) -> Response:
    call = await begin(request, "accounting", company="none")
    store = state_of(request).store
    return call.respond({"companies": [store.company_to_api(c, detail=False) for c in store.companies.values()]})


@router.get("/companies/{company_id}")
async def get_company(request: Request, company_id: str) -> Response:
    call = await begin(request, "accounting", company="path", path_company_id=company_id)
    store = state_of(request).store
    body = store.company_to_api(store.company(call.company_id), detail=True)
    q = call.query
    if q.flag("account_items") or q.flag("details"):
        body["account_items"] = [
            {"id": a.id, "name": a.name, "shortcut": a.shortcut, "categories": list(a.categories)}
            for a in store.account_items.values()
        ]
    if q.flag("taxes") or q.flag("details"):
        body["tax_codes"] = [{"code": t.code, "name": t.name, "name_ja": t.name_ja} for t in store.taxes.values()]
    if q.flag("items") or q.flag("details"):
        body["items"] = [
            {"id": i.id, "name": i.name, "shortcut1": i.shortcut1, "shortcut2": i.shortcut2}
            for i in store.list_items(call.company_id, limit=10**9)
        ]
    if q.flag("partners") or q.flag("details"):
        body["partners"] = [
            {"id": p.id, "code": p.code, "name": p.name, "shortcut1": p.shortcut1, "shortcut2": p.shortcut2}
            for p in store.list_partners(call.company_id, limit=10**9)
        ]
    if q.flag("walletables") or q.flag("details"):
        body["walletables"] = [{"id": w.id, "name": w.name, "type": w.type} for w in store.walletables.values()]
    return call.respond({"company": body})


# -- master data ------------------------------------------------------------------------------------


@router.get("/taxes/companies/{company_id}")
async def list_taxes(request: Request, company_id: str) -> Response:
    call = await begin(request, "accounting", company="path", path_company_id=company_id)
    store = state_of(request).store
    category = call.query.text("display_category")
    available = call.query.flag("available")
    taxes = [
        {
            "code": t.code,
            "name": t.name,
            "name_ja": t.name_ja,
            "display_category": t.display_category,
            "available": t.available,
        }
        for t in sorted(store.taxes.values(), key=lambda t: t.code)
        if (category is None or t.display_category == category) and (available is None or t.available == available)
    ]
    return call.respond({"taxes": taxes})


@router.get("/account_items")
async def list_account_items(request: Request) -> Response:
    call = await begin(request, "accounting")
    store = state_of(request).store
    call.query.day("base_date")
    return call.respond({"account_items": [store.account_item_to_api(a) for a in store.account_items.values()]})


@router.get("/walletables")
async def list_walletables(request: Request) -> Response:
    call = await begin(request, "accounting")
    store = state_of(request).store
    kind = call.query.text("type", choices=_WALLETABLE_TYPES)
    with_balance = bool(call.query.flag("with_balance"))
    rows = []
    for w in store.walletables.values():
        if kind is not None and w.type != kind:
            continue
        row: dict[str, object] = {
            "id": w.id,
            "name": w.name,
            "bank_id": w.bank_id,
            "type": w.type,
            "update_date": store.today(),
        }
        if with_balance:
            balance = store.walletable_balance(w.id)
            row |= {"last_balance": balance, "walletable_balance": balance}
        rows.append(row)
    return call.respond({"walletables": rows, "meta": {"up_to_date": True}})


# -- partners (取引先) --------------------------------------------------------------------------------


@router.get("/partners")
async def list_partners(request: Request) -> Response:
    call = await begin(request, "accounting")
    q = call.query
    offset, limit = q.page(50, 3000)
    partners = state_of(request).store.list_partners(
        call.company_id,
        keyword=q.text("keyword"),
        start_update_date=q.day("start_update_date"),
        end_update_date=q.day("end_update_date"),
        offset=offset,
        limit=limit,
    )
    return call.respond({"partners": [p.to_api() for p in partners]})


@router.post("/partners")
async def create_partner(request: Request) -> Response:
    call = await begin(request, "accounting", company="body")
    partner = state_of(request).store.create_partner(parse_body(PartnerBody, call.body, "accounting"))
    return call.respond({"partner": partner.to_api()}, 201)


@router.put("/partners/upsert_by_code")
async def upsert_partner_by_code(request: Request) -> Response:
    call = await begin(request, "accounting", company="body")
    partner, created = state_of(request).store.upsert_partner_by_code(
        parse_body(PartnerUpsert, call.body, "accounting")
    )
    return call.respond({"partner": partner.to_api()}, 201 if created else 200)


@router.get("/partners/{partner_id}")
async def get_partner(request: Request, partner_id: str) -> Response:
    call = await begin(request, "accounting")
    partner = state_of(request).store.get_partner(call.company_id, parse_id(partner_id, "accounting", "取引先"))
    return call.respond({"partner": partner.to_api()})


@router.put("/partners/{partner_id}")
async def update_partner(request: Request, partner_id: str) -> Response:
    call = await begin(request, "accounting", company="body")
    pid = parse_id(partner_id, "accounting", "取引先")
    partner = state_of(request).store.update_partner(pid, parse_body(PartnerBody, call.body, "accounting"))
    return call.respond({"partner": partner.to_api()})


# -- items (品目) -------------------------------------------------------------------------------------


@router.get("/items")
async def list_items(request: Request) -> Response:
    call = await begin(request, "accounting")
    q = call.query
    offset, limit = q.page(50, 3000, max_offset=2147483647)
    items = state_of(request).store.list_items(
        call.company_id,
        offset=offset,
        limit=limit,
        start_update_date=q.day("start_update_date"),
        end_update_date=q.day("end_update_date"),
    )
    return call.respond({"items": [i.to_api() for i in items]})


@router.post("/items")
async def create_item(request: Request) -> Response:
    call = await begin(request, "accounting", company="body")
    item = state_of(request).store.create_item(parse_body(ItemBody, call.body, "accounting"))
    return call.respond({"item": item.to_api()}, 201)


@router.get("/items/{item_id}")
async def get_item(request: Request, item_id: str) -> Response:
    call = await begin(request, "accounting")
    item = state_of(request).store.get_item(call.company_id, parse_id(item_id, "accounting", "品目"))
    return call.respond({"item": item.to_api()})


@router.put("/items/{item_id}")
async def update_item(request: Request, item_id: str) -> Response:
    call = await begin(request, "accounting", company="body")
    iid = parse_id(item_id, "accounting", "品目")
    item = state_of(request).store.update_item(iid, parse_body(ItemBody, call.body, "accounting"))
    return call.respond({"item": item.to_api()})


# -- deals (取引) -------------------------------------------------------------------------------------


@router.get("/deals")
async def list_deals(request: Request) -> Response:
    call = await begin(request, "accounting")
    q = call.query
    offset, limit = q.page(20, 100)
    q.text("accruals", choices=("without", "with"))
    store = state_of(request).store
    deals = store.list_deals(
        call.company_id,
        partner_id=q.integer("partner_id", minimum=1),
        partner_code=q.text("partner_code"),
        account_item_id=q.integer("account_item_id", minimum=1),
        status=q.text("status", choices=("unsettled", "settled")),
        type=q.text("type", choices=("income", "expense")),
        start_issue_date=q.day("start_issue_date"),
        end_issue_date=q.day("end_issue_date"),
        start_due_date=q.day("start_due_date"),
        end_due_date=q.day("end_due_date"),
    )
    page = deals[offset : offset + limit]
    return call.respond({"deals": [store.deal_to_api(d) for d in page], "meta": {"total_count": len(deals)}})


@router.post("/deals")
async def create_deal(request: Request) -> Response:
    call = await begin(request, "accounting", company="body")
    store = state_of(request).store
    deal = store.create_deal(parse_body(DealCreate, call.body, "accounting"))
    return call.respond({"deal": store.deal_to_api(deal)}, 201)


@router.get("/deals/{deal_id}")
async def get_deal(request: Request, deal_id: str) -> Response:
    call = await begin(request, "accounting")
    call.query.text("accruals", choices=("without", "with"))
    store = state_of(request).store
    deal = store.get_deal(call.company_id, parse_id(deal_id, "accounting", "取引"))
    return call.respond({"deal": store.deal_to_api(deal)})


@router.put("/deals/{deal_id}")
async def update_deal(request: Request, deal_id: str) -> Response:
    call = await begin(request, "accounting", company="body")
    store = state_of(request).store
    did = parse_id(deal_id, "accounting", "取引")
    deal = store.update_deal(did, parse_body(DealUpdate, call.body, "accounting"))
    return call.respond({"deal": store.deal_to_api(deal)})


@router.post("/deals/{deal_id}/payments")
async def create_deal_payment(request: Request, deal_id: str) -> Response:
    call = await begin(request, "accounting", company="body")
    store = state_of(request).store
    did = parse_id(deal_id, "accounting", "取引")
    deal = store.add_payment(did, parse_body(DealPaymentCreate, call.body, "accounting"))
    return call.respond({"deal": store.deal_to_api(deal)}, 201)


# -- wallet txns (口座明細) ----------------------------------------------------------------------------


@router.get("/wallet_txns")
async def list_wallet_txns(request: Request) -> Response:
    call = await begin(request, "accounting")
    q = call.query
    offset, limit = q.page(20, 100)
    walletable_type = q.text("walletable_type", choices=_WALLETABLE_TYPES)
    walletable_id = q.integer("walletable_id", minimum=1)
    if walletable_id is not None and walletable_type is None:
        raise bad_request("accounting", "walletable_id を指定する場合は walletable_type も指定してください。")
    rows = state_of(request).store.list_wallet_txns(
        call.company_id,
        walletable_type=walletable_type,
        walletable_id=walletable_id,
        start_date=q.day("start_date"),
        end_date=q.day("end_date"),
        entry_side=q.text("entry_side", choices=("income", "expense")),
        sort_type=q.text("sort_type"),
    )
    return call.respond({"wallet_txns": [t.to_api() for t in rows[offset : offset + limit]]})


@router.post("/wallet_txns")
async def create_wallet_txn(request: Request) -> Response:
    call = await begin(request, "accounting", company="body")
    txn = state_of(request).store.create_wallet_txn(parse_body(WalletTxnCreate, call.body, "accounting"))
    return call.respond({"wallet_txn": txn.to_api()}, 201)


@router.get("/wallet_txns/{txn_id}")
async def get_wallet_txn(request: Request, txn_id: str) -> Response:
    call = await begin(request, "accounting")
    txn = state_of(request).store.get_wallet_txn(call.company_id, parse_id(txn_id, "accounting", "明細"))
    return call.respond({"wallet_txn": txn.to_api()})


# -- manual journals (振替伝票) -------------------------------------------------------------------------


@router.get("/manual_journals")
async def list_manual_journals(request: Request) -> Response:
    call = await begin(request, "accounting")
    q = call.query
    offset, limit = q.page(20, 500)
    store = state_of(request).store
    rows = store.list_manual_journals(
        call.company_id,
        start_issue_date=q.day("start_issue_date"),
        end_issue_date=q.day("end_issue_date"),
        entry_side=q.text("entry_side", choices=("credit", "debit")),
        account_item_id=q.integer("account_item_id", minimum=1),
        min_amount=q.integer("min_amount"),
        max_amount=q.integer("max_amount"),
        partner_id=q.integer("partner_id", minimum=0),
        ref_number=q.text("ref_number"),
        adjustment=q.text("adjustment", choices=("only", "without")),
    )
    return call.respond({"manual_journals": [store.manual_journal_to_api(j) for j in rows[offset : offset + limit]]})


@router.post("/manual_journals")
async def create_manual_journal(request: Request) -> Response:
    call = await begin(request, "accounting", company="body")
    store = state_of(request).store
    journal = store.create_manual_journal(parse_body(ManualJournalCreate, call.body, "accounting"))
    return call.respond({"manual_journal": store.manual_journal_to_api(journal)}, 201)
