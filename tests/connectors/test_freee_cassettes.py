"""Recorded freee traffic (vcrpy), replayed by default — no server needed.

Record against the local sandbox: ``RENKEI_VCR_RECORD=1``. Record against a real freee test company:
``RENKEI_VCR_RECORD=1 RENKEI_FREEE_LIVE=1`` plus the ``RENKEI_FREEE_*`` settings (see
``connectors/freee/README.md``). Secrets are filtered before anything is written: the Authorization
header is dropped, the token request body and the token response are rewritten, and the client
secret / tokens are replaced wherever they appear.
"""

from __future__ import annotations

import json
import os
import re
import urllib.parse
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

vcr = pytest.importorskip("vcr")

from renkei.connectors.freee.auth import FileTokenStore, FreeeAuth  # noqa: E402
from renkei.connectors.freee.client import FreeeClient  # noqa: E402
from renkei.connectors.freee.connector import FreeeConnector, FreeeConnectorConfig  # noqa: E402
from renkei.connectors.freee.testing import FAST_LIMITS  # noqa: E402
from renkei.domain.model import Company, Invoice, InvoiceLine, TaxCategory  # noqa: E402

CASSETTES = Path(__file__).parent / "cassettes" / "freee"
RECORD = os.environ.get("RENKEI_VCR_RECORD") == "1"
LIVE = os.environ.get("RENKEI_FREEE_LIVE") == "1"
REDACTED = "***REDACTED***"
PLACEHOLDER_HOST = "http://freee.sandbox.invalid"
CLIENT_ID = "renkei-vcr-client"
CLIENT_SECRET = "renkei-vcr-secret-6b2e9c"
REFRESH_TOKEN = "sbx-rt-vcr-initial-4d8a1f"
_TOKEN_RE = re.compile(r"sbx-(?:rt|at)-[A-Za-z0-9_\-]+")


def _scrub(text: str) -> str:
    text = _TOKEN_RE.sub(REDACTED, text)
    for secret in (CLIENT_SECRET, os.environ.get("RENKEI_FREEE_CLIENT_SECRET") or "",
                   os.environ.get("RENKEI_FREEE_REFRESH_TOKEN") or ""):
        if secret and len(secret) >= 6:
            text = text.replace(secret, REDACTED)
    return text


def before_record_request(request):
    if request.body and "/public_api/token" in request.path:
        body = request.body.decode() if isinstance(request.body, bytes) else request.body
        form = dict(urllib.parse.parse_qsl(body))
        for k in ("refresh_token", "client_secret", "code", "client_id"):
            if k in form:
                form[k] = REDACTED
        request.body = urllib.parse.urlencode(form, safe="*").encode()
    elif request.body:
        body = request.body.decode() if isinstance(request.body, bytes) else request.body
        request.body = _scrub(body).encode()
    request.uri = re.sub(r"^https?://[^/]+", PLACEHOLDER_HOST, request.uri)
    return request


def before_record_response(response):
    body = response["body"].get("string")
    if body:
        text = body.decode() if isinstance(body, bytes) else body
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if isinstance(data, dict) and ("access_token" in data or "refresh_token" in data):
            for k in ("access_token", "refresh_token", "id_token"):
                if k in data:
                    data[k] = REDACTED
            text = json.dumps(data)
        response["body"]["string"] = _scrub(text).encode()
    headers = response.get("headers") or {}
    for h in list(headers):
        if h.lower() in ("set-cookie", "authorization"):
            del headers[h]
    return response


def _vcr():
    return vcr.VCR(
        cassette_library_dir=str(CASSETTES),
        record_mode="all" if RECORD else "none",
        match_on=["method", "path", "query"],
        filter_headers=["authorization", "cookie", "host"],
        before_record_request=before_record_request,
        before_record_response=before_record_response,
        decode_compressed_response=True,
    )


@pytest.fixture
def target(tmp_path):
    """(base_url, client_id, client_secret, company_id, refresh token, cleanup) for this run."""
    if RECORD and LIVE:
        from renkei.settings import Settings

        s = Settings()
        yield (s.freee_base_url, s.freee_auth_url, s.freee_client_id, s.freee_client_secret.get_secret_value(),
               s.freee_company_id, s.freee_refresh_token.get_secret_value() if s.freee_refresh_token else None,
               FileTokenStore(s.token_store_path))
        return
    if RECORD:
        app_mod = pytest.importorskip("renkei.sandboxes.freee.app")
        from renkei.sandboxes.common import ServerThread
        from renkei.sandboxes.freee.config import FreeeSandboxConfig

        cfg = FreeeSandboxConfig(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, refresh_token=REFRESH_TOKEN,
                                 print_refresh_token=False, iv_limit_per_minute=100000)
        server = ServerThread(app_mod.create_app(cfg)).start()
        yield (server.url, server.url, CLIENT_ID, CLIENT_SECRET, cfg.company_id, REFRESH_TOKEN,
               FileTokenStore(tmp_path / "t.json"))
        server.stop()
        return
    yield (PLACEHOLDER_HOST, PLACEHOLDER_HOST, CLIENT_ID, CLIENT_SECRET, 1, REFRESH_TOKEN,
           FileTokenStore(tmp_path / "t.json"))


def _client(target) -> FreeeClient:
    base, auth_url, cid, secret, company_id, refresh, store = target
    from renkei.connectors.freee.client import token_url_from

    auth = FreeeAuth(client_id=cid, client_secret=secret, store=store, token_url=token_url_from(auth_url),
                     initial_refresh_token=refresh)
    return FreeeClient(base_url=base, company_id=company_id, auth=auth, limits=FAST_LIMITS,
                       backoff_initial=0.01, max_attempts=2)


def test_cassette_partner_and_invoice_flow(target):
    cassette = CASSETTES / "partner_invoice_flow.yaml"
    if not RECORD and not cassette.exists():
        pytest.skip(f"no cassette {cassette.name}; record it with RENKEI_VCR_RECORD=1")
    with _vcr().use_cassette(cassette.name) as cas, _client(target) as client:
        conn = FreeeConnector(client, FreeeConnectorConfig(send_invoice_number=True))
        companies = client.list_companies()
        assert companies and client.company_id in [c["id"] for c in companies]
        partner, _ = conn.upsert_partner(Company(name="株式会社カセット", partner_code="VCR-0001",
                                                 registration_number="T7010705000725"))
        assert partner.erp_id and partner.registration_number == "T7010705000725"
        inv = Invoice(reference="renkei:deal:vcr-1", number="VCR-INV-1", partner_erp_id=partner.erp_id,
                      recipient_name=partner.name, issue_date=date(2026, 11, 30),
                      lines=[InvoiceLine(description="年間ライセンス", quantity=Decimal(1), unit_price=120000,
                                         amount=120000, tax_category=TaxCategory.STANDARD_10)])
        made = conn.create_invoice(inv)
        assert made.total == 132000 and made.rate_totals[0].tax == 12000
        found = conn.find_invoice_by_reference(inv.reference, partner_erp_id=partner.erp_id, issue_date=inv.issue_date)
        assert found is not None and found.erp_id == made.erp_id
        if not RECORD:
            assert cas.all_played
    text = cassette.read_text()
    assert CLIENT_SECRET not in text and REFRESH_TOKEN not in text and not _TOKEN_RE.search(text)
    assert "authorization" not in text.lower().replace("authorization_code", "")


def test_cassette_deal_payment_and_bank_lines(target):
    cassette = CASSETTES / "deal_payment_flow.yaml"
    if not RECORD and not cassette.exists():
        pytest.skip(f"no cassette {cassette.name}; record it with RENKEI_VCR_RECORD=1")
    with _vcr().use_cassette(cassette.name) as cas, _client(target) as client:
        conn = FreeeConnector(client, FreeeConnectorConfig(deposit_walletable_id=None))
        partner, _ = conn.upsert_partner(Company(name="株式会社カセット入金", partner_code="VCR-0002"))
        sales = next(a for a in client.list_account_items() if a["name"] == "売上高")
        bank = client.list_walletables(type="bank_account")[0]
        deal = client.create_deal({"issue_date": "2026-11-30", "type": "income", "partner_id": int(partner.erp_id),
                                   "ref_number": "renkei:deal:vcr-2",
                                   "details": [{"tax_code": 129, "account_item_id": sales["id"], "amount": 55000,
                                                "vat": 5000}]})
        assert deal["status"] == "unsettled" and deal["due_amount"] == 55000
        txn = client.create_wallet_txn({"entry_side": "income", "amount": 54560, "date": "2026-12-01",
                                        "description": "振込 ｶ)ｶｾﾂﾄﾆﾕｳｷﾝ", "walletable_type": "bank_account",
                                        "walletable_id": bank["id"]})
        paid = client.add_deal_payment(deal["id"], {"date": "2026-12-01", "from_walletable_type": "bank_account",
                                                    "from_walletable_id": bank["id"], "amount": 54560})
        assert paid["due_amount"] == 440 and paid["status"] == "unsettled"  # the 振込手数料 is still open
        conn.config.deposit_walletable_id = bank["id"]
        deposits = [d for b in conn.iter_deposits(since=date(2026, 12, 1)) for d in b.records]
        mine = next(d for d in deposits if d.erp_id == str(txn["id"]))
        assert mine.amount == 54560 and mine.matched
        if not RECORD:
            assert cas.all_played
    text = cassette.read_text()
    assert CLIENT_SECRET not in text and REFRESH_TOKEN not in text and not _TOKEN_RE.search(text)
