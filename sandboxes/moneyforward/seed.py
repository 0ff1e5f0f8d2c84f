"""Seeds of the sandbox: ``demo`` (the shared Japanese B2B dataset of :mod:`sandboxes.demo_data` as an MF
office: 取引先 with one 部署 each holding address, person and e-mail; 品目 by code; the demo bank deposits as
クラウド会計's bank feed, reconciled against new billings — see ``reconcile_bank_feed``) or ``none``."""

from __future__ import annotations

from renkei.sandboxes.demo_data import BANK_DEPOSITS, FREEE_ITEMS, FREEE_PARTNERS, PREFECTURES

from .store import MoneyForwardStore

__all__ = ["seed_store"]

_DUE_MONTH = {0: "this_month", 1: "next_month", 2: "two_months_after", 3: "three_months_after"}
_EXCISE = {"standard_10": "ten_percent", "reduced_8": "eight_percent_as_reduced_tax_rate"}


def seed_store(store: MoneyForwardStore) -> None:
    if store.config.seed == "none":
        return
    for p in FREEE_PARTNERS:
        dept = {k: v for k, v in {
            "zip": p.zipcode, "tel": p.phone,
            "prefecture": PREFECTURES[p.prefecture_code] if p.prefecture_code is not None else None,
            "address1": p.street_name1, "address2": p.street_name2, "person_name": p.contact_name,
            "person_dept": "経理部" if p.contact_name else None, "email": p.email,
            "office_member_name": "連携 太郎",
        }.items() if v}
        terms = p.payment_terms
        store.create_partner({
            "name": p.name, "code": p.code, "name_kana": p.name_kana, "name_suffix": "御中" if p.org_code == 1 else "様",
            "departments": [dept],
            "payment_deadline_setting": {"due_month": _DUE_MONTH.get(terms.additional_months, "next_month"),
                                         "due_date": -1 if terms.fixed_day >= 31 else terms.fixed_day,
                                         "contingency_day": "move_to_later_day"},
        })
    # the bank feed クラウド会計 sees (not readable through the invoice API): the demo deposits
    store.bank_feed = [{"key": d.key, "date": d.date, "amount": d.amount, "fee": d.fee, "used": False}
                       for d in BANK_DEPOSITS if d.deals]
    for it in FREEE_ITEMS:
        store.create_item({"name": it.name, "code": it.code, "price": it.unit_price, "quantity": 1, "unit": "式",
                           "excise": _EXCISE[it.tax_category]})
