"""Every freee sandbox response validates against freee's official OpenAPI operation.

A scenario drives each endpoint over real HTTP (success and error paths), records every exchange and
the tests below validate each recorded body against the response schema of the operation (and each
request the scenario sends against the request schema, so the scenario itself speaks real freee).

The OpenAPI files are read from ``../shared/specs/freee`` (never vendored); without them the module is
skipped with the reason.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from renkei.sandboxes.freee import BANK_ACCOUNT_ID, FreeeSandboxConfig
from renkei.sandboxes.freee.openapi import (
    SPEC_MISSING_REASON,
    ContractViolation,
    spec_dir,
    validate_component,
    validate_request,
    validate_response,
)
from renkei.sandboxes.freee.testing import RunningSandbox, running_sandbox

pytestmark = pytest.mark.skipif(spec_dir() is None, reason=SPEC_MISSING_REASON)


@dataclass(frozen=True)
class Exchange:
    api: str
    operation: str  # "GET /api/1/deals/{id}"
    method: str
    path: str
    status: int
    body: Any


OPERATIONS: tuple[str, ...] = (
    "GET /api/1/companies",
    "GET /api/1/companies/{id}",
    "GET /api/1/partners",
    "POST /api/1/partners",
    "GET /api/1/partners/{id}",
    "PUT /api/1/partners/{id}",
    "PUT /api/1/partners/upsert_by_code",
    "GET /api/1/items",
    "POST /api/1/items",
    "GET /api/1/items/{id}",
    "PUT /api/1/items/{id}",
    "GET /api/1/taxes/companies/{company_id}",
    "GET /api/1/account_items",
    "GET /api/1/walletables",
    "GET /api/1/deals",
    "POST /api/1/deals",
    "GET /api/1/deals/{id}",
    "PUT /api/1/deals/{id}",
    "POST /api/1/deals/{id}/payments",
    "GET /api/1/wallet_txns",
    "POST /api/1/wallet_txns",
    "GET /api/1/wallet_txns/{id}",
    "GET /api/1/manual_journals",
    "POST /api/1/manual_journals",
    "GET /iv/invoices",
    "POST /iv/invoices",
    "GET /iv/invoices/{id}",
    "GET /iv/invoices/templates",
)


class Recorder:
    """Sends requests through the sandbox client and keeps every exchange."""

    def __init__(self, sb: RunningSandbox) -> None:
        self.sb = sb
        self.exchanges: list[Exchange] = []
        self.request_violations: list[str] = []

    def call(
        self,
        operation: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        check_request: bool = True,
    ) -> Any:
        method = operation.split(" ", 1)[0]
        api = "iv" if path.startswith("/iv/") else "accounting"
        if check_request:
            try:
                validate_request(method, path, params, json, api=api)
            except ContractViolation as exc:
                self.request_violations.append(str(exc))
        response = self.sb.client.request(method, path, params=params, json=json, headers=headers)
        body = response.json()
        self.exchanges.append(Exchange(api, operation, method, path, response.status_code, body))
        return body


def _scenario(rec: Recorder, cid: int) -> None:
    rec.call("GET /api/1/companies", "/api/1/companies")
    rec.call("GET /api/1/companies/{id}", f"/api/1/companies/{cid}", params={"details": "true"})
    rec.call("GET /api/1/companies/{id}", f"/api/1/companies/{cid}")
    taxes = rec.call("GET /api/1/taxes/companies/{company_id}", f"/api/1/taxes/companies/{cid}")["taxes"]
    tax_10 = next(t["code"] for t in taxes if t["name"] == "sales_with_tax_10")
    accounts = rec.call("GET /api/1/account_items", "/api/1/account_items", params={"company_id": cid})
    sales = next(a["id"] for a in accounts["account_items"] if a["name"] == "売上高")
    fee_account = next(a["id"] for a in accounts["account_items"] if a["name"] == "支払手数料")
    receivable = next(a["id"] for a in accounts["account_items"] if a["name"] == "売掛金")
    rec.call("GET /api/1/walletables", "/api/1/walletables", params={"company_id": cid, "with_balance": "true"})

    # partners
    rec.call("GET /api/1/partners", "/api/1/partners", params={"company_id": cid, "keyword": "山田", "limit": 5})
    partner = rec.call(
        "POST /api/1/partners",
        "/api/1/partners",
        json={
            "company_id": cid,
            "name": "株式会社契約テスト",
            "code": "HS-9001",
            "long_name": "株式会社契約テスト",
            "name_kana": "ケイヤクテスト",
            "org_code": 1,
            "country_code": "JP",
            "qualified_invoice_issuer": True,
            "invoice_registration_number": "T7123456789012",
            "address_attributes": {"zipcode": "100-0001", "prefecture_code": 12, "street_name1": "千代田区1-1"},
            "partner_doc_setting_attributes": {"sending_method": "email"},
            "partner_bank_account_attributes": {"account_name": "ｹｲﾔｸﾃｽﾄ"},
            "invoice_payment_term_attributes": {"cutoff_day": 32, "additional_months": 1, "fixed_day": 32},
        },
    )["partner"]
    pid = partner["id"]
    rec.call("GET /api/1/partners/{id}", f"/api/1/partners/{pid}", params={"company_id": cid})
    rec.call(
        "PUT /api/1/partners/{id}", f"/api/1/partners/{pid}", json={"company_id": cid, "name": "株式会社契約テスト２"}
    )
    rec.call(
        "PUT /api/1/partners/upsert_by_code",
        "/api/1/partners/upsert_by_code",
        json={
            "company_id": cid,
            "code": "HS-9001",
            "partner": {"name": "株式会社契約テスト２", "email": "a@example.jp"},
        },
    )
    rec.call(
        "PUT /api/1/partners/upsert_by_code",
        "/api/1/partners/upsert_by_code",
        json={"company_id": cid, "code": "HS-9002", "partner": {"name": "合同会社新規"}},
    )
    # errors: missing company_id, bad body, unknown id, no token
    rec.call("GET /api/1/partners", "/api/1/partners", check_request=False)
    rec.call("POST /api/1/partners", "/api/1/partners", json={"company_id": cid}, check_request=False)
    rec.call("GET /api/1/partners/{id}", "/api/1/partners/999999", params={"company_id": cid})
    rec.call(
        "GET /api/1/partners",
        "/api/1/partners",
        params={"company_id": cid},
        headers={"Authorization": "Bearer nope"},
        check_request=False,
    )

    # items
    rec.call("GET /api/1/items", "/api/1/items", params={"company_id": cid})
    item = rec.call(
        "POST /api/1/items", "/api/1/items", json={"company_id": cid, "name": "契約テスト品目", "code": "CT-1"}
    )
    iid = item["item"]["id"]
    rec.call("GET /api/1/items/{id}", f"/api/1/items/{iid}", params={"company_id": cid})
    rec.call("PUT /api/1/items/{id}", f"/api/1/items/{iid}", json={"company_id": cid, "name": "契約テスト品目２"})
    rec.call("GET /api/1/items/{id}", "/api/1/items/999999", params={"company_id": cid})

    # deals, payments, wallet txns
    deal = rec.call(
        "POST /api/1/deals",
        "/api/1/deals",
        json={
            "company_id": cid,
            "issue_date": "2026-11-01",
            "due_date": "2026-11-30",
            "type": "income",
            "partner_id": pid,
            "ref_number": "HS-DEAL-1",
            "details": [{"tax_code": tax_10, "account_item_id": sales, "amount": 110000, "item_id": iid}],
        },
    )["deal"]
    did = deal["id"]
    rec.call(
        "POST /api/1/deals",
        "/api/1/deals",
        json={
            "company_id": cid,
            "issue_date": "2026-11-02",
            "type": "income",
            "details": [{"tax_code": tax_10, "account_item_id": sales, "amount": 5500, "vat": 500}],
            "payments": [
                {"amount": 5500, "from_walletable_type": "wallet", "from_walletable_id": 2, "date": "2026-11-02"}
            ],
        },
    )
    rec.call(
        "POST /api/1/deals",
        "/api/1/deals",
        json={"company_id": cid, "issue_date": "2026-13-01", "type": "income", "details": []},
        check_request=False,
    )
    rec.call("GET /api/1/deals/{id}", f"/api/1/deals/{did}", params={"company_id": cid})
    rec.call("GET /api/1/deals/{id}", "/api/1/deals/1", params={"company_id": cid})
    rec.call(
        "PUT /api/1/deals/{id}",
        f"/api/1/deals/{did}",
        json={
            "company_id": cid,
            "issue_date": "2026-11-01",
            "due_date": "2026-12-31",
            "type": "income",
            "partner_id": pid,
            "details": [{"tax_code": tax_10, "account_item_id": sales, "amount": 110000}],
        },
    )
    txn = rec.call(
        "POST /api/1/wallet_txns",
        "/api/1/wallet_txns",
        json={
            "company_id": cid,
            "entry_side": "income",
            "amount": 109560,
            "walletable_type": "bank_account",
            "walletable_id": BANK_ACCOUNT_ID,
            "date": "2026-11-30",
            "description": "振込 ｶ)ｹｲﾔｸﾃｽﾄ",
        },
    )["wallet_txn"]
    rec.call(
        "POST /api/1/deals/{id}/payments",
        f"/api/1/deals/{did}/payments",
        json={
            "company_id": cid,
            "date": "2026-11-30",
            "from_walletable_type": "bank_account",
            "from_walletable_id": BANK_ACCOUNT_ID,
            "amount": 109560,
        },
    )
    rec.call(
        "POST /api/1/deals/{id}/payments",
        f"/api/1/deals/{did}/payments",
        json={
            "company_id": cid,
            "date": "2026-11-30",
            "from_walletable_type": "bank_account",
            "from_walletable_id": BANK_ACCOUNT_ID,
            "amount": 999999,
        },
    )
    rec.call("GET /api/1/deals", "/api/1/deals", params={"company_id": cid})
    rec.call(
        "GET /api/1/deals",
        "/api/1/deals",
        params={
            "company_id": cid,
            "type": "income",
            "status": "unsettled",
            "partner_id": pid,
            "start_issue_date": "2026-01-01",
            "limit": 100,
        },
    )
    rec.call("GET /api/1/deals", "/api/1/deals", params={"company_id": cid, "limit": 101}, check_request=False)
    rec.call(
        "GET /api/1/wallet_txns",
        "/api/1/wallet_txns",
        params={
            "company_id": cid,
            "walletable_type": "bank_account",
            "walletable_id": BANK_ACCOUNT_ID,
            "entry_side": "income",
            "start_date": "2026-11-01",
        },
    )
    rec.call("GET /api/1/wallet_txns/{id}", f"/api/1/wallet_txns/{txn['id']}", params={"company_id": cid})
    rec.call("GET /api/1/wallet_txns/{id}", "/api/1/wallet_txns/1", params={"company_id": cid})

    # manual journals: book a transfer fee (支払手数料 / 売掛金)
    rec.call(
        "POST /api/1/manual_journals",
        "/api/1/manual_journals",
        json={
            "company_id": cid,
            "issue_date": "2026-11-30",
            "ref_number": "FEE-1",
            "details": [
                {"entry_side": "debit", "tax_code": 136, "account_item_id": fee_account, "amount": 440},
                {
                    "entry_side": "credit",
                    "tax_code": 2,
                    "account_item_id": receivable,
                    "amount": 440,
                    "partner_id": pid,
                },
            ],
        },
    )
    rec.call(
        "POST /api/1/manual_journals",
        "/api/1/manual_journals",
        json={
            "company_id": cid,
            "issue_date": "2026-11-30",
            "details": [{"entry_side": "debit", "tax_code": 2, "account_item_id": fee_account, "amount": 1}],
        },
    )
    rec.call("GET /api/1/manual_journals", "/api/1/manual_journals", params={"company_id": cid})

    # freee請求書
    rec.call("GET /iv/invoices/templates", "/iv/invoices/templates", params={"company_id": cid})
    invoice = rec.call(
        "POST /iv/invoices",
        "/iv/invoices",
        json={
            "company_id": cid,
            "invoice_number": "INV-CT-1",
            "billing_date": "2026-11-30",
            "payment_date": "2026-12-31",
            "subject": "11月分ご請求",
            "tax_entry_method": "out",
            "tax_fraction": "round",
            "withholding_tax_entry_method": "out",
            "partner_title": "御中",
            "partner_code": "HS-9001",
            "lines": [
                {"description": "年間ライセンス", "quantity": 1, "unit_price": "120000", "tax_rate": 10},
                {
                    "description": "珈琲豆",
                    "quantity": 2.5,
                    "unit_price": "4320",
                    "tax_rate": 8,
                    "reduced_tax_rate": True,
                    "unit": "kg",
                },
                {"type": "text", "description": "備考行"},
            ],
        },
    )["invoice"]
    rec.call(
        "POST /iv/invoices",
        "/iv/invoices",
        json={
            "company_id": cid,
            "invoice_number": "INV-CT-2",
            "billing_date": "2026-11-30",
            "tax_entry_method": "in",
            "tax_fraction": "omit",
            "withholding_tax_entry_method": "in",
            "partner_title": "（空白）",
            "partner_id": pid,
            "lines": [
                {"description": "原稿料", "quantity": 1, "unit_price": "11000", "tax_rate": 10, "withholding": True}
            ],
        },
    )
    rec.call(
        "POST /iv/invoices",
        "/iv/invoices",
        json={"company_id": cid, "billing_date": "2026-11-30", "lines": []},
        check_request=False,
    )
    rec.call("GET /iv/invoices/{id}", f"/iv/invoices/{invoice['id']}", params={"company_id": cid})
    rec.call("GET /iv/invoices/{id}", "/iv/invoices/1", params={"company_id": cid})
    rec.call("GET /iv/invoices", "/iv/invoices", params={"company_id": cid})
    rec.call(
        "GET /iv/invoices",
        "/iv/invoices",
        params={"company_id": cid, "partner_ids": str(pid), "deal_status": "registered", "limit": 10},
    )
    rec.call("GET /iv/invoices", "/iv/invoices", check_request=False)
    rec.call(
        "GET /iv/invoices",
        "/iv/invoices",
        params={"company_id": cid},
        headers={"Authorization": "Bearer expired-or-unknown"},
        check_request=False,
    )


def _limits_scenario(rec: Recorder, cid: int) -> None:
    """A sandbox with tiny limits: 会計 403 and 請求書 429."""
    for _ in range(3):
        rec.call("GET /api/1/partners", "/api/1/partners", params={"company_id": cid})
    for _ in range(3):
        rec.call("GET /iv/invoices", "/iv/invoices", params={"company_id": cid})


@pytest.fixture(scope="module")
def recorded() -> Iterator[Recorder]:
    with running_sandbox(FreeeSandboxConfig(seed="demo")) as sb:
        rec = Recorder(sb)
        _scenario(rec, sb.company_id)
        with running_sandbox(
            FreeeSandboxConfig(seed="none", accounting_limit_per_hour=2, iv_limit_per_minute=2)
        ) as limited:
            limited_rec = Recorder(limited)
            _limits_scenario(limited_rec, limited.company_id)
        rec.exchanges.extend(limited_rec.exchanges)
        yield rec


def _check(ex: Exchange) -> None:
    if ex.status == 429:
        # Not declared on the operations; freee documents the body in each file's description.
        validate_component(ex.body, "tooManyRequestsError", api="accounting")
        validate_component(ex.body, "forbiddenError", api="iv")  # iv's {status_code, errors[]} shape
        return
    validate_response(ex.method, ex.path, ex.status, ex.body, api=ex.api)  # type: ignore[arg-type]


@pytest.mark.parametrize("operation", OPERATIONS)
def test_every_response_of_the_operation_matches_the_spec(recorded: Recorder, operation: str) -> None:
    exchanges = [ex for ex in recorded.exchanges if ex.operation == operation]
    assert exchanges, f"the scenario never called {operation}"
    assert any(200 <= ex.status < 300 for ex in exchanges), f"no successful call of {operation}"
    problems = []
    for ex in exchanges:
        try:
            _check(ex)
        except ContractViolation as exc:
            problems.append(f"{ex.method} {ex.path} → {ex.status}: {exc}")
    assert not problems, "\n".join(problems)


def test_error_statuses_are_covered_and_valid(recorded: Recorder) -> None:
    statuses = {ex.status for ex in recorded.exchanges}
    assert {200, 201, 400, 401, 403, 404, 429} <= statuses
    for ex in recorded.exchanges:
        if ex.status >= 400:
            _check(ex)


def test_scenario_requests_match_the_spec(recorded: Recorder) -> None:
    assert not recorded.request_violations, "\n".join(recorded.request_violations)


def test_validator_rejects_a_wrong_body() -> None:
    """The checks above can fail: a deal without ``status`` and with a string amount is refused."""
    bad = {"deal": {"id": 1, "company_id": 1, "issue_date": "2026-11-01", "amount": "100", "partner_id": None}}
    with pytest.raises(ContractViolation) as info:
        validate_response("GET", "/api/1/deals/1", 200, bad)
    text = str(info.value)
    assert "status" in text and "amount" in text
    with pytest.raises(ContractViolation):
        validate_request("GET", "/api/1/partners", {}, None)  # company_id is required
