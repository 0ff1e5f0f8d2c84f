"""Static HubSpot metadata the sandbox serves: object types, standard properties, association types,
default property sets and searchable properties.

Sources: ``/work/shared/reference/hubspot-api.md`` §2-§6 (object type ids, default properties,
association type ids, pipelines).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ObjectType:
    name: str  # plural API name: "companies"
    type_id: str  # "0-2"
    singular: str  # "company" (association type names, error messages)
    modified_property: str  # "hs_lastmodifieddate" (contacts: "lastmodifieddate")
    default_properties: tuple[str, ...]
    searchable: tuple[str, ...]  # properties searched by the free-text ``query``
    default_group: str
    mergeable: bool = False


OBJECT_TYPES: dict[str, ObjectType] = {
    o.name: o
    for o in (
        ObjectType(
            "contacts", "0-1", "contact", "lastmodifieddate",
            ("firstname", "lastname", "email", "lastmodifieddate", "hs_object_id", "createdate"),
            ("firstname", "lastname", "email", "phone", "company"), "contactinformation", mergeable=True,
        ),
        ObjectType(
            "companies", "0-2", "company", "hs_lastmodifieddate",
            ("name", "domain", "createdate", "hs_lastmodifieddate", "hs_object_id"),
            ("name", "domain", "website", "phone"), "companyinformation", mergeable=True,
        ),
        ObjectType(
            "deals", "0-3", "deal", "hs_lastmodifieddate",
            ("dealname", "amount", "closedate", "pipeline", "dealstage", "createdate", "hs_lastmodifieddate", "hs_object_id"),
            ("dealname", "description", "dealtype"), "dealinformation", mergeable=True,
        ),
        ObjectType(
            "products", "0-7", "product", "hs_lastmodifieddate",
            ("name", "description", "price", "createdate", "hs_lastmodifieddate", "hs_object_id"),
            ("name", "description", "hs_sku"), "productinformation",
        ),
        ObjectType(
            "line_items", "0-8", "line_item", "hs_lastmodifieddate",
            ("quantity", "amount", "price", "createdate", "hs_lastmodifieddate", "hs_object_id"),
            ("name", "description", "hs_sku"), "lineiteminformation",
        ),
    )
}

_ALIASES: dict[str, str] = {}
for _o in OBJECT_TYPES.values():
    _ALIASES[_o.name] = _o.name
    _ALIASES[_o.type_id] = _o.name
    _ALIASES[_o.singular] = _o.name
_ALIASES.update({"line_item": "line_items", "lineitems": "line_items", "lineitem": "line_items", "line items": "line_items"})


def resolve_object_type(name: str) -> ObjectType | None:
    """``companies`` / ``company`` / ``0-2`` → the object type (None if unknown)."""
    key = _ALIASES.get(name.strip().lower())
    return OBJECT_TYPES.get(key) if key else None


# --------------------------------------------------------------------------------------------------
# property definitions
# --------------------------------------------------------------------------------------------------

PROPERTY_TYPES = ("bool", "date", "datetime", "enumeration", "number", "phone_number", "string")
FIELD_TYPES = (
    "booleancheckbox", "calculation_equation", "checkbox", "date", "file", "html", "number",
    "phonenumber", "radio", "select", "text", "textarea",
)


@dataclass
class PropertyDef:
    """One property definition (``GET /crm/v3/properties/{objectType}`` item)."""

    name: str
    label: str
    type: str = "string"
    field_type: str = "text"
    group_name: str = ""
    description: str = ""
    options: list[dict[str, Any]] = field(default_factory=list)
    display_order: int = -1
    has_unique_value: bool = False
    hidden: bool = False
    form_field: bool = False
    calculated: bool = False
    read_only_value: bool = False
    hubspot_defined: bool = True
    created_ms: int = 0
    updated_ms: int = 0
    archived: bool = False

    def option_values(self) -> list[str]:
        return [str(o["value"]) for o in self.options]


def _p(name: str, label: str, type_: str = "string", field_type: str | None = None, **kw: Any) -> PropertyDef:
    ft = field_type or {
        "string": "text", "number": "number", "datetime": "date", "date": "date", "bool": "booleancheckbox",
        "enumeration": "select", "phone_number": "phonenumber",
    }[type_]
    return PropertyDef(name=name, label=label, type=type_, field_type=ft, **kw)


def _opts(*values: str | tuple[str, str]) -> list[dict[str, Any]]:
    out = []
    for i, v in enumerate(values):
        value, label = (v, v) if isinstance(v, str) else v
        out.append({"label": label, "value": value, "displayOrder": i, "hidden": False, "description": ""})
    return out


_BOOL_OPTS = _opts(("true", "Yes"), ("false", "No"))
_LIFECYCLE = _opts("subscriber", "lead", "marketingqualifiedlead", "salesqualifiedlead", "opportunity", "customer", "evangelist", "other")
_FREQUENCIES = _opts("weekly", "biweekly", "monthly", "quarterly", "per_six_months", "annually", "per_two_years",
                     "per_three_years", "per_four_years", "per_five_years")


def _common(obj: ObjectType) -> list[PropertyDef]:
    g = obj.default_group
    props = [
        _p("hs_object_id", "Record ID", "number", group_name=g, read_only_value=True, has_unique_value=True),
        _p("createdate", "Create Date", "datetime", group_name=g),
        _p(obj.modified_property, "Last Modified Date", "datetime", group_name=g, read_only_value=True),
        _p("hubspot_owner_id", "Owner", "enumeration", group_name=g),
    ]
    if obj.mergeable:
        props.append(_p("hs_merged_object_ids", "Merged Record IDs", "enumeration", "checkbox", group_name=g,
                        read_only_value=True, calculated=True))
    return props


def standard_properties() -> dict[str, dict[str, PropertyDef]]:
    """Fresh copy of the HubSpot-defined properties per object type."""
    c, k, d, pr, li = (OBJECT_TYPES[n] for n in ("companies", "contacts", "deals", "products", "line_items"))
    defs: dict[str, list[PropertyDef]] = {
        "companies": _common(c) + [
            _p("name", "Company name", group_name=c.default_group),
            _p("domain", "Company Domain Name", group_name=c.default_group),
            _p("website", "Website URL", group_name=c.default_group),
            _p("phone", "Phone Number", "phone_number", group_name=c.default_group),
            _p("address", "Street Address", group_name=c.default_group),
            _p("address2", "Street Address 2", group_name=c.default_group),
            _p("city", "City", group_name=c.default_group),
            _p("state", "State/Region", group_name=c.default_group),
            _p("zip", "Postal Code", group_name=c.default_group),
            _p("country", "Country/Region", group_name=c.default_group),
            _p("industry", "Industry", group_name=c.default_group),
            _p("numberofemployees", "Number of Employees", "number", group_name=c.default_group),
            _p("annualrevenue", "Annual Revenue", "number", group_name=c.default_group),
            _p("description", "Description", field_type="textarea", group_name=c.default_group),
            _p("lifecyclestage", "Lifecycle Stage", "enumeration", "radio", group_name=c.default_group, options=_LIFECYCLE),
        ],
        "contacts": _common(k) + [
            _p("firstname", "First Name", group_name=k.default_group),
            _p("lastname", "Last Name", group_name=k.default_group),
            _p("email", "Email", group_name=k.default_group, has_unique_value=True),
            _p("phone", "Phone Number", "phone_number", group_name=k.default_group),
            _p("mobilephone", "Mobile Phone Number", "phone_number", group_name=k.default_group),
            _p("jobtitle", "Job Title", group_name=k.default_group),
            _p("company", "Company Name", group_name=k.default_group),
            _p("address", "Street Address", group_name=k.default_group),
            _p("city", "City", group_name=k.default_group),
            _p("state", "State/Region", group_name=k.default_group),
            _p("zip", "Postal Code", group_name=k.default_group),
            _p("lifecyclestage", "Lifecycle Stage", "enumeration", "radio", group_name=k.default_group, options=_LIFECYCLE),
        ],
        "deals": _common(d) + [
            _p("dealname", "Deal Name", group_name=d.default_group),
            _p("amount", "Amount", "number", group_name=d.default_group),
            _p("closedate", "Close Date", "datetime", group_name=d.default_group),
            _p("pipeline", "Pipeline", "enumeration", group_name=d.default_group),
            _p("dealstage", "Deal Stage", "enumeration", "radio", group_name=d.default_group),
            _p("dealtype", "Deal Type", "enumeration", "radio", group_name=d.default_group,
               options=_opts(("newbusiness", "New Business"), ("existingbusiness", "Existing Business"))),
            _p("description", "Deal Description", field_type="textarea", group_name=d.default_group),
            _p("deal_currency_code", "Currency", "enumeration", group_name=d.default_group,
               options=_opts("JPY", "USD", "EUR")),
            _p("hs_deal_stage_probability", "Deal probability", "number", group_name=d.default_group,
               calculated=True, read_only_value=True),
            _p("hs_is_closed", "Is Deal Closed?", "bool", group_name=d.default_group, options=_BOOL_OPTS,
               calculated=True, read_only_value=True),
            _p("hs_is_closed_won", "Is Closed Won", "bool", group_name=d.default_group, options=_BOOL_OPTS,
               calculated=True, read_only_value=True),
        ],
        "products": _common(pr) + [
            _p("name", "Name", group_name=pr.default_group),
            _p("description", "Description", field_type="textarea", group_name=pr.default_group),
            _p("price", "Unit price", "number", group_name=pr.default_group),
            _p("hs_sku", "SKU", group_name=pr.default_group),
            _p("hs_cost_of_goods_sold", "Unit cost", "number", group_name=pr.default_group),
            _p("hs_product_type", "Product type", "enumeration", group_name=pr.default_group,
               options=_opts("inventory", "non_inventory", "service")),
            _p("recurringbillingfrequency", "Billing frequency", "enumeration", group_name=pr.default_group, options=_FREQUENCIES),
            _p("hs_recurring_billing_period", "Term", group_name=pr.default_group),
            _p("hs_pricing_model", "Pricing model", "enumeration", group_name=pr.default_group,
               options=_opts("flat", "volume", "graduated", "stairstep")),
            _p("hs_tier_ranges", "Tier ranges", group_name=pr.default_group),
            _p("hs_tier_prices", "Tier prices", group_name=pr.default_group),
        ],
        "line_items": _common(li) + [
            _p("name", "Name", group_name=li.default_group),
            _p("description", "Description", field_type="textarea", group_name=li.default_group),
            _p("quantity", "Quantity", "number", group_name=li.default_group),
            _p("price", "Unit price", "number", group_name=li.default_group),
            _p("amount", "Net price", "number", group_name=li.default_group, calculated=True, read_only_value=True),
            _p("discount", "Unit discount", "number", group_name=li.default_group),
            _p("hs_discount_percentage", "Discount Percentage", "number", group_name=li.default_group),
            _p("hs_total_discount", "Total discount", "number", group_name=li.default_group, calculated=True,
               read_only_value=True),
            _p("hs_product_id", "Product ID", "number", group_name=li.default_group),
            _p("hs_sku", "SKU", group_name=li.default_group),
            _p("hs_tax_rate_group_id", "Tax rate", group_name=li.default_group),
            _p("hs_line_item_currency_code", "Currency", "enumeration", group_name=li.default_group,
               options=_opts("JPY", "USD", "EUR")),
            _p("recurringbillingfrequency", "Billing frequency", "enumeration", group_name=li.default_group, options=_FREQUENCIES),
            _p("hs_recurring_billing_period", "Term", group_name=li.default_group),
            _p("hs_recurring_billing_start_date", "Billing start date", "date", group_name=li.default_group),
            _p("hs_term_in_months", "Term (months)", "number", group_name=li.default_group),
            _p("hs_position_on_quote", "Position on quote", "number", group_name=li.default_group),
        ],
    }
    out: dict[str, dict[str, PropertyDef]] = {}
    for obj, props in defs.items():
        out[obj] = {}
        for i, p in enumerate(props):
            p.display_order = i
            out[obj][p.name] = p
    return out


def standard_groups() -> dict[str, dict[str, dict[str, Any]]]:
    """Default property groups per object type: ``{obj: {name: {name, label, displayOrder}}}``."""
    labels = {
        "contacts": ("contactinformation", "Contact information"),
        "companies": ("companyinformation", "Company information"),
        "deals": ("dealinformation", "Deal information"),
        "products": ("productinformation", "Product information"),
        "line_items": ("lineiteminformation", "Line item information"),
    }
    return {
        obj: {name: {"name": name, "label": label, "displayOrder": -1, "archived": False}}
        for obj, (name, label) in labels.items()
    }


# --------------------------------------------------------------------------------------------------
# associations
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AssociationType:
    from_type: str
    to_type: str
    type_id: int
    inverse_id: int
    label: str | None  # None = unlabeled (the default type of the pair)
    category: str = "HUBSPOT_DEFINED"


# (from, to, id, inverse id, label); the unlabeled entry of a pair is its default type.
_ASSOC_ROWS: tuple[tuple[str, str, int, int, str | None], ...] = (
    ("deals", "companies", 341, 342, None),
    ("deals", "companies", 5, 6, "Primary"),
    ("companies", "deals", 342, 341, None),
    ("companies", "deals", 6, 5, "Primary"),
    ("deals", "contacts", 3, 4, None),
    ("contacts", "deals", 4, 3, None),
    ("contacts", "companies", 279, 280, None),
    ("contacts", "companies", 1, 2, "Primary"),
    ("companies", "contacts", 280, 279, None),
    ("companies", "contacts", 2, 1, "Primary"),
    ("deals", "line_items", 19, 20, None),
    ("line_items", "deals", 20, 19, None),
)

ASSOCIATION_TYPES: dict[tuple[str, str, int], AssociationType] = {
    (f, t, i): AssociationType(f, t, i, inv, label) for f, t, i, inv, label in _ASSOC_ROWS
}


def association_type(from_type: str, to_type: str, type_id: int) -> AssociationType | None:
    return ASSOCIATION_TYPES.get((from_type, to_type, type_id))


def default_association(from_type: str, to_type: str) -> AssociationType | None:
    """The unlabeled (default) association type between two object types, if the pair is supported."""
    for (f, t, _), a in ASSOCIATION_TYPES.items():
        if f == from_type and t == to_type and a.label is None:
            return a
    return None


def association_types_between(from_type: str, to_type: str) -> list[AssociationType]:
    return [a for (f, t, _), a in ASSOCIATION_TYPES.items() if f == from_type and t == to_type]


def v3_association_type_name(a: AssociationType) -> str:
    """Type name used by v3 inline associations: ``deal_to_company`` (primary) /
    ``deal_to_company_unlabeled``; single-type pairs use the plain name."""
    base = f"{OBJECT_TYPES[a.from_type].singular}_to_{OBJECT_TYPES[a.to_type].singular}"
    if len(association_types_between(a.from_type, a.to_type)) == 1:
        return base
    return base if a.label == "Primary" else f"{base}_unlabeled"
