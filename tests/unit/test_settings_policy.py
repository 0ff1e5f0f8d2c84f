from pathlib import Path

import pytest
from pydantic import ValidationError

from renkei.domain.money import Rounding
from renkei.policy import load_policy
from renkei.settings import Settings, redact_url


def test_defaults(monkeypatch):
    s = Settings()
    assert (s.crm, s.erp) == ("hubspot", "freee")
    assert s.hubspot_base_url == "https://api.hubapi.com"
    assert s.freee_base_url == "https://api.freee.co.jp"
    assert s.freee_auth_url == "https://accounts.secure.freee.co.jp"
    assert s.database_url.startswith("sqlite:///") and ".renkei" in s.database_url


def test_env_vars_are_prefixed_and_secrets_hidden(monkeypatch):
    monkeypatch.setenv("RENKEI_HUBSPOT_TOKEN", "pat-na1-very-secret")
    monkeypatch.setenv("RENKEI_FREEE_CLIENT_SECRET", "client-secret-xyz")
    monkeypatch.setenv("RENKEI_FREEE_COMPANY_ID", "12345")
    monkeypatch.setenv("RENKEI_DATABASE_URL", "postgresql+psycopg2://renkei:pw0rd@db/renkei")
    monkeypatch.setenv("HUBSPOT_TOKEN", "not-ours")
    s = Settings()
    assert s.hubspot_token.get_secret_value() == "pat-na1-very-secret"
    assert s.freee_company_id == 12345
    shown = repr(s) + str(s.safe_dict())
    for secret in ("pat-na1-very-secret", "client-secret-xyz", "pw0rd"):
        assert secret not in shown
    assert s.safe_dict()["database_url"] == "postgresql+psycopg2://renkei:***@db/renkei"


def test_unknown_connector_is_refused(monkeypatch):
    monkeypatch.setenv("RENKEI_ERP", "sap")
    with pytest.raises(ValidationError, match="erp"):
        Settings()


def test_redact_url_without_credentials():
    assert redact_url("sqlite:///x.db") == "sqlite:///x.db"


def test_packaged_policy_defaults():
    p = load_policy()
    assert p.tax.rounding is Rounding.FLOOR
    assert p.ownership.fields["name"].owner == "crm"
    assert p.ownership.fields["registration_number"].owner == "erp"
    assert p.ownership.fields["registration_number"].on_foreign_change == "review"
    assert p.approval.amount_threshold == 5_000_000
    assert 110 in p.reconciliation.fee_whitelist and 880 in p.reconciliation.fee_whitelist


def test_policy_override_file(tmp_path: Path):
    f = tmp_path / "policy.toml"
    f.write_text('[tax]\nrounding = "half_up"\n[ownership.fields]\nphone = { owner = "both" }\n', encoding="utf-8")
    p = load_policy(f)
    assert p.tax.rounding is Rounding.HALF_UP
    assert p.tax.entry_method.value == "exclusive"  # untouched keys keep their defaults
    assert p.ownership.fields["phone"].owner == "both"
    assert p.ownership.fields["name"].owner == "crm"


def test_policy_typos_are_errors(tmp_path: Path):
    f = tmp_path / "policy.toml"
    f.write_text('[tax]\nrounding = "bankers"\n', encoding="utf-8")
    with pytest.raises(ValidationError, match="rounding"):
        load_policy(f)
