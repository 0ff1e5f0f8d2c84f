"""Bad input to the canonical model raises a clear validation error naming the field."""

from datetime import date
from decimal import Decimal

import pytest
from pydantic import ValidationError

from renkei.domain.model import BankDeposit, Company, Deal, EntityKind, Invoice, LineItem, Product, TaxCategory


def field_of(exc: ValidationError) -> tuple:
    """The field an error names: its location, or for a cross-field rule the ``field:`` its message starts with."""
    err = exc.errors()[0]
    if err["loc"]:
        return err["loc"]
    return (err["msg"].removeprefix("Value error, ").split(":", 1)[0],)


def test_valid_company_normalises_identifiers():
    c = Company(name="㈱山田商事", registration_number="7010705000725", corporate_number="７０１０７０５０００７２５",
                address={"postal_code": "１００－０００１"})
    assert c.registration_number == "T7010705000725"
    assert c.corporate_number == "7010705000725"
    assert c.address.postal_code == "100-0001"
    assert c.warnings == []


@pytest.mark.parametrize(
    "kwargs, field",
    [({}, "name"), ({"name": ""}, "name"), ({"name": "   "}, "name"), ({"name": "a" * 10_000_000}, "name"),
     ({"name": "山田\x00商事"}, "name"), ({"name": "山田\u202e商事"}, "name"), ({"name": "山田商事😀"}, "name"),
     ({"name": "x", "phone": "03\n1234"}, "phone"), ({"name": "x", "corporate_number": "123"}, "corporate_number"),
     ({"name": "x", "address": {"postal_code": "12-345"}}, "address")],
)
def test_bad_company_input(kwargs, field):
    with pytest.raises(ValidationError) as exc:
        Company(**kwargs)
    assert field_of(exc.value)[0] == field


def test_registration_number_error_names_the_field():
    with pytest.raises(ValidationError, match="registration_number: registration number check digit"):
        Company(name="x", registration_number="T1000000000001")
    sole = Company(name="山田太郎", entity_kind=EntityKind.SOLE_TRADER, registration_number="T1000000000001")
    assert sole.warnings and "check digit" in sole.warnings[0]


@pytest.mark.parametrize(
    "kwargs, field",
    [({"quantity": -1}, "quantity"), ({"quantity": 0}, "quantity"), ({"quantity": 1.5}, "quantity"),
     ({"unit_price": 100.5}, "unit_price"), ({"unit_price": -100}, "unit_price"), ({"discount": 1.0}, "discount"),
     ({"discount_percent": 120}, "discount_percent"), ({"name": "🍣"}, "name")],
)
def test_bad_line_items(kwargs, field):
    base = {"name": "品目", "quantity": 1, "unit_price": 1000}
    with pytest.raises(ValidationError) as exc:
        LineItem(**{**base, **kwargs})
    assert field_of(exc.value)[0] == field


def test_quantity_zero_is_only_an_amendment():
    ended = LineItem(name="席ライセンス", quantity=0, unit_price=1000, effective_date="2026-12-01")
    assert ended.quantity == 0


def test_line_item_accepts_wire_strings():
    li = LineItem(name="お茶", quantity="2.5", unit_price="300.00", tax_category="reduced_8")
    assert li.quantity == Decimal("2.5") and li.unit_price == 300 and li.tax_category is TaxCategory.REDUCED_8


@pytest.mark.parametrize(
    "kwargs, field",
    [({"amount": 1000.0}, "amount"), ({"currency": "yen"}, "currency"), ({"crm_id": None}, "crm_id"),
     ({"stage": None}, "stage"), ({"unknown": 1}, "unknown")],
)
def test_bad_deals(kwargs, field):
    base = {"crm_id": "1", "name": "案件", "stage": "closedwon"}
    with pytest.raises(ValidationError) as exc:
        Deal(**{**base, **kwargs})
    assert field_of(exc.value)[0] == field


def test_other_entities_refuse_float_money():
    with pytest.raises(ValidationError, match="amount"):
        BankDeposit(erp_id="1", received_on=date(2026, 11, 25), amount=1000.0, payer_name="ｶ)ﾔﾏﾀﾞ")
    with pytest.raises(ValidationError, match="unit_price"):
        Product(code="P1", name="x", unit_price=99.9)
    with pytest.raises(ValidationError, match="total"):
        Invoice(reference="renkei:deal:1", recipient_name="x", issue_date=date(2026, 11, 25), total=1.5)


def test_tax_category_rates():
    assert TaxCategory.STANDARD_10.rate_percent == 10
    assert TaxCategory.REDUCED_8.rate_percent == 8 and TaxCategory.REDUCED_8.reduced
    assert TaxCategory.EXEMPT.rate_percent == 0 and not TaxCategory.EXEMPT.reduced
