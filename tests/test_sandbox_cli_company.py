"""``renkei sandbox serve`` flags for the freee company's settings (採番, 取引先コード, 端数処理)."""

from __future__ import annotations

import subprocess
import sys

import httpx

from renkei.prefect_server import free_port
from tests.sandbox_env import served


def test_serve_flags_shape_the_freee_company():
    port = free_port()
    with served(["--hubspot-port", "0", "--freee-port", str(port), "--freee-refresh-token", "cli-rt",
                 "--invoice-numbering", "auto", "--partner-codes", "off", "--tax-rounding", "half_up"],
                lambda: httpx.post(f"http://127.0.0.1:{port}/public_api/token", data={
                    "grant_type": "refresh_token", "refresh_token": "cli-rt", "client_id": "renkei-sandbox-client",
                    "client_secret": "renkei-sandbox-secret"}, timeout=2)) as (proc, tok):
        h = {"Authorization": f"Bearer {tok.json()['access_token']}"}
        company = httpx.get(f"http://127.0.0.1:{port}/api/1/companies/1", headers=h, timeout=5).json()["company"]
        assert company["use_partner_code"] is False and company["fiscal_years"][0]["tax_fraction"] == 2
        partner = httpx.get(f"http://127.0.0.1:{port}/api/1/partners", params={"company_id": 1}, headers=h,
                            timeout=5).json()["partners"][0]
        body = {"company_id": 1, "billing_date": "2026-12-01", "tax_entry_method": "out", "tax_fraction": "round",
                "withholding_tax_entry_method": "out", "partner_title": "御中", "partner_id": partner["id"],
                "lines": [{"description": "x", "quantity": 1, "unit_price": "1000", "tax_rate": 10}]}
        created = httpx.post(f"http://127.0.0.1:{port}/iv/invoices", json=body, headers=h, timeout=5)
        assert created.status_code == 201 and created.json()["invoice"]["invoice_number"]  # 自動採番
    assert "採番 auto" in proc.output and "取引先コード off" in proc.output


def test_an_unknown_setting_is_refused():
    res = subprocess.run([sys.executable, "-m", "renkei.cli", "sandbox", "serve", "--hubspot-port", "0",
                          "--freee-port", str(free_port()), "--invoice-numbering", "sometimes"],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and "--invoice-numbering is manual|auto" in res.stdout + res.stderr
