"""What every registered connector is: built from settings by its registry factory, satisfying its side's
protocol, with named capabilities, and closable. (Use one of ``crm``/``crm_empty`` per test: each is
parametrised over the registry, two in one test would cross the connectors.)"""

from __future__ import annotations

from renkei.connectors.base import CRMCapabilities, CRMConnector, ERPCapabilities, ERPConnector


def test_crm_satisfies_the_contract(crm):
    assert isinstance(crm, CRMConnector)
    assert isinstance(crm.capabilities, CRMCapabilities) and crm.capabilities.name == crm.served.entry.name


def test_an_empty_crm_account_is_prepared_idempotently(crm_empty):
    assert isinstance(crm_empty, CRMConnector)
    crm_empty.prepare()  # an empty account gets what Renkei writes; twice is harmless
    crm_empty.prepare()


def test_erp_satisfies_the_contract(erp):
    assert isinstance(erp, ERPConnector)
    assert isinstance(erp.capabilities, ERPCapabilities) and erp.capabilities.name == erp.served.entry.name


def test_an_empty_erp_account_satisfies_the_contract(erp_empty):
    assert isinstance(erp_empty, ERPConnector)
