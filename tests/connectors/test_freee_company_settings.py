"""The freee company's settings as the connector reads them, and freee's refusals about invoice numbers
as typed errors (against the freee sandbox over HTTP)."""

from __future__ import annotations

import pytest

from renkei.connectors.freee.connector import (CompanySettingError, FreeeConnector, FreeeConnectorConfig,
                                        InvoiceNumberTaken, read_company_settings)
from renkei.domain.money import Rounding
from tests.connectors.test_freee_client import _company, _invoice, make_sandbox  # noqa: F401 - fixture


@pytest.mark.parametrize("codes, fraction, rounding", [(True, 0, Rounding.FLOOR), (False, 1, Rounding.CEIL),
                                                       (True, 2, Rounding.HALF_UP)])
def test_settings_are_read_from_the_company(make_sandbox, codes, fraction, rounding):
    box = make_sandbox(use_partner_code=codes, tax_fraction=fraction)
    settings = read_company_settings(box.client(), invoice_numbering="auto")
    assert (settings.use_partner_code, settings.tax_rounding, settings.invoice_numbering) == (codes, rounding, "auto")
    table = dict((k, v) for k, v, _ in settings.rows())
    assert table["取引先コード (partner codes)"] == ("on" if codes else "off")
    assert table["採番の設定 (invoice numbering)"] == "auto (自動採番)"


def test_numbering_refusals_are_typed(make_sandbox):
    box = make_sandbox(iv_auto_numbering=False, use_partner_code=False, iv_limit_per_minute=10000)
    c = box.client()
    manual = FreeeConnector(c, FreeeConnectorConfig(use_partner_code=False, send_invoice_number=True))
    partner = manual.create_partner(_company("X", "株式会社番号"))
    assert partner.partner_code is None  # 取引先コード off: no code sent, none stored
    first = manual.create_invoice(_invoice("renkei:deal:1", partner.erp_id, "A-1"))
    assert first.number == "A-1"
    with pytest.raises(InvoiceNumberTaken):
        manual.create_invoice(_invoice("renkei:deal:2", partner.erp_id, "A-1"))
    auto = FreeeConnector(c, FreeeConnectorConfig(use_partner_code=False, send_invoice_number=False))
    with pytest.raises(CompanySettingError, match=r'mode = "manual"'):
        auto.create_invoice(_invoice("renkei:deal:3", partner.erp_id, "A-2"))
    box.config.iv_auto_numbering = True
    with pytest.raises(CompanySettingError, match=r'mode = "auto"'):
        manual.create_invoice(_invoice("renkei:deal:4", partner.erp_id, "A-3"))
    assert len(c.list_invoices(limit=100)) == 1  # nothing created by a refused request
