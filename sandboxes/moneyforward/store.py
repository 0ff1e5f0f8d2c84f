"""State of one Money Forward クラウド請求書 office and the rules of API v3.6.0 (``moneyforward-invoice-api.md``).

Everything is a plain dict shaped as the API answers it, except billings, which are kept as their
inputs and rendered on every read (totals, status labels, formats), so a change of a line or of the
payment status is reflected everywhere at once.

Formats (§9): request dates ``YYYY-MM-DD``; response dates ``YYYY/MM/DD``; timestamps
``2023-03-20 14:56:10 +0900``; money and quantities as decimal strings (``"1000.0"``); ids 22-char
URL-safe strings.
"""

from __future__ import annotations

import calendar
import re
import secrets
import threading
from collections.abc import Iterable
from datetime import date, datetime, timedelta, timezone
from decimal import ROUND_DOWN, ROUND_HALF_UP, ROUND_UP, Decimal, InvalidOperation
from typing import Any

from renkei.sandboxes.common import Clock

from .config import MoneyForwardSandboxConfig
from .errors import bad_request, not_found

__all__ = ["EXCISES", "EXCISE_RATES", "MoneyForwardStore", "PAYMENT_STATUS", "due_date_from", "format_money", "new_id"]

JST = timezone(timedelta(hours=9))

EXCISES = ("untaxable", "non_taxable", "tax_exemption", "five_percent", "eight_percent",
           "eight_percent_as_reduced_tax_rate", "ten_percent")
EXCISE_RATES = {"ten_percent": 10, "eight_percent_as_reduced_tax_rate": 8, "eight_percent": 8, "five_percent": 5,
                "tax_exemption": 0, "non_taxable": 0, "untaxable": 0}
PAYMENT_STATUS = {"0": "未設定", "1": "未入金", "2": "入金済み", "3": "未払い", "4": "振込済み"}
_ROUND = {"round_down": ROUND_DOWN, "round_up": ROUND_UP, "round_off": ROUND_HALF_UP}  # applied to the magnitude
_TEL = re.compile(r"\A(\+|＋)?[0-9０-９\-－ー−]+\s*\Z")
_ZIP = re.compile(r"^\d{3}-?\d{4}$")
_PEPPOL = re.compile(r"\A((0088|0188):[0-9]{13}|0221:T[0-9]{13})\Z")
_MONEY_LIMIT = Decimal("10000000000")
_DUE_MONTHS = {"this_month": 0, "next_month": 1, "two_months_after": 2, "three_months_after": 3,
               "four_months_after": 4, "five_months_after": 5, "six_months_after": 6}
_CONTINGENCY = ("move_to_earlier_day", "keep_as_is", "move_to_later_day")
DEPARTMENT_FIELDS = ("zip", "tel", "prefecture", "address1", "address2", "person_name", "person_title",
                     "person_dept", "office_member_name", "email", "cc_emails", "peppol_id")


def new_id() -> str:
    """22-char URL-safe id like ``95PHKI9_FeSw3coTj673Cg``."""
    return secrets.token_urlsafe(16)


def format_money(value: Decimal | int) -> str:
    """``1000`` → ``"1000.0"``, ``Decimal("1234.10")`` → ``"1234.1"`` (MF's decimal strings)."""
    d = Decimal(value)
    if d == d.to_integral_value():
        return f"{int(d)}.0"
    return format(d.normalize(), "f")


def _date_out(d: date | None) -> str | None:
    return d.strftime("%Y/%m/%d") if d else None


def _round(value: Decimal, mode: str) -> int:
    magnitude = int(abs(value).quantize(Decimal(1), rounding=_ROUND[mode]))
    return -magnitude if value < 0 else magnitude


class _Check:
    """Collects field errors and raises one 400 with all of them."""

    def __init__(self) -> None:
        self.errors: dict[str, list[str]] = {}

    def add(self, field: str, message: str) -> None:
        self.errors.setdefault(field, []).append(message)

    def string(self, body: dict, field: str, *, max_len: int | None = None, min_len: int | None = None,
               pattern: re.Pattern[str] | None = None, required: bool = False, prefix: str = "") -> None:
        name = prefix + field
        if field not in body or body[field] is None:
            if required:
                self.add(name, "を入力してください")
            return
        v = body[field]
        if not isinstance(v, str):
            self.add(name, "は文字列で入力してください")
            return
        if required and not v.strip():
            self.add(name, "を入力してください")
        if max_len is not None and len(v) > max_len:
            self.add(name, f"は{max_len}文字以内で入力してください")
        if min_len is not None and len(v) < min_len:
            self.add(name, f"は{min_len}文字以上で入力してください")
        if pattern is not None and v and not pattern.search(v):
            self.add(name, "の形式が正しくありません")

    def number(self, body: dict, field: str, *, prefix: str = "") -> Decimal | None:
        if field not in body or body[field] is None:
            return None
        v = body[field]
        if isinstance(v, bool) or not isinstance(v, (int, float, Decimal, str)):
            self.add(prefix + field, "は数値で入力してください")
            return None
        try:
            d = Decimal(str(v))
        except InvalidOperation:
            self.add(prefix + field, "は数値で入力してください")
            return None
        if not d.is_finite() or abs(d) > _MONEY_LIMIT:
            self.add(prefix + field, "は-10,000,000,000〜10,000,000,000の範囲で入力してください")
            return None
        return d

    def date(self, body: dict, field: str, *, required: bool = False, prefix: str = "") -> date | None:
        v = body.get(field)
        if v in (None, ""):
            if required:
                self.add(prefix + field, "を入力してください")
            return None
        try:
            return date.fromisoformat(str(v).replace("/", "-"))
        except ValueError:
            self.add(prefix + field, "は日付(YYYY-MM-DD)で入力してください")
            return None

    def enum(self, body: dict, field: str, values: Iterable[str], *, required: bool = False, prefix: str = "") -> None:
        v = body.get(field)
        if v is None:
            if required:
                self.add(prefix + field, "を入力してください")
            return
        if v not in tuple(values):
            self.add(prefix + field, "は一覧にありません")

    def boolean(self, body: dict, field: str, prefix: str = "") -> None:
        if body.get(field) is not None and not isinstance(body[field], bool):
            self.add(prefix + field, "はtrueまたはfalseで入力してください")

    def raise_if_any(self) -> None:
        if self.errors:
            raise bad_request("入力内容に誤りがあります。", self.errors)


def _object(body: Any) -> dict:
    if not isinstance(body, dict):
        raise bad_request("リクエストボディはJSONオブジェクトで指定してください。")
    return body


def _end_of_month(y: int, m: int) -> date:
    return date(y, m, calendar.monthrange(y, m)[1])


def _is_holiday(d: date) -> bool:
    if d.weekday() >= 5:
        return True
    try:
        import jpholiday

        return bool(jpholiday.is_holiday(d))
    except ImportError:  # pragma: no cover
        return False


def due_date_from(setting: dict, billing_date: date) -> date:
    """支払期日 from a partner's ``payment_deadline_setting`` and the billing date."""
    months = _DUE_MONTHS[setting["due_month"]]
    y, m = divmod(billing_date.month - 1 + months, 12)
    year, month = billing_date.year + y, m + 1
    last = _end_of_month(year, month)
    day = last.day if setting["due_date"] == -1 else min(int(setting["due_date"]), last.day)
    due = date(year, month, day)
    step = {"move_to_earlier_day": -1, "move_to_later_day": 1}.get(setting["contingency_day"])
    while step and _is_holiday(due):
        due += timedelta(days=step)
    return due


class MoneyForwardStore:
    """The office's data. Every public method is atomic (one lock)."""

    def __init__(self, config: MoneyForwardSandboxConfig, clock: Clock) -> None:
        self.config = config
        self.clock = clock
        self.lock = threading.RLock()
        now = self.timestamp()
        self.office: dict[str, Any] = {
            "id": new_id(), "name": config.office_name, "zip": "100-0005", "prefecture": "東京都",
            "address1": "千代田区丸の内1-1-1", "address2": "連携ビル5F", "tel": "03-1234-5678", "fax": None,
            "office_type": "法人" if config.office_type == "corporation" else "個人事業主",
            "office_code": "0001", "registration_code": config.registration_code, "created_at": now, "updated_at": now,
        }
        self.member = {"id": new_id(), "name": "連携 太郎"}
        self.partners: dict[str, dict] = {}
        self.items: dict[str, dict] = {}
        self.billings: dict[str, dict] = {}
        self.department_owner: dict[str, str] = {}  # department id -> partner id
        self.sequence = 0  # ${連番}: previous number + 1; deleted numbers are gaps
        self.monthly_sequence: dict[str, int] = {}
        self.partner_sequence: dict[str, int] = {}
        self.partner_monthly_sequence: dict[str, int] = {}
        self.created_per_month: dict[str, int] = {}
        self.bank_feed: list[dict[str, Any]] = []  # クラウド会計's bank lines (seed demo): amount, fee, date, used

    # -- helpers -------------------------------------------------------------------------------------

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock.now_s(), JST)

    def timestamp(self) -> str:
        return self.now().strftime("%Y-%m-%d %H:%M:%S +0900")

    def today(self) -> date:
        return self.now().date()

    @staticmethod
    def _page(rows: list[dict], page: int, per_page: int) -> dict:
        total = len(rows)
        start = (page - 1) * per_page
        return {"data": rows[start:start + per_page],
                "pagination": {"total_count": total, "total_pages": -(-total // per_page), "per_page": per_page,
                               "current_page": page}}

    # -- office --------------------------------------------------------------------------------------

    def update_office(self, body: Any) -> dict:
        body = _object(body)
        chk = _Check()
        for f, n in (("name", 35), ("address1", 35), ("address2", 35)):
            chk.string(body, f, max_len=n)
        chk.string(body, "zip", min_len=7, max_len=8, pattern=_ZIP)
        chk.string(body, "tel", min_len=7, max_len=30, pattern=_TEL)
        chk.string(body, "fax", min_len=7, max_len=30, pattern=_TEL)
        chk.string(body, "prefecture")
        chk.raise_if_any()
        with self.lock:
            for f in ("name", "zip", "prefecture", "address1", "address2", "tel", "fax"):
                if f in body:
                    self.office[f] = body[f]
            self.office["updated_at"] = self.timestamp()
            return dict(self.office)

    def set_registration_code(self, body: Any) -> dict:
        body = _object(body)
        code = body.get("registration_code")
        if not isinstance(code, str) or not re.fullmatch(r"T\d{13}", code):
            raise bad_request("入力内容に誤りがあります。", {"registration_code": ["はT+13桁の数字で入力してください"]})
        with self.lock:
            self.office["registration_code"] = code
            self.office["updated_at"] = self.timestamp()
        return {"registration_code": code}

    def delete_registration_code(self) -> None:
        with self.lock:
            self.office["registration_code"] = None
            self.office["updated_at"] = self.timestamp()

    # -- partners and departments --------------------------------------------------------------------

    def _check_department(self, body: dict, chk: _Check, prefix: str = "") -> None:
        if not any(body.get(f) not in (None, "") for f in DEPARTMENT_FIELDS):
            chk.add(prefix.rstrip(".") or "department", "はいずれかの項目を入力してください")
        chk.string(body, "zip", min_len=7, max_len=8, pattern=_ZIP, prefix=prefix)
        chk.string(body, "tel", min_len=7, max_len=30, pattern=_TEL, prefix=prefix)
        chk.string(body, "prefecture", prefix=prefix)
        for f, n in (("address1", 80), ("address2", 80), ("person_name", 35), ("person_title", 35),
                     ("person_dept", 35), ("office_member_name", 40), ("email", 255), ("cc_emails", 500)):
            chk.string(body, f, max_len=n, prefix=prefix)
        chk.string(body, "peppol_id", pattern=_PEPPOL, prefix=prefix)

    def _new_department(self, body: dict) -> dict:
        now = self.timestamp()
        dept = {"id": new_id(), **{f: body.get(f) for f in DEPARTMENT_FIELDS}, "office_member_id": None,
                "created_at": now, "updated_at": now}
        if dept["office_member_name"]:
            dept["office_member_id"] = self.member["id"]
        return dept

    def _check_partner(self, body: dict, chk: _Check, *, create: bool) -> None:
        chk.string(body, "name", max_len=100, required=create)
        chk.string(body, "code", max_len=30)
        chk.string(body, "name_kana", max_len=350)
        chk.string(body, "name_suffix")
        chk.string(body, "memo", max_len=500)
        pds = body.get("payment_deadline_setting")
        if pds is not None:
            if not isinstance(pds, dict):
                chk.add("payment_deadline_setting", "はオブジェクトで指定してください")
            else:
                p = "payment_deadline_setting."
                chk.enum(pds, "due_month", _DUE_MONTHS, required=True, prefix=p)
                chk.enum(pds, "contingency_day", _CONTINGENCY, required=True, prefix=p)
                dd = pds.get("due_date")
                if dd is None:
                    chk.add(p + "due_date", "を入力してください")
                elif isinstance(dd, bool) or not isinstance(dd, int) or dd == 0 or not -1 <= dd <= 31:
                    chk.add(p + "due_date", "は-1(月末)または1〜31で入力してください")

    def _code_taken(self, code: str | None, own_id: str | None = None) -> bool:
        return bool(code) and any(p["code"] == code and p["id"] != own_id for p in self.partners.values())

    def create_partner(self, body: Any) -> dict:
        body = _object(body)
        chk = _Check()
        self._check_partner(body, chk, create=True)
        depts = body.get("departments") or []
        if not isinstance(depts, list):
            chk.add("departments", "は配列で指定してください")
            depts = []
        if len(depts) > 10:
            chk.add("departments", "は10件以内で指定してください")
        for i, d in enumerate(depts):
            if not isinstance(d, dict):
                chk.add(f"departments[{i}]", "はオブジェクトで指定してください")
            else:
                self._check_department(d, chk, prefix=f"departments[{i}].")
        with self.lock:
            if self._code_taken(body.get("code")):
                chk.add("code", "はすでに使用されています")
            chk.raise_if_any()
            now = self.timestamp()
            partner = {"id": new_id(), "code": body.get("code"), "name": body["name"],
                       "name_kana": body.get("name_kana"), "name_suffix": body.get("name_suffix", "御中"),
                       "memo": body.get("memo"), "created_at": now, "updated_at": now,
                       "departments": [self._new_department(d) for d in depts],
                       "payment_deadline_setting": body.get("payment_deadline_setting")}
            self.partners[partner["id"]] = partner
            for d in partner["departments"]:
                self.department_owner[d["id"]] = partner["id"]
            return _copy(partner)

    def get_partner(self, partner_id: str) -> dict:
        with self.lock:
            p = self.partners.get(partner_id)
            if p is None:
                raise not_found("Partner is not found")
            return _copy(p)

    def update_partner(self, partner_id: str, body: Any) -> dict:
        body = _object(body)
        chk = _Check()
        self._check_partner(body, chk, create=False)
        with self.lock:
            p = self.partners.get(partner_id)
            if p is None:
                raise not_found("Partner is not found")
            if "code" in body and self._code_taken(body.get("code"), partner_id):
                chk.add("code", "はすでに使用されています")
            chk.raise_if_any()
            for f in ("code", "name", "name_kana", "name_suffix", "memo", "payment_deadline_setting"):
                if f in body:
                    p[f] = body[f]
            p["updated_at"] = self.timestamp()
            return _copy(p)

    def delete_partner(self, partner_id: str) -> None:
        with self.lock:
            p = self.partners.get(partner_id)
            if p is None:
                raise not_found("Partner is not found")
            ids = {d["id"] for d in p["departments"]}
            if any(b["department_id"] in ids for b in self.billings.values()):
                raise bad_request("帳票が存在する取引先は削除できません。")
            del self.partners[partner_id]
            for i in ids:
                self.department_owner.pop(i, None)

    def list_partners(self, filters: dict[str, str], page: int, per_page: int) -> dict:
        def values(key: str) -> list[str]:
            return [v for v in (filters.get(key) or "").split(",") if v]

        names, codes, kanas, pics, office_pics = (values(k) for k in ("name", "code", "name_kana", "partner_pic",
                                                                         "office_pic"))
        with self.lock:
            rows = []
            for p in self.partners.values():
                if names and not any(n in p["name"] for n in names):
                    continue
                if codes and p["code"] not in codes:
                    continue
                if kanas and not any(k in (p["name_kana"] or "") for k in kanas):
                    continue
                if pics and not any(x in (d["person_name"] or "") for d in p["departments"] for x in pics):
                    continue
                if office_pics and not any(x in (d["office_member_name"] or "") for d in p["departments"]
                                           for x in office_pics):
                    continue
                rows.append(_copy(p))
            return self._page(rows, page, per_page)

    def _department(self, partner_id: str, department_id: str) -> dict:
        p = self.partners.get(partner_id)
        if p is None:
            raise not_found("Partner is not found")
        for d in p["departments"]:
            if d["id"] == department_id:
                return d
        raise not_found("Department is not found")

    def list_departments(self, partner_id: str, page: int, per_page: int) -> dict:
        with self.lock:
            p = self.partners.get(partner_id)
            if p is None:
                raise not_found("A partner is not found")
            return self._page([dict(d) for d in p["departments"]], page, per_page)

    def get_department(self, partner_id: str, department_id: str) -> dict:
        with self.lock:
            return dict(self._department(partner_id, department_id))

    def create_department(self, partner_id: str, body: Any) -> dict:
        body = _object(body)
        chk = _Check()
        self._check_department(body, chk)
        with self.lock:
            p = self.partners.get(partner_id)
            if p is None:
                raise not_found("Partner is not found")
            chk.raise_if_any()
            dept = self._new_department(body)
            p["departments"].append(dept)
            self.department_owner[dept["id"]] = partner_id
            p["updated_at"] = self.timestamp()
            return dict(dept)

    def update_department(self, partner_id: str, department_id: str, body: Any) -> dict:
        body = _object(body)
        chk = _Check()
        self._check_department(body, chk)
        with self.lock:
            d = self._department(partner_id, department_id)
            chk.raise_if_any()
            for f in DEPARTMENT_FIELDS:
                if f in body:
                    d[f] = body[f]
            if body.get("office_member_name"):
                d["office_member_id"] = self.member["id"]
            d["updated_at"] = self.timestamp()
            return dict(d)

    def delete_department(self, partner_id: str, department_id: str) -> None:
        with self.lock:
            d = self._department(partner_id, department_id)
            if any(b["department_id"] == d["id"] for b in self.billings.values()):
                raise bad_request("帳票が存在する部署は削除できません。")
            self.partners[partner_id]["departments"].remove(d)
            self.department_owner.pop(department_id, None)

    # -- items ---------------------------------------------------------------------------------------

    def _check_item(self, body: dict, chk: _Check, *, create: bool, prefix: str = "", line: bool = False) -> None:
        chk.string(body, "name", min_len=1, max_len=450, required=create and not (line and body.get("item_id")),
                   prefix=prefix)
        if not line:
            chk.string(body, "code", min_len=1, max_len=30, prefix=prefix)
        chk.string(body, "detail", max_len=200, prefix=prefix)
        chk.string(body, "unit", max_len=20, prefix=prefix)
        chk.number(body, "price", prefix=prefix)
        chk.number(body, "quantity", prefix=prefix)
        chk.boolean(body, "is_deduct_withholding_tax", prefix=prefix)
        chk.enum(body, "excise", EXCISES, required=create and not (line and body.get("item_id")), prefix=prefix)
        if line:
            chk.string(body, "delivery_number", max_len=30, prefix=prefix)
            chk.date(body, "delivery_date", prefix=prefix)

    def _withholding(self, body: dict) -> bool | None:
        if self.config.office_type == "corporation":
            return None
        return bool(body.get("is_deduct_withholding_tax") or False)

    def create_item(self, body: Any) -> dict:
        body = _object(body)
        chk = _Check()
        self._check_item(body, chk, create=True)
        with self.lock:
            if body.get("code") and any(i["code"] == body["code"] for i in self.items.values()):
                chk.add("code", "はすでに使用されています")
            chk.raise_if_any()
            now = self.timestamp()
            item = {"id": new_id(), "name": body["name"], "code": body.get("code"), "detail": body.get("detail"),
                    "unit": body.get("unit"), "price": format_money(chk.number(body, "price") or 0),
                    "quantity": format_money(chk.number(body, "quantity") or 1),
                    "is_deduct_withholding_tax": self._withholding(body), "excise": body["excise"],
                    "created_at": now, "updated_at": now}
            self.items[item["id"]] = item
            return dict(item)

    def get_item(self, item_id: str) -> dict:
        with self.lock:
            if item_id not in self.items:
                raise not_found("Item is not found")
            return dict(self.items[item_id])

    def update_item(self, item_id: str, body: Any) -> dict:
        body = _object(body)
        chk = _Check()
        self._check_item(body, chk, create=False)
        with self.lock:
            item = self.items.get(item_id)
            if item is None:
                raise not_found("Item is not found")
            if body.get("code") and any(i["code"] == body["code"] and i["id"] != item_id for i in self.items.values()):
                chk.add("code", "はすでに使用されています")
            chk.raise_if_any()
            for f in ("name", "code", "detail", "unit", "excise"):
                if f in body:
                    item[f] = body[f]
            for f in ("price", "quantity"):
                if body.get(f) is not None:
                    item[f] = format_money(Decimal(str(body[f])))
            if "is_deduct_withholding_tax" in body:
                item["is_deduct_withholding_tax"] = self._withholding(body)
            item["updated_at"] = self.timestamp()
            return dict(item)

    def delete_item(self, item_id: str) -> None:
        with self.lock:
            if self.items.pop(item_id, None) is None:
                raise not_found("Item is not found")

    def list_items(self, filters: dict[str, str], page: int, per_page: int) -> dict:
        """``name`` (partial) and ``code`` filters, each taking comma-separated values."""
        names = [v for v in (filters.get("name") or "").split(",") if v]
        codes = [v for v in (filters.get("code") or "").split(",") if v]
        with self.lock:
            rows = [dict(i) for i in self.items.values()
                    if (not names or any(n in i["name"] for n in names)) and (not codes or i["code"] in codes)]
            return self._page(rows, page, per_page)

    # -- billings ------------------------------------------------------------------------------------

    def _number_taken(self, number: str, own_id: str | None = None) -> bool:
        return any(b["billing_number"] == number and b["id"] != own_id for b in self.billings.values())

    def _auto_number(self, billing_date: date, partner: dict) -> str:
        month = billing_date.strftime("%Y%m")
        pid = partner["id"]
        self.sequence += 1
        self.monthly_sequence[month] = self.monthly_sequence.get(month, 0) + 1
        self.partner_sequence[pid] = self.partner_sequence.get(pid, 0) + 1
        self.partner_monthly_sequence[pid + month] = self.partner_monthly_sequence.get(pid + month, 0) + 1
        out = self.config.numbering_rule
        for var, value in (("${年}", f"{billing_date.year:04d}"), ("${月}", f"{billing_date.month:02d}"),
                           ("${日}", f"{billing_date.day:02d}"), ("${取引先コード}", partner.get("code") or ""),
                           ("${月連番}", str(self.monthly_sequence[month])),
                           ("${取引先月連番}", str(self.partner_monthly_sequence[pid + month])),
                           ("${取引先連番}", str(self.partner_sequence[pid])), ("${連番}", str(self.sequence))):
            out = out.replace(var, value)
        return out[:30]

    def _check_header(self, body: dict, chk: _Check, *, create: bool) -> None:
        chk.string(body, "department_id", required=create)
        chk.string(body, "title", max_len=200)
        chk.string(body, "memo", max_len=450)
        chk.string(body, "payment_condition", max_len=250)
        chk.string(body, "billing_number", max_len=30)
        chk.string(body, "note", max_len=2000)
        chk.string(body, "document_name", max_len=25)
        tags = body.get("tag_names")
        if tags is not None:
            if not isinstance(tags, list) or not all(isinstance(t, str) and len(t) <= 255 for t in tags):
                chk.add("tag_names", "は255文字以内の文字列の配列で指定してください")

    def _line(self, body: dict) -> dict:
        now = self.timestamp()
        master = self.items.get(body.get("item_id") or "")
        price = Decimal(str(body["price"])) if body.get("price") is not None else (
            Decimal(master["price"]) if master else Decimal(0))
        qty = Decimal(str(body["quantity"])) if body.get("quantity") is not None else (
            Decimal(master["quantity"]) if master else Decimal(1))
        return {"id": new_id(), "name": master["name"] if master else body["name"],
                "code": master["code"] if master else None,
                "detail": body.get("detail", master["detail"] if master else None),
                "unit": body.get("unit", master["unit"] if master else None), "price": price, "quantity": qty,
                "is_deduct_withholding_tax": self._withholding(body if "is_deduct_withholding_tax" in body or not master
                                                                else {"is_deduct_withholding_tax":
                                                                      master["is_deduct_withholding_tax"]}),
                "excise": body.get("excise") or (master["excise"] if master else None),
                "delivery_number": body.get("delivery_number"),
                "delivery_date": date.fromisoformat(str(body["delivery_date"]).replace("/", "-"))
                if body.get("delivery_date") else None,
                "created_at": now, "updated_at": now}

    def _check_lines(self, lines: Any, chk: _Check, prefix: str = "items") -> list[dict]:
        if lines is None:
            return []
        if not isinstance(lines, list):
            chk.add(prefix, "は配列で指定してください")
            return []
        out = []
        for i, line in enumerate(lines):
            p = f"{prefix}[{i}]."
            if not isinstance(line, dict):
                chk.add(p.rstrip("."), "はオブジェクトで指定してください")
                continue
            self._check_item(line, chk, create=True, prefix=p, line=True)
            if line.get("item_id") and line["item_id"] not in self.items:
                chk.add(p + "item_id", "が見つかりません")
            out.append(line)
        return out

    def create_billing(self, body: Any) -> dict:
        """``POST /invoice_template_billings`` (the only creation endpoint of v3.6.0)."""
        body = _object(body)
        chk = _Check()
        self._check_header(body, chk, create=True)
        billing_date = chk.date(body, "billing_date", required=True)
        due = chk.date(body, "due_date")
        sales = chk.date(body, "sales_date")
        with self.lock:
            lines = self._check_lines(body.get("items"), chk)
            partner_id = self.department_owner.get(body.get("department_id") or "")
            if body.get("department_id") and partner_id is None:
                chk.add("department_id", "が見つかりません")
            partner = self.partners.get(partner_id or "")
            if partner is not None and billing_date is not None and due is None:
                if partner.get("payment_deadline_setting"):
                    due = due_date_from(partner["payment_deadline_setting"], billing_date)
                else:
                    chk.add("due_date", "を入力してください（取引先に支払期日の設定がありません）")
            number = body.get("billing_number")
            if number in (None, "") and self.config.numbering == "manual":
                chk.add("billing_number", "を入力してください（採番ルールが設定されていません）")
            if number and self.config.unique_billing_numbers and self._number_taken(number):
                chk.add("billing_number", "はすでに使用されています")
            chk.raise_if_any()
            assert billing_date is not None and partner is not None and due is not None
            month = self.today().strftime("%Y%m")
            cap = self.config.monthly_document_cap
            if cap and self.created_per_month.get(month, 0) >= cap:
                raise bad_request(f"今月の帳票作成数の上限（{cap}件）に達しました。プランをご確認ください。",
                                  status=402, code="document_limit_exceeded")
            self.created_per_month[month] = self.created_per_month.get(month, 0) + 1
            if not number:
                number = self._auto_number(billing_date, partner)
            now = self.timestamp()
            billing = {"id": new_id(), "department_id": body["department_id"], "partner_id": partner["id"],
                       "title": body.get("title") or "", "memo": body.get("memo"),
                       "payment_condition": body.get("payment_condition"), "billing_date": billing_date,
                       "due_date": due, "sales_date": sales, "billing_number": number, "note": body.get("note"),
                       "document_name": body.get("document_name") or "請求書",
                       "payment_status": self.config.initial_payment_status, "is_locked": False,
                       "is_downloaded": False, "tag_names": list(body.get("tag_names") or []),
                       "items": [self._line(x) for x in lines], "created_at": now, "updated_at": now,
                       "registration_code": self.office["registration_code"],
                       "office_snapshot": dict(self.office), "seq": self._next_seq(),
                       "config": {"rounding": self.config.rounding,
                                  "rounding_consumption_tax": self.config.rounding_consumption_tax,
                                  "consumption_tax_display_type": self.config.consumption_tax_display_type}}
            self.billings[billing["id"]] = billing
            if self.config.reconcile_bank_feed:
                self._reconcile(billing)
            return self.render(billing)

    def _reconcile(self, billing: dict) -> None:
        """What accounting does in クラウド会計 with the bank feed: a deposit (+ the fee the payer deducted)
        that equals this billing's total — or this and another open billing of the same partner — marks
        them 入金済み."""
        total = int(Decimal(self.totals(billing)["total_price"]))
        open_same_partner = [b for b in self.billings.values() if b["id"] != billing["id"]
                             and b["partner_id"] == billing["partner_id"] and b["payment_status"] in ("0", "1")]
        for line in self.bank_feed:
            if line["used"]:
                continue
            due = line["amount"] + line["fee"]
            paid = [billing] if due == total else next(
                ([billing, other] for other in open_same_partner
                 if total + int(Decimal(self.totals(other)["total_price"])) == due), None)
            if paid:
                line["used"] = True
                for b in paid:
                    b["payment_status"] = "2"
                    b["updated_at"] = self.timestamp()
                return

    def _next_seq(self) -> int:
        return max((b["seq"] for b in self.billings.values()), default=0) + 1

    def _billing(self, billing_id: str) -> dict:
        b = self.billings.get(billing_id)
        if b is None:
            raise not_found("Billing is not found")
        return b

    def get_billing(self, billing_id: str) -> dict:
        with self.lock:
            return self.render(self._billing(billing_id))

    def update_billing(self, billing_id: str, body: Any) -> dict:
        body = _object(body)
        if set(body) == {"billing"} and isinstance(body["billing"], dict):
            body = body["billing"]  # the wrapped form some integrators send; both are accepted
        chk = _Check()
        self._check_header(body, chk, create=False)
        if "title" in body:
            chk.string(body, "title", min_len=1)
        dates = {f: chk.date(body, f) for f in ("billing_date", "due_date", "sales_date") if f in body}
        with self.lock:
            b = self._billing(billing_id)
            if b["is_locked"]:
                raise bad_request("ロックされている請求書は更新できません。")
            if body.get("department_id") and body["department_id"] not in self.department_owner:
                chk.add("department_id", "が見つかりません")
            if body.get("billing_number") and self.config.unique_billing_numbers and self._number_taken(
                    body["billing_number"], billing_id):
                chk.add("billing_number", "はすでに使用されています")
            chk.raise_if_any()
            for f in ("title", "memo", "payment_condition", "billing_number", "note", "document_name", "tag_names"):
                if f in body:
                    b[f] = body[f]
            if body.get("department_id"):
                b["department_id"] = body["department_id"]
                b["partner_id"] = self.department_owner[body["department_id"]]
            b.update({k: v for k, v in dates.items() if v is not None})
            b["updated_at"] = self.timestamp()
            return self.render(b)

    def delete_billing(self, billing_id: str) -> None:
        with self.lock:
            b = self._billing(billing_id)
            if b["is_locked"]:
                raise bad_request("ロックされている請求書は削除できません。")
            del self.billings[billing_id]

    def add_billing_item(self, billing_id: str, body: Any) -> dict:
        body = _object(body)
        chk = _Check()
        with self.lock:
            b = self._billing(billing_id)
            lines = self._check_lines([body], chk, prefix="item")
            chk.raise_if_any()
            line = self._line(lines[0])
            b["items"].append(line)
            b["updated_at"] = self.timestamp()
            return self._render_line(line)

    def get_billing_item(self, billing_id: str, item_id: str) -> dict:
        with self.lock:
            for line in self._billing(billing_id)["items"]:
                if line["id"] == item_id:
                    return self._render_line(line)
            raise not_found("Item is not found")

    def list_billing_items(self, billing_id: str, page: int, per_page: int) -> dict:
        with self.lock:
            return self._page([self._render_line(x) for x in self._billing(billing_id)["items"]], page, per_page)

    def delete_billing_item(self, billing_id: str, item_id: str) -> None:
        with self.lock:
            b = self._billing(billing_id)
            before = len(b["items"])
            b["items"] = [x for x in b["items"] if x["id"] != item_id]
            if len(b["items"]) == before:
                raise not_found("Item is not found")
            b["updated_at"] = self.timestamp()

    def set_payment_status(self, billing_id: str, body: Any) -> dict:
        body = _object(body)
        status = body.get("payment_status")
        with self.lock:
            b = self._billing(billing_id)
            if status not in ("0", "1", "2"):
                raise bad_request("入力内容に誤りがあります。", {"payment_status": ["は一覧にありません"]})
            b["payment_status"] = status
            b["updated_at"] = self.timestamp()
            return self.render(b)

    def set_locked(self, billing_id: str, locked: bool) -> dict:
        with self.lock:
            b = self._billing(billing_id)
            b["is_locked"] = locked
            return self.render(b)

    def list_billings(self, filters: dict[str, str], page: int, per_page: int) -> dict:
        chk = _Check()
        range_key = filters.get("range_key")
        if range_key is not None and range_key not in ("billing_date", "due_date", "sales_date", "created_at",
                                                       "updated_at"):
            chk.add("range_key", "は一覧にありません")
        start = chk.date(filters, "from")
        end = chk.date(filters, "to")
        chk.raise_if_any()

        def values(key: str) -> list[str]:
            return [v for v in (filters.get(key) or "").split(",") if v]

        q = filters.get("q")
        with self.lock:
            rows = []
            for b in sorted(self.billings.values(), key=lambda x: -x["seq"]):
                r = self.render(b)
                if range_key and (start or end):
                    v = b.get(range_key)
                    if isinstance(v, str):  # created_at / updated_at timestamps
                        v = date.fromisoformat(v[:10])
                    if v is None or (start and v < start) or (end and v > end):
                        continue
                if filters.get("partner_id") and b["partner_id"] not in values("partner_id"):
                    continue
                if q:
                    hay = (r["partner_name"], r["title"], r["billing_number"] or "", r["payment_status"],
                           r["memo"] or "", " ".join(r["tag_names"]))
                    if not any(q in h for h in hay):
                        continue
                else:
                    if filters.get("document_number") and b["billing_number"] not in values("document_number"):
                        continue
                    if filters.get("partner_name") and not any(n in r["partner_name"] for n in values("partner_name")):
                        continue
                    if filters.get("tags") and not set(values("tags")) & set(b["tag_names"]):
                        continue
                    if filters.get("status"):
                        labels = {r["payment_status"], "ロック中" if b["is_locked"] else "未ロック"}
                        if not set(values("status")) & labels:
                            continue
                rows.append(r)
            return self._page(rows, page, per_page)

    # -- rendering -----------------------------------------------------------------------------------

    def _render_line(self, line: dict) -> dict:
        out = {k: v for k, v in line.items()}
        out["price"] = format_money(line["price"])
        out["quantity"] = format_money(line["quantity"])
        out["delivery_date"] = _date_out(line["delivery_date"])
        return out

    def totals(self, b: dict) -> dict[str, Any]:
        """Per-category net / tax / gross: line amounts rounded by ``config.rounding``; tax rounded **once
        per rate per billing** by ``config.rounding_consumption_tax``; 外税 adds it, 内税 takes it out."""
        cfg = b["config"]
        sums: dict[str, int] = {}
        withheld = 0
        for line in b["items"]:
            amount = _round(line["price"] * line["quantity"], cfg["rounding"])
            sums[line["excise"]] = sums.get(line["excise"], 0) + amount
            if line.get("is_deduct_withholding_tax"):
                withheld += amount
        out: dict[str, Any] = {}
        net_total = tax_total = gross_total = 0
        for cat in EXCISES:
            s = sums.get(cat, 0)
            r = Decimal(EXCISE_RATES[cat])
            if cfg["consumption_tax_display_type"] == "internal":
                tax = _round(Decimal(s) * r / (100 + r), cfg["rounding_consumption_tax"]) if r else 0
                net, gross = s - tax, s
            else:
                tax = _round(Decimal(s) * r / 100, cfg["rounding_consumption_tax"]) if r else 0
                net, gross = s, s + tax
            out[f"subtotal_of_{cat}_excise"] = format_money(net)
            out[f"excise_price_of_{cat}"] = format_money(tax)
            out[f"subtotal_with_tax_of_{cat}_excise"] = format_money(gross)
            net_total, tax_total, gross_total = net_total + net, tax_total + tax, gross_total + gross
        deduct = 0
        if self.config.office_type == "individual" and withheld:
            base = Decimal(withheld)
            deduct = int((base * Decimal("0.1021")).quantize(Decimal(1), rounding=ROUND_DOWN)) if base <= 1_000_000 \
                else int((Decimal(102100) + (base - 1_000_000) * Decimal("0.2042")).quantize(Decimal(1), ROUND_DOWN))
        out.update(subtotal_price=format_money(net_total), excise_price=format_money(tax_total),
                   total_price=format_money(gross_total - deduct))
        if self.config.office_type == "individual":
            out["deduct_price"] = format_money(deduct)
        return out

    def render(self, b: dict) -> dict:
        partner = self.partners.get(b["partner_id"]) or {}
        dept = next((d for d in partner.get("departments", []) if d["id"] == b["department_id"]), {})
        office = b["office_snapshot"]
        partner_detail = " ".join(x for x in (
            f"〒{dept['zip']}" if dept.get("zip") else "", dept.get("prefecture") or "", dept.get("address1") or "",
            dept.get("address2") or "", dept.get("person_dept") or "",
            f"{dept['person_name']} 様" if dept.get("person_name") else "") if x)
        office_detail = " ".join(x for x in (f"〒{office['zip']}" if office.get("zip") else "",
                                             office.get("prefecture") or "", office.get("address1") or "",
                                             office.get("address2") or "",
                                             f"TEL: {office['tel']}" if office.get("tel") else "") if x)
        out = {
            "id": b["id"], "pdf_url": f"{self.public_url}/api/v3/billings/{b['id']}.pdf",
            "operator_id": self.member["id"], "department_id": b["department_id"], "member_id": self.member["id"],
            "member_name": self.member["name"], "partner_id": b["partner_id"],
            "partner_name": f"{partner.get('name', '')} {partner.get('name_suffix') or ''}".strip(),
            "partner_detail": partner_detail, "office_id": office["id"], "office_name": office["name"],
            "office_detail": office_detail, "title": b["title"], "memo": b["memo"],
            "payment_condition": b["payment_condition"], "billing_date": _date_out(b["billing_date"]),
            "due_date": _date_out(b["due_date"]), "sales_date": _date_out(b["sales_date"]),
            "billing_number": b["billing_number"], "note": b["note"], "document_name": b["document_name"],
            "payment_status": PAYMENT_STATUS[b["payment_status"]], "email_status": "未送信", "posting_status": "未郵送",
            "created_at": b["created_at"], "updated_at": b["updated_at"], "is_downloaded": b["is_downloaded"],
            "is_locked": b["is_locked"], "tag_names": list(b["tag_names"]),
            "items": [self._render_line(x) for x in b["items"]],
        }
        out.update(self.totals(b))
        out.update(registration_code=b["registration_code"], use_invoice_template=True, config=dict(b["config"]))
        return out

    public_url: str = "https://invoice.moneyforward.com"


def _copy(partner: dict) -> dict:
    return {**partner, "departments": [dict(d) for d in partner["departments"]]}

