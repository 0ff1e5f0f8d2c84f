"""Behaviour of the freee sandbox over real HTTP (uvicorn in a thread): OAuth rotation, company_id,
rate limits and daily cap, invoice tax (one rounding per rate per invoice), payments and 消込."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_HALF_UP, Decimal
from typing import Any

import httpx
import pytest

from renkei.sandboxes.common import Clock, FaultConfig, ServerThread
from renkei.sandboxes.freee import BANK_ACCOUNT_ID, FreeeSandboxConfig, create_app
from renkei.sandboxes.freee.testing import RunningSandbox, running_sandbox

# 2026-11-30 00:00:00 UTC — a UTC day / hour / minute boundary (09:00 JST)
T0_MS = int(datetime(2026, 11, 30, tzinfo=UTC).timestamp() * 1000)
HOUR_MS = 3_600_000


def frozen_clock() -> Clock:
    return Clock(frozen_ms=T0_MS)


@pytest.fixture(scope="module")
def sb() -> Iterator[RunningSandbox]:
    with running_sandbox(FreeeSandboxConfig(seed="demo", clock=frozen_clock())) as running:
        yield running


def token_form(config: FreeeSandboxConfig, refresh_token: str, **overrides: str) -> dict[str, str]:
    return {
        "grant_type": "refresh_token",
        "client_id": config.client_id,
        "client_secret": config.client_secret,
        "refresh_token": refresh_token,
    } | overrides


# --------------------------------------------------------------------------------------------------
# OAuth2
# --------------------------------------------------------------------------------------------------


def test_refresh_rotates_both_tokens_and_a_refresh_token_works_only_once() -> None:
    config = FreeeSandboxConfig(seed="none", refresh_token="operator-chosen-rt", clock=frozen_clock())
    with running_sandbox(config) as sb:
        http = sb.client.http
        first = http.post("/public_api/token", data=token_form(config, "operator-chosen-rt"))
        assert first.status_code == 200
        pair = first.json()
        assert pair["token_type"] == "bearer" and pair["expires_in"] == 21600
        assert pair["refresh_token"] != "operator-chosen-rt"
        assert first.headers["cache-control"] == "no-store"

        reused = http.post("/public_api/token", data=token_form(config, "operator-chosen-rt"))
        assert reused.status_code == 401
        assert reused.json()["error"] == "invalid_grant"

        second = http.post("/public_api/token", data=token_form(config, pair["refresh_token"]))
        assert second.status_code == 200
        assert {second.json()["access_token"], second.json()["refresh_token"]}.isdisjoint(
            {pair["access_token"], pair["refresh_token"]}
        )
        for token in (pair["access_token"], second.json()["access_token"]):  # old one valid until expiry
            ok = http.get("/api/1/companies", headers={"Authorization": f"Bearer {token}"})
            assert ok.status_code == 200

        wrong_secret = http.post(
            "/public_api/token", data=token_form(config, second.json()["refresh_token"], client_secret="x")
        )
        assert wrong_secret.status_code == 401 and wrong_secret.json()["error"] == "invalid_client"
        unsupported = http.post("/public_api/token", data=token_form(config, "x", grant_type="password"))
        assert unsupported.status_code == 400 and unsupported.json()["error"] == "unsupported_grant_type"
        assert sb.app.state.auth.refresh_count == 2


def test_the_first_refresh_token_is_generated_and_printed_when_serving(capfd: pytest.CaptureFixture[str]) -> None:
    app = create_app(FreeeSandboxConfig(seed="none"))
    generated = app.state.auth.initial_refresh_token
    with ServerThread(app) as server:
        printed = capfd.readouterr().out
        assert f"refresh_token={generated}" in printed
        config = app.state.config
        response = httpx.post(f"{server.url}/public_api/token", data=token_form(config, generated))
        assert response.status_code == 200
    assert not app.state.store.partners  # seed="none": master data only
    assert app.state.store.taxes and app.state.store.account_items


def test_access_token_expires_after_its_ttl_on_the_sandbox_clock() -> None:
    config = FreeeSandboxConfig(seed="none", access_token_ttl_s=600, clock=frozen_clock())
    with running_sandbox(config) as sb:
        assert sb.client.get("/api/1/companies").status_code == 200
        sb.clock.advance(599_000)
        assert sb.client.get("/api/1/companies").status_code == 200
        sb.clock.advance(1_000)
        expired = sb.client.get("/api/1/companies")
        assert expired.status_code == 401
        assert expired.json()["code"] == "expired_access_token"
        assert expired.json()["message"]
        assert sb.client.refresh().status_code == 200
        assert sb.client.get("/api/1/companies").status_code == 200


def test_missing_or_unknown_bearer_token_is_401(sb: RunningSandbox) -> None:
    for headers in ({}, {"Authorization": "Bearer not-a-token"}):
        response = sb.client.http.get("/api/1/companies", headers=headers)
        assert response.status_code == 401
        assert response.json()["code"] == "invalid_access_token"
        assert response.headers["X-Freee-Request-ID"]


def test_authorization_code_flow_redirects_with_a_code_that_is_exchanged_once(sb: RunningSandbox) -> None:
    http = sb.client.http
    redirect = http.get(
        "/public_api/authorize",
        params={
            "client_id": sb.config.client_id,
            "redirect_uri": "http://localhost/cb",
            "response_type": "code",
            "state": "xyz",
        },
    )
    assert redirect.status_code == 302
    location = httpx.URL(redirect.headers["location"])
    assert location.params["state"] == "xyz"
    form = {
        "grant_type": "authorization_code",
        "client_id": sb.config.client_id,
        "client_secret": sb.config.client_secret,
        "code": location.params["code"],
    }
    assert http.post("/public_api/token", data=form).status_code == 200
    assert http.post("/public_api/token", data=form).json()["error"] == "invalid_grant"


# --------------------------------------------------------------------------------------------------
# company_id
# --------------------------------------------------------------------------------------------------


def test_company_id_is_required_and_must_be_a_visible_company(sb: RunningSandbox) -> None:
    missing = sb.client.get("/api/1/partners")
    assert missing.status_code == 400
    body = missing.json()
    assert body["status_code"] == 400
    assert any("company_id" in m for e in body["errors"] for m in e["messages"])

    no_body_company = sb.client.post("/api/1/deals", json={"issue_date": "2026-11-30", "type": "income"})
    assert no_body_company.status_code == 400

    iv_missing = sb.client.get("/iv/invoices")
    assert iv_missing.status_code == 400
    assert iv_missing.headers["content-type"].startswith("application/problem+json")
    assert iv_missing.json()["errors"][0]["type"] == "bad_request"

    other = sb.client.get("/api/1/partners", params={"company_id": 999})
    assert other.status_code == 401 and other.json()["code"] == "company_not_found"

    companies = sb.client.get("/api/1/companies").json()["companies"]
    assert [c["id"] for c in companies] == [sb.company_id]


# --------------------------------------------------------------------------------------------------
# rate limits and daily cap
# --------------------------------------------------------------------------------------------------


def test_accounting_limit_answers_403_and_locks_out_for_ten_minutes() -> None:
    config = FreeeSandboxConfig(seed="none", accounting_limit_per_hour=3, clock=frozen_clock())
    with running_sandbox(config) as sb:
        params = {"company_id": sb.company_id}
        assert [sb.client.get("/api/1/partners", params=params).status_code for _ in range(3)] == [200] * 3
        sb.clock.advance(HOUR_MS - 1_000)  # the three hits are still inside the rolling hour
        refused = sb.client.get("/api/1/partners", params=params)
        assert refused.status_code == 403
        assert set(refused.json()) >= {"message", "messages"}
        sb.clock.advance(2_000)  # the hour has rolled over, but the lockout (600 s) still holds
        assert sb.client.get("/api/1/partners", params=params).status_code == 403
        sb.clock.advance(600_000)
        assert sb.client.get("/api/1/partners", params=params).status_code == 200


def test_invoice_api_limits_answer_429_per_minute_and_per_hour() -> None:
    config = FreeeSandboxConfig(seed="none", iv_limit_per_minute=3, iv_limit_per_hour=5, clock=frozen_clock())
    with running_sandbox(config) as sb:
        params = {"company_id": sb.company_id}
        remaining = [
            sb.client.get("/iv/invoices", params=params).headers["X-Ratelimit-Remaining-Minute"] for _ in range(3)
        ]
        assert remaining == ["2", "1", "0"]
        over = sb.client.get("/iv/invoices", params=params)
        assert over.status_code == 429
        assert over.json()["status_code"] == 429
        assert over.json()["meta"] == {"limit": 3, "period": 60, "remaining": 0, "reset": "2026-11-30T00:01:00.000000Z"}
        assert over.headers["X-Ratelimit-Reset-Minute"] == "2026-11-30T00:01:00.000000Z"
        assert over.headers["X-RateLimit-Remaining"] == "2"  # refused calls do not count

        sb.clock.advance(60_000)
        assert [sb.client.get("/iv/invoices", params=params).status_code for _ in range(2)] == [200, 200]
        hourly = sb.client.get("/iv/invoices", params=params)
        assert hourly.status_code == 429
        assert hourly.json()["meta"]["period"] == 3600
        assert hourly.headers["X-RateLimit-Reset"] == "2026-11-30T01:00:00.000000Z"
        # freee会計 is not affected by the freee請求書 limits
        assert sb.client.get("/api/1/partners", params=params).status_code == 200


def test_daily_cap_per_company_and_api_resets_on_the_next_utc_day() -> None:
    config = FreeeSandboxConfig(seed="none", daily_cap=3, clock=frozen_clock())
    with running_sandbox(config) as sb:
        params = {"company_id": sb.company_id}
        assert [sb.client.get("/api/1/items", params=params).status_code for _ in range(3)] == [200] * 3
        capped = sb.client.get("/api/1/items", params=params)
        assert capped.status_code == 403 and "上限" in capped.json()["message"]

        day_headers = [sb.client.get("/iv/invoices", params=params).headers for _ in range(3)]
        assert [h["X-RateLimit-Remaining-Day"] for h in day_headers] == ["2", "1", "0"]
        assert day_headers[0]["X-RateLimit-Limit-Day"] == "3"
        iv_capped = sb.client.get("/iv/invoices", params=params)
        assert iv_capped.status_code == 429 and iv_capped.json()["meta"]["period"] == 86400

        sb.clock.advance(24 * HOUR_MS)
        assert sb.client.refresh().status_code == 200  # the 6-hour access token has expired meanwhile
        assert sb.client.get("/api/1/items", params=params).status_code == 200
        assert sb.client.get("/iv/invoices", params=params).status_code == 200


def test_injected_faults_use_freee_error_bodies_and_spare_admin_paths() -> None:
    config = FreeeSandboxConfig(seed="none", faults=FaultConfig(fault_rate=1.0, kinds=("5xx",), fault_seed=7))
    with running_sandbox(config) as sb:
        admin = sb.client.http.post("/_sandbox/tokens/access")
        assert admin.status_code == 200
        token = admin.json()["access_token"]
        faulted = sb.client.http.get("/api/1/companies", headers={"Authorization": f"Bearer {token}"})
        assert faulted.status_code in (500, 502, 503)
        assert faulted.json()["status_code"] == faulted.status_code
        assert sb.app.state.faults.injected[0][0] == "5xx"


# --------------------------------------------------------------------------------------------------
# partners
# --------------------------------------------------------------------------------------------------


def test_partner_upsert_by_code_creates_then_patches(sb: RunningSandbox) -> None:
    cid = sb.company_id
    created = sb.client.put(
        "/api/1/partners/upsert_by_code",
        json={
            "company_id": cid,
            "code": "HS-77",
            "partner": {
                "name": "株式会社アップサート",
                "invoice_registration_number": "7123456789012",
                "qualified_invoice_issuer": True,
            },
        },
    )
    assert created.status_code == 201
    partner = created.json()["partner"]
    assert partner["invoice_registration_number"] == "T7123456789012"
    updated = sb.client.put(
        "/api/1/partners/upsert_by_code",
        json={"company_id": cid, "code": "HS-77", "partner": {"name": "株式会社アップサート", "email": "a@b.jp"}},
    )
    assert updated.status_code == 200
    after = updated.json()["partner"]
    assert after["id"] == partner["id"] and after["email"] == "a@b.jp"
    assert after["qualified_invoice_issuer"] is True  # untouched attributes stay

    bad_number = sb.client.post(
        "/api/1/partners",
        json={"company_id": cid, "name": "x", "code": "HS-78", "invoice_registration_number": "T0123"},
    )
    assert bad_number.status_code == 400
    duplicate = sb.client.post("/api/1/partners", json={"company_id": cid, "name": "株式会社アップサート", "code": "Z"})
    assert duplicate.status_code == 400
    no_code = sb.client.post("/api/1/partners", json={"company_id": cid, "name": "コードなし"})
    assert no_code.status_code == 400  # 取引先コード is enabled in the sandbox company

    found = sb.client.get("/api/1/partners", params={"company_id": cid, "keyword": "アップサート"}).json()
    assert [p["code"] for p in found["partners"]] == ["HS-77"]
    assert sb.client.get("/api/1/partners", params={"company_id": cid, "limit": 3001}).status_code == 400
    page = sb.client.get("/api/1/partners", params={"company_id": cid, "offset": 2, "limit": 3}).json()["partners"]
    ids = [p["id"] for p in sb.client.get("/api/1/partners", params={"company_id": cid}).json()["partners"]]
    assert [p["id"] for p in page] == ids[2:5]


# --------------------------------------------------------------------------------------------------
# freee請求書: one rounding per tax rate per invoice
# --------------------------------------------------------------------------------------------------

_MODES = {"omit": ROUND_DOWN, "round_up": ROUND_CEILING, "round": ROUND_HALF_UP}


def per_line_tax(amounts: list[int], rate: int, entry: str, fraction: str) -> int:
    """What summing per-line rounded taxes would give (NOT allowed on a qualified invoice)."""
    divisor = Decimal(100) if entry == "out" else Decimal(100 + rate)
    return sum(int((Decimal(a) * rate / divisor).quantize(Decimal(1), rounding=_MODES[fraction])) for a in amounts)


def create_invoice(
    sb: RunningSandbox, number: str, entry: str, fraction: str, lines: list[dict[str, Any]], **extra: Any
) -> dict[str, Any]:
    response = sb.client.post(
        "/iv/invoices",
        json={
            "company_id": sb.company_id,
            "invoice_number": number,
            "billing_date": "2026-11-30",
            "payment_date": "2026-12-31",
            "tax_entry_method": entry,
            "tax_fraction": fraction,
            "withholding_tax_entry_method": "out",
            "partner_title": "御中",
            "partner_code": "TK0001",
            "lines": lines,
        }
        | extra,
    )
    assert response.status_code == 201, response.text
    return response.json()["invoice"]


def line(amount: int, rate: int = 10, reduced: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"description": f"{rate}% line", "quantity": 1, "unit_price": str(amount), "tax_rate": rate}
    if reduced:
        out["reduced_tax_rate"] = True
    return out


@pytest.mark.parametrize(
    ("amounts", "entry", "fraction", "tax", "per_line"),
    [
        ([3333, 3333], "out", "round", 667, 666),  # 6,666 × 10% = 666.6 → 667
        ([1005, 1005], "out", "omit", 201, 200),  # 2,010 × 10% = 201.0
        ([1050, 1050], "in", "round_up", 191, 192),  # 2,100 × 10/110 = 190.9 → 191
    ],
    ids=["10%-out-四捨五入", "10%-out-切り捨て", "10%-in-切り上げ"],
)
def test_tax_is_rounded_once_per_rate_not_per_line(
    sb: RunningSandbox, amounts: list[int], entry: str, fraction: str, tax: int, per_line: int
) -> None:
    invoice = create_invoice(sb, f"T-{entry}-{fraction}", entry, fraction, [line(a) for a in amounts])
    assert per_line_tax(amounts, 10, entry, fraction) == per_line != tax
    assert invoice["amount_tax"] == invoice["amount_tax_10"] == tax
    total = sum(amounts)
    if entry == "out":
        assert invoice["amount_excluding_tax"] == total
        assert invoice["amount_including_tax"] == invoice["total_amount"] == total + tax
    else:
        assert invoice["amount_including_tax"] == invoice["total_amount"] == total
        assert invoice["amount_excluding_tax"] == total - tax
    assert invoice["amount_tax_8_reduced"] is None and invoice["amount_tax_8"] is None


@pytest.mark.parametrize("fraction", ["omit", "round_up", "round"])
def test_tax_inclusive_11000_at_10_percent_contains_1000(sb: RunningSandbox, fraction: str) -> None:
    invoice = create_invoice(sb, f"T-11000-{fraction}", "in", fraction, [line(11000)])
    assert (invoice["amount_including_tax_10"], invoice["amount_excluding_tax_10"], invoice["amount_tax_10"]) == (
        11000,
        10000,
        1000,
    )


def test_mixed_10_and_reduced_8_percent_lines_round_per_rate(sb: RunningSandbox) -> None:
    lines = [
        line(3333),
        line(1234, 8, reduced=True),
        line(3333),
        line(1234, 8, reduced=True),
        {"type": "text", "description": "※軽減税率対象"},
    ]
    invoice = create_invoice(sb, "T-MIXED-OUT", "out", "round", lines)
    # 10%: 6,666 × 10% = 666.6 → 667 (per line 666); 8%軽: 2,468 × 8% = 197.44 → 197 (per line 99 + 99 = 198)
    assert per_line_tax([1234, 1234], 8, "out", "round") == 198
    assert (invoice["amount_excluding_tax_10"], invoice["amount_tax_10"], invoice["amount_including_tax_10"]) == (
        6666,
        667,
        7333,
    )
    assert (
        invoice["amount_excluding_tax_8_reduced"],
        invoice["amount_tax_8_reduced"],
        invoice["amount_including_tax_8_reduced"],
    ) == (2468, 197, 2665)
    assert invoice["amount_tax"] == 864 and invoice["total_amount"] == 9998
    assert [ln["type"] for ln in invoice["lines"]] == ["item", "item", "item", "item", "text"]

    inclusive = create_invoice(
        sb, "T-MIXED-IN", "in", "round_up", [line(1050), line(1050), line(1001, 8, True), line(1001, 8, True)]
    )
    # 10%: 2,100 × 10/110 = 190.9 → 191 (per line 96 × 2 = 192); 8%軽: 2,002 × 8/108 = 148.3 → 149 (per line 150)
    assert per_line_tax([1001, 1001], 8, "in", "round_up") == 150
    assert (inclusive["amount_tax_10"], inclusive["amount_tax_8_reduced"]) == (191, 149)
    assert inclusive["amount_including_tax"] == inclusive["total_amount"] == 4102
    assert inclusive["amount_excluding_tax"] == 4102 - 340


def test_line_amounts_use_line_amount_fraction_and_decimal_quantities(sb: RunningSandbox) -> None:
    lines = [{"description": "1.5h", "quantity": 1.5, "unit_price": "333", "tax_rate": 10}]  # 499.5 yen
    omitted = create_invoice(sb, "T-LAF-OMIT", "out", "omit", lines, line_amount_fraction="omit")
    rounded = create_invoice(sb, "T-LAF-ROUND", "out", "omit", lines, line_amount_fraction="round")
    assert omitted["amount_excluding_tax"] == 499 and rounded["amount_excluding_tax"] == 500
    assert omitted["lines"][0]["quantity"] == 1.5


def test_withholding_tax_reduces_the_total(sb: RunningSandbox) -> None:
    fee = {"description": "原稿料", "quantity": 1, "unit_price": "11000", "tax_rate": 10, "withholding": True}
    invoice = create_invoice(sb, "T-WHT", "in", "omit", [fee], withholding_tax_entry_method="in")
    # 源泉所得税 on the tax-inclusive 11,000: 11,000 × 10.21% = 1,123.1 → 1,123
    assert invoice["amount_withholding_tax"] == 1123
    assert invoice["amount_including_tax"] == 11000 and invoice["total_amount"] == 11000 - 1123
    excl = create_invoice(sb, "T-WHT-OUT", "in", "omit", [fee], withholding_tax_entry_method="out")
    assert excl["amount_withholding_tax"] == 1021  # on the 10,000 excluding tax


def test_invalid_invoice_lines_are_refused(sb: RunningSandbox) -> None:
    bad_rate = sb.client.post(
        "/iv/invoices",
        json={
            "company_id": sb.company_id,
            "invoice_number": "X",
            "billing_date": "2026-11-30",
            "tax_entry_method": "out",
            "tax_fraction": "omit",
            "withholding_tax_entry_method": "out",
            "partner_title": "御中",
            "partner_code": "TK0001",
            "lines": [line(100, 10, reduced=True)],
        },
    )
    assert bad_rate.status_code == 400
    assert bad_rate.json()["errors"][0]["type"] == "bad_request"


def test_invoice_is_booked_as_a_deal_with_the_invoice_tax_per_rate(sb: RunningSandbox) -> None:
    invoice = create_invoice(sb, "T-BOOKED", "out", "round", [line(3333), line(3333), line(1234, 8, reduced=True)])
    assert invoice["deal_status"] == "registered" and invoice["payment_status"] == "unsettled"
    deal = sb.client.get(f"/api/1/deals/{invoice['deal_id']}", params={"company_id": sb.company_id}).json()["deal"]
    assert deal["amount"] == invoice["amount_including_tax"] == deal["due_amount"]
    assert deal["ref_number"] == "T-BOOKED" and deal["due_date"] == "2026-12-31"
    assert sorted((d["tax_code"], d["amount"], d["vat"]) for d in deal["details"]) == [
        (129, 7333, 667),  # 課税売上10%
        (156, 1333, 99),  # 課税売上8%（軽）: 1,234 × 8% = 98.72 → 99
    ]
    listed = sb.client.get("/iv/invoices", params={"company_id": sb.company_id, "invoice_number": "T-BOOKED"})
    assert [i["id"] for i in listed.json()["invoices"]] == [invoice["id"]]


# --------------------------------------------------------------------------------------------------
# deals, payments and wallet txn matching (消込)
# --------------------------------------------------------------------------------------------------


def pay(
    sb: RunningSandbox, deal_id: int, amount: int, day: str = "2026-11-30", walletable_id: int = BANK_ACCOUNT_ID
) -> httpx.Response:
    return sb.client.post(
        f"/api/1/deals/{deal_id}/payments",
        json={
            "company_id": sb.company_id,
            "date": day,
            "from_walletable_type": "bank_account",
            "from_walletable_id": walletable_id,
            "amount": amount,
        },
    )


def income_deal(sb: RunningSandbox, amount: int, partner_code: str = "TK0002") -> dict[str, Any]:
    response = sb.client.post(
        "/api/1/deals",
        json={
            "company_id": sb.company_id,
            "issue_date": "2026-11-01",
            "type": "income",
            "partner_code": partner_code,
            "details": [{"tax_code": 129, "account_item_code": "4001", "amount": amount}],
        },
    )
    assert response.status_code == 201, response.text
    return response.json()["deal"]


def wallet_txn(sb: RunningSandbox, txn_id: int) -> dict[str, Any]:
    return sb.client.get(f"/api/1/wallet_txns/{txn_id}", params={"company_id": sb.company_id}).json()["wallet_txn"]


def test_payments_settle_a_deal_and_its_invoice(sb: RunningSandbox) -> None:
    invoice = create_invoice(sb, "T-PAY", "out", "omit", [line(100000)])
    deal_id = invoice["deal_id"]
    first = pay(sb, deal_id, 60000, day="2026-12-01")
    assert first.status_code == 201
    deal = first.json()["deal"]
    assert (deal["amount"], deal["due_amount"], deal["status"]) == (110000, 50000, "unsettled")
    assert [p["amount"] for p in deal["payments"]] == [60000]

    too_much = pay(sb, deal_id, 50001, day="2026-12-01")
    assert too_much.status_code == 400

    settled = pay(sb, deal_id, 50000, day="2026-12-02").json()["deal"]
    assert (settled["due_amount"], settled["status"]) == (0, "settled")
    got = sb.client.get(f"/iv/invoices/{invoice['id']}", params={"company_id": sb.company_id}).json()["invoice"]
    assert got["payment_status"] == "settled"
    settled_ids = [
        d["id"]
        for d in sb.client.get(
            "/api/1/deals", params={"company_id": sb.company_id, "status": "settled", "limit": 100}
        ).json()["deals"]
    ]
    assert deal_id in settled_ids


def test_deal_created_with_payments_is_settled_and_vat_is_auto_computed(sb: RunningSandbox) -> None:
    response = sb.client.post(
        "/api/1/deals",
        json={
            "company_id": sb.company_id,
            "issue_date": "2026-11-05",
            "type": "income",
            "details": [{"tax_code": 129, "account_item_code": "4001", "amount": 10999}],
            "payments": [
                {"amount": 10999, "from_walletable_type": "wallet", "from_walletable_id": 2, "date": "2026-11-05"}
            ],
        },
    )
    deal = response.json()["deal"]
    assert deal["status"] == "settled" and deal["due_amount"] == 0
    assert deal["details"][0]["vat"] == 999  # 10,999 × 10/110 = 999.9 → 999 (company setting 切り捨て)
    unpaid = income_deal(sb, 5000)
    assert unpaid["status"] == "unsettled" and unpaid["due_amount"] == 5000 and "payments" not in unpaid


def test_payment_matches_the_seeded_bank_deposit(sb: RunningSandbox) -> None:
    deposits = sb.client.get(
        "/api/1/wallet_txns",
        params={
            "company_id": sb.company_id,
            "walletable_type": "bank_account",
            "walletable_id": BANK_ACCOUNT_ID,
            "entry_side": "income",
            "start_date": "2026-11-30",
            "end_date": "2026-11-30",
            "limit": 100,
        },
    ).json()
    b01 = next(t for t in deposits["wallet_txns"] if t["amount"] == 990000 and "ﾔﾏﾀﾞｼﾖｳｼﾞ" in t["description"])
    assert (b01["status"], b01["due_amount"]) == (1, 990000)  # 消込待ち
    deal = income_deal(sb, 990000, partner_code="TK0001")
    assert pay(sb, deal["id"], 990000).status_code == 201
    assert (wallet_txn(sb, b01["id"])["status"], wallet_txn(sb, b01["id"])["due_amount"]) == (2, 0)  # 消込済み


def test_one_deposit_paying_two_deals_is_partial_then_matched(sb: RunningSandbox) -> None:
    txn = sb.client.post(
        "/api/1/wallet_txns",
        json={
            "company_id": sb.company_id,
            "entry_side": "income",
            "amount": 3000,
            "walletable_type": "bank_account",
            "walletable_id": BANK_ACCOUNT_ID,
            "date": "2026-12-10",
            "description": "振込 ﾏﾄﾒ(ｶ",
        },
    ).json()["wallet_txn"]
    assert (txn["status"], txn["due_amount"], txn["rule_matched"]) == (1, 3000, False)
    first, second = income_deal(sb, 1000), income_deal(sb, 2000)
    pay(sb, first["id"], 1000, day="2026-12-10")
    assert (wallet_txn(sb, txn["id"])["status"], wallet_txn(sb, txn["id"])["due_amount"]) == (4, 2000)  # 消込中
    pay(sb, second["id"], 2000, day="2026-12-10")
    assert (wallet_txn(sb, txn["id"])["status"], wallet_txn(sb, txn["id"])["due_amount"]) == (2, 0)


def test_payment_without_a_matching_deposit_records_a_matched_txn(sb: RunningSandbox) -> None:
    before = set(sb.store.wallet_txns)
    deal = income_deal(sb, 7777)
    pay(sb, deal["id"], 7777, day="2026-12-20")
    (new_id,) = set(sb.store.wallet_txns) - before
    assert (wallet_txn(sb, new_id)["amount"], wallet_txn(sb, new_id)["status"]) == (7777, 2)


def test_manual_journal_must_balance(sb: RunningSandbox) -> None:
    unbalanced = sb.client.post(
        "/api/1/manual_journals",
        json={
            "company_id": sb.company_id,
            "issue_date": "2026-11-30",
            "details": [
                {"entry_side": "debit", "tax_code": 136, "account_item_code": "6001", "amount": 440},
                {"entry_side": "credit", "tax_code": 2, "account_item_code": "1010", "amount": 400},
            ],
        },
    )
    assert unbalanced.status_code == 400
    balanced = sb.client.post(
        "/api/1/manual_journals",
        json={
            "company_id": sb.company_id,
            "issue_date": "2026-11-30",
            "ref_number": "FEE-B02",
            "details": [
                {"entry_side": "debit", "tax_code": 136, "account_item_code": "6001", "amount": 440},
                {
                    "entry_side": "credit",
                    "tax_code": 2,
                    "account_item_code": "1010",
                    "amount": 440,
                    "partner_code": "TK0002",
                },
            ],
        },
    )
    assert balanced.status_code == 201
    assert balanced.json()["manual_journal"]["details"][0]["vat"] == 40  # 440 × 10/110
    listed = sb.client.get("/api/1/manual_journals", params={"company_id": sb.company_id, "ref_number": "FEE-B02"})
    assert [j["ref_number"] for j in listed.json()["manual_journals"]] == ["FEE-B02"]


def test_deal_update_keeps_detail_ids_and_cannot_drop_below_the_paid_amount(sb: RunningSandbox) -> None:
    deal = income_deal(sb, 20000)
    detail_id = deal["details"][0]["id"]
    body = {
        "company_id": sb.company_id,
        "issue_date": "2026-11-01",
        "type": "income",
        "partner_code": "TK0002",
        "details": [
            {"id": detail_id, "tax_code": 129, "account_item_id": 4001, "amount": 22000},
            {"tax_code": 156, "account_item_id": 4001, "amount": 1080},
        ],
    }
    updated = sb.client.put(f"/api/1/deals/{deal['id']}", json=body).json()["deal"]
    assert updated["details"][0]["id"] == detail_id and len(updated["details"]) == 2
    assert (updated["amount"], updated["due_amount"]) == (23080, 23080)
    assert [d["vat"] for d in updated["details"]] == [2000, 80]
    pay(sb, deal["id"], 23000, day="2026-12-24")
    shrink = body | {"details": [{"id": detail_id, "tax_code": 129, "account_item_id": 4001, "amount": 100}]}
    assert sb.client.put(f"/api/1/deals/{deal['id']}", json=shrink).status_code == 400


def test_wallet_txns_list_newest_date_first_and_pages(sb: RunningSandbox) -> None:
    params = {"company_id": sb.company_id, "walletable_type": "bank_account", "walletable_id": BANK_ACCOUNT_ID}
    rows = sb.client.get("/api/1/wallet_txns", params=params | {"limit": 100}).json()["wallet_txns"]
    dates = [t["date"] for t in rows]
    assert dates == sorted(dates, reverse=True) and len(rows) >= 10
    second_page = sb.client.get("/api/1/wallet_txns", params=params | {"offset": 3, "limit": 3}).json()
    assert [t["id"] for t in second_page["wallet_txns"]] == [t["id"] for t in rows[3:6]]
    assert (
        sb.client.get(
            "/api/1/wallet_txns", params={"company_id": sb.company_id, "walletable_id": BANK_ACCOUNT_ID}
        ).status_code
        == 400
    )


# --------------------------------------------------------------------- company settings (採番, 取引先コード, 端数処理)
def test_manual_numbering_requires_a_number_and_refuses_a_used_one() -> None:
    config = FreeeSandboxConfig(seed="demo", print_refresh_token=False, tax_fraction=1, use_partner_code=False)
    with running_sandbox(config) as sb:
        http = sb.client
        company = http.get("/api/1/companies/1").json()["company"]
        assert company["fiscal_years"][0]["tax_fraction"] == 1 and company["use_partner_code"] is False
        partner = http.get("/api/1/partners", params={"company_id": 1}).json()["partners"][0]
        assert partner["code"] is None
        body = {"company_id": 1, "billing_date": "2026-12-01", "tax_entry_method": "out", "tax_fraction": "omit",
                "withholding_tax_entry_method": "out", "partner_title": "御中", "partner_id": partner["id"],
                "lines": [{"description": "x", "quantity": 1, "unit_price": "1000", "tax_rate": 10}]}
        missing = http.post("/iv/invoices", json=body)
        assert missing.status_code == 400
        assert missing.json() == {"status_code": 400, "errors": [
            {"type": "bad_request", "messages": ["invoice_number は必須です。（請求書番号は手動採番の設定です）"]}]}
        assert http.post("/iv/invoices", json=body | {"invoice_number": "M-1"}).status_code == 201
        again = http.post("/iv/invoices", json=body | {"invoice_number": "M-1"})
        assert again.status_code == 400 and "既に使用されています" in again.json()["errors"][0]["messages"][0]
        sb.config.iv_auto_numbering = True
        auto = http.post("/iv/invoices", json=body | {"invoice_number": "M-2"})
        assert auto.status_code == 400 and "指定できません" in auto.json()["errors"][0]["messages"][0]
