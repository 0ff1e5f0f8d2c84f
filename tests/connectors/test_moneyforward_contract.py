"""Contract: what the Money Forward connector sends, and what the sandbox answers, fit MF's published OpenAPI
document (v3). The document is not vendored (no licence): give it as ``$RENKEI_MONEYFORWARD_OPENAPI`` or put
it in ``../shared/specs/moneyforward/``; without it this module skips."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

import pytest

from renkei.sandboxes.moneyforward.openapi import SPEC_MISSING_REASON, spec_path

if spec_path() is None:
    pytest.skip(SPEC_MISSING_REASON, allow_module_level=True)

from renkei.connectors.moneyforward.connector import MoneyForwardConfig, MoneyForwardERP  # noqa: E402
from renkei.connectors.moneyforward.mapping import product_to_item  # noqa: E402
from renkei.connectors.moneyforward.testing import sandbox_client  # noqa: E402
from renkei.domain.model import (  # noqa: E402
    Address,
    Company,
    Invoice,
    InvoiceLine,
    Payment,
    PaymentTerms,
    Product,
    TaxCategory,
)
from renkei.sandboxes.common import ServerThread  # noqa: E402
from renkei.sandboxes.moneyforward.openapi import (  # noqa: E402
    ContractViolation,
    is_documented,
    validate_request,
    validate_response,
)
from renkei.sandboxes.moneyforward.spec import SPEC  # noqa: E402


@dataclass(frozen=True)
class Exchange:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    status: int
    response: Any


@dataclass
class Recorder:
    exchanges: list[Exchange] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, resp) -> None:
        req = resp.request
        body = json.loads(req.content) if req.content else None
        try:
            answer = json.loads(resp.content) if resp.content else None
        except ValueError:
            answer = None  # the PDF
        with self._lock:
            self.exchanges.append(Exchange(req.method, req.url.path, dict(parse_qsl(str(req.url.query, "ascii")
                                                                                    if isinstance(req.url.query, bytes)
                                                                                    else str(req.url.query))),
                                           body, resp.status_code, answer))


@pytest.fixture(scope="module")
def recorded():
    app = SPEC.app(seed="demo", print_refresh_token=False, billing_writes_per_s=0)
    recorder = Recorder()
    with ServerThread(app) as server:
        client = sandbox_client(server.url, app, response_hooks=[recorder])
        erp = MoneyForwardERP(client, MoneyForwardConfig())
        try:
            _drive_everything(client, erp)
        finally:
            erp.close()
    return recorder.exchanges


def _drive_everything(c, erp) -> None:
    c.get_office()
    list(erp.iter_partners())
    list(c.iter_partner_pages(per_page=5, name="山田,佐藤", code="TK0001"))
    made = erp.create_partner(Company(
        name="株式会社契約試験", name_kana="ケイヤクシケン", partner_code="CT-0001", phone="03-1111-2222",
        billing_email="ar@example.jp", billing_contact_name="経理 太郎",
        address=Address(postal_code="100-0005", prefecture="東京都", city="千代田区", street="丸の内1-1", building="丸の内ビル"),
        payment_terms=PaymentTerms(closing_day=0, pay_month_offset=1, pay_day=0)))
    erp.update_partner(made.model_copy(update={"phone": "03-9999-0000"}))
    erp.upsert_partner(Company(name="合同会社契約", partner_code="CT-0002"))
    c.get_partner(made.erp_id)
    c.create_department(made.erp_id, {"person_name": "購買 次郎", "email": "buy@example.jp"})
    c.list_departments(made.erp_id)
    item = c.create_item(product_to_item(Product(code="CT-ITEM", name="契約試験品目", unit_price=1200)))
    c.update_item(item["id"], {"name": "契約試験品目2", "price": 1500})
    c.get_item(item["id"])
    c.find_item_by_code("CT-ITEM")
    list(erp.iter_items())
    lines = [InvoiceLine(description="ライセンス", quantity=Decimal("1.5"), unit_price=1000, amount=1500,
                         tax_category=TaxCategory.STANDARD_10),
             InvoiceLine(description="食品 ※", quantity=Decimal(2), unit_price=500, amount=1000,
                         tax_category=TaxCategory.REDUCED_8),
             InvoiceLine(description="立替金", quantity=Decimal(1), unit_price=300, amount=300,
                         tax_category=TaxCategory.NON_TAXABLE)]
    inv = erp.create_invoice(Invoice(reference="renkei:deal:CT1", number="CT-1", partner_erp_id=made.erp_id,
                                     recipient_name=made.name, issue_date=date(2026, 11, 30),
                                     transaction_date=date(2026, 11, 20), due_date=date(2026, 12, 31),
                                     service_period_start=date(2026, 11, 1), service_period_end=date(2026, 11, 30),
                                     lines=lines))
    auto = erp.create_invoice(Invoice(reference="renkei:deal:CT2", partner_erp_id=made.erp_id, recipient_name=made.name,
                                      issue_date=date(2026, 11, 30), lines=lines))  # due date from the partner
    erp.find_invoice_by_reference("renkei:deal:CT1", number="CT-1", partner_erp_id=made.erp_id)
    erp.find_invoice_by_reference("renkei:deal:none", number="X-0", partner_erp_id=made.erp_id)
    c.find_billings(range_key="billing_date", **{"from": date(2026, 11, 1), "to": date(2026, 11, 30)}, per_page=10)
    c.find_billings(q="契約試験")
    c.find_billings(status="未ロック", partner_name="契約")
    c.update_billing(inv.erp_id, {"title": "2026年11月分", "note": "備考"})
    erp.record_payment(Payment(invoice_erp_id=inv.erp_id, amount=inv.total, paid_on=date(2026, 12, 28)))
    erp.set_unpaid(inv.erp_id)
    c.download_pdf(inv.erp_id)
    c.delete_billing(auto.erp_id)


def _template(path: str) -> str:
    parts = path.split("/")
    return "/".join("{id}" if len(p) == 22 and i > 3 else p for i, p in enumerate(parts))


def test_every_endpoint_was_exercised(recorded):
    ops = {(x.method, _template(x.path)) for x in recorded}
    expected = {
        ("GET", "/api/v3/office"), ("GET", "/api/v3/partners"), ("POST", "/api/v3/partners"),
        ("GET", "/api/v3/partners/{id}"), ("PUT", "/api/v3/partners/{id}"),
        ("GET", "/api/v3/partners/{id}/departments"), ("POST", "/api/v3/partners/{id}/departments"),
        ("PUT", "/api/v3/partners/{id}/departments/{id}"),
        ("GET", "/api/v3/items"), ("POST", "/api/v3/items"), ("GET", "/api/v3/items/{id}"), ("PUT", "/api/v3/items/{id}"),
        ("POST", "/api/v3/invoice_template_billings"), ("GET", "/api/v3/billings"), ("GET", "/api/v3/billings/{id}"),
        ("PUT", "/api/v3/billings/{id}"), ("DELETE", "/api/v3/billings/{id}"),
        ("PUT", "/api/v3/billings/{id}/payment_status"),
    }
    assert expected <= ops, sorted(expected - ops)
    assert all(x.status < 400 for x in recorded), [(x.method, x.path, x.status) for x in recorded if x.status >= 400]


def test_every_request_and_answer_matches_the_document(recorded):
    problems = []
    checked = 0
    for x in recorded:
        if x.path.endswith("/token") or not is_documented(x.method, x.path):
            continue
        checked += 1
        for check in (lambda: validate_request(x.method, x.path, x.query, x.body),
                      lambda: validate_response(x.method, x.path, x.status, x.response)):
            try:
                check()
            except ContractViolation as exc:
                problems.append(str(exc))
    assert checked > 30
    assert problems == [], "\n".join(dict.fromkeys(problems))
