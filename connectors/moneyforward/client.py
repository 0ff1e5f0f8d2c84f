"""Thin client for Money Forward クラウド請求書 API v3 on the shared HTTP layer (:mod:`connectors.http`).

Methods take and return MF's own JSON objects (dicts, numbers as :class:`~decimal.Decimal`);
:mod:`connectors.moneyforward.mapping` turns them into the canonical model.

* **Paging** — ``page`` / ``per_page`` (1–100, default 100) with a ``pagination`` object; each
  :class:`~connectors.http.Page` carries ``next_cursor`` = the next page number or ``None``.
* **Limits** — MF throttles per endpoint with 429 and publishes no number for v3; the client paces itself
  (``requests_per_minute``, and 3 billing writes per second, the v1/v2 figure). 429 is retried after
  ``Retry-After``. The plan's monthly document cap answers 402 → :class:`~connectors.http.QuotaExhausted`.
* **Errors** — the spec declares no error body; :func:`parse_mf_error` reads ``{code, message, errors}``
  when present and the status otherwise (400 with field errors → ``ValidationFailed``).
* **Exactly once** — ``PUT`` is idempotent and retried; ``POST`` goes through :meth:`_create_once`: after
  an ambiguous failure (timeout, dropped connection, 5xx) the record is looked up by its natural key
  (billing: our reference tag, else ``document_number``; partner: ``code``; item: ``code``) before sending
  again. The look-ups never depend on today's date.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx

from renkei.connectors.freee.client import FreeeAuthHook
from renkei.connectors.http import (
    ConnectorError,
    ErrorInfo,
    HttpClient,
    HttpConfig,
    Page,
    RateLimited,
    RateLimiter,
    TransientError,
    default_error_parser,
    parse_retry_after,
    register_secret,
)
from renkei.connectors.moneyforward.auth import MoneyForwardAuth, TokenStore, token_url_from

log = logging.getLogger("renkei.connectors.moneyforward")

__all__ = ["MAX_PER_PAGE", "MoneyForwardClient", "MoneyForwardLimits", "parse_mf_error"]

MAX_PER_PAGE = 100
_BILLING_WRITE = ("api", "billing_write")


@dataclass(frozen=True)
class MoneyForwardLimits:
    """Client-side pacing; ``None`` switches a window off."""

    requests_per_minute: int | None = 300
    billing_writes_per_second: float | None = 3.0

    def limiter(self) -> RateLimiter:
        return RateLimiter(self.as_dict())

    def as_dict(self) -> dict[str, tuple[int, float]]:
        limits: dict[str, tuple[int, float]] = {}
        if self.requests_per_minute:
            limits["api"] = (self.requests_per_minute, 60.0)
        if self.billing_writes_per_second:
            n = max(1, int(round(self.billing_writes_per_second)))
            limits["billing_write"] = (n, n / self.billing_writes_per_second)
        return limits


def parse_mf_error(response: httpx.Response) -> ErrorInfo:
    """MF's error answers → :class:`ErrorInfo`.

    Body ``{"code", "message", "errors": {field: [messages]}}`` (as integrators model it; the spec has
    none) or the authorization server's ``{"error", "error_description"}``; anything else is kept as
    text. ``errors`` on a 400 → category ``validation``; 402 (plan's document cap) → quota exhausted;
    429 → ``Retry-After``."""
    try:
        body: Any = json.loads(response.content) if response.content else None
    except (ValueError, UnicodeDecodeError):
        body = None
    if not isinstance(body, dict):
        info = default_error_parser(response)
    else:
        message = str(body.get("message") or body.get("error_description") or body.get("error") or "")
        errors = body.get("errors")
        if isinstance(errors, dict) and errors:
            detail = "; ".join(f"{field}{' '.join(map(str, msgs)) if isinstance(msgs, list) else msgs}"
                               for field, msgs in errors.items())
            message = f"{message} ({detail})" if message else detail
        info = ErrorInfo(message=message or response.reason_phrase, details=body,
                         code=str(body.get("code") or body.get("error") or "") or None,
                         category="validation" if isinstance(errors, dict) and errors and response.status_code == 400
                         else None)
    info.correlation_id = response.headers.get("x-request-id") or info.correlation_id
    if response.status_code == 402:
        info.quota_exhausted = True
        info.category = "document_cap"
    if response.status_code == 429:
        info.retry_after = parse_retry_after(response.headers.get("retry-after"))
    return info


def _loads(resp: httpx.Response) -> Any:
    if resp.status_code == 204 or not resp.content:
        return None
    return json.loads(resp.content, parse_float=Decimal)


class MoneyForwardClient:
    """クラウド請求書 API v3 for one office (事業者). Thread-safe; share it between workers.

    ``base_url`` is the API root including ``/api/v3``; ``auth_url`` the authorization server (or the full
    token URL). Give ``token_store`` for production; tests may pass a ready :class:`MoneyForwardAuth`.
    """

    def __init__(
        self,
        *,
        base_url: str = "https://invoice.moneyforward.com/api/v3",
        auth_url: str = "https://api.biz.moneyforward.com",
        client_id: str | None = None,
        client_secret: str | None = None,
        token_store: TokenStore | None = None,
        initial_refresh_token: str | None = None,
        auth: MoneyForwardAuth | None = None,
        limits: MoneyForwardLimits = MoneyForwardLimits(),
        timeout: float = 30.0,
        max_attempts: int = 5,
        backoff_initial: float = 0.5,
        retry_after_max: float = 120.0,
        response_hooks: Sequence[Callable[[httpx.Response], None]] = (),
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        refresh_margin_s: float = 300.0,
        limiter_factory: Callable[[dict[str, tuple]], Any] | None = None,
    ):
        if auth is None:
            if token_store is None or client_id is None or client_secret is None:
                raise ValueError("give auth=MoneyForwardAuth(...) or client_id, client_secret and token_store")
            auth = MoneyForwardAuth(client_id=client_id, client_secret=client_secret, store=token_store,
                                    token_url=token_url_from(auth_url), initial_refresh_token=initial_refresh_token,
                                    timeout_s=timeout, refresh_margin_s=refresh_margin_s)
        register_secret(client_secret)
        register_secret(initial_refresh_token)
        self.auth = auth
        self.limits = limits
        self.max_attempts = max_attempts
        self._sleep = sleep
        self._backoff_initial = backoff_initial
        self._retry_after_max = retry_after_max
        self.limiter = limiter_factory(limits.as_dict()) if limiter_factory else limits.limiter()
        self.http = HttpClient(HttpConfig(
            base_url=base_url.rstrip("/"), auth=FreeeAuthHook(auth), timeout=timeout, max_attempts=max_attempts,
            backoff_initial=backoff_initial, retry_after_max=retry_after_max, error_parser=parse_mf_error,
            rate_limiter=self.limiter, default_buckets=("api",),
            response_hooks=tuple(response_hooks), transport=transport, sleep=sleep, system="moneyforward"))

    @classmethod
    def from_settings(cls, settings: Any, *, token_store: TokenStore, **kw: Any) -> MoneyForwardClient:
        """From :class:`~connectors.moneyforward.settings.MoneyForwardSettings`."""
        secret = settings.client_secret.get_secret_value() if settings.client_secret else None
        refresh = settings.refresh_token.get_secret_value() if settings.refresh_token else None
        if not (settings.client_id and secret):
            raise ValueError("RENKEI_MONEYFORWARD_CLIENT_ID and RENKEI_MONEYFORWARD_CLIENT_SECRET are required")
        kw.setdefault("limits", MoneyForwardLimits(settings.requests_per_minute, settings.billing_writes_per_second))
        return cls(base_url=settings.base_url, auth_url=settings.auth_url, client_id=settings.client_id,
                   client_secret=secret, token_store=token_store, initial_refresh_token=refresh, **kw)

    def close(self) -> None:
        self.http.close()
        self.auth.close()

    def __enter__(self) -> MoneyForwardClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"MoneyForwardClient(base_url={self.http.config.base_url!r})"

    @property
    def stats(self) -> Any:
        return self.http.stats

    # -- plumbing -----------------------------------------------------------------------------------

    def _buckets(self, write_billing: bool) -> tuple[str, ...]:
        return _BILLING_WRITE if write_billing else ("api",)  # a bucket without a limit costs nothing

    def _request(self, method: str, path: str, *, params: Mapping[str, Any] | None = None, json_body: Any = None,
                 retry: bool = True, billing_write: bool = False) -> Any:
        resp = self.http.request(method, path, params=params, json=json_body, retry=retry,
                                 buckets=self._buckets(billing_write))
        return _loads(resp)

    def _backoff(self, attempt: int, exc: ConnectorError) -> float:
        wait = random.uniform(0, min(30.0, self._backoff_initial * 2 ** (attempt - 1)))
        if exc.retry_after is not None:
            wait = max(wait, min(exc.retry_after, self._retry_after_max))
        return wait

    def _create_once(self, path: str, body: Any, find: Callable[[], Any] | None, *, billing_write: bool = False) -> Any:
        """POST exactly once: on an ambiguous failure look the record up before sending again.

        ``RateLimited`` proves the request was not processed → plain retry. Timeouts, dropped connections
        and 5xx may have created it → ``find()`` first (``None`` = not there). Without ``find`` an
        ambiguous failure is raised to the caller."""
        for attempt in range(1, self.max_attempts + 1):
            try:
                return self._request("POST", path, json_body=body, retry=False, billing_write=billing_write)
            except TransientError as exc:
                if attempt >= self.max_attempts:
                    raise
                ambiguous = not isinstance(exc, RateLimited)
                if ambiguous and find is None:
                    raise
                self._sleep(self._backoff(attempt, exc))
                if ambiguous:
                    found = find()  # type: ignore[misc]
                    if found is not None:
                        log.info("Money Forward POST %s: found the record after %s; not re-sending", path,
                                 type(exc).__name__)
                        return found
        raise AssertionError("unreachable")  # pragma: no cover

    def iter_pages(self, path: str, *, per_page: int = MAX_PER_PAGE, page: int = 1,
                   **params: Any) -> Iterator[Page[dict]]:
        """Every page of a list endpoint from ``page`` on; ``next_cursor`` = the next page number or None."""
        per_page = max(1, min(MAX_PER_PAGE, per_page))
        while True:
            data = self._request("GET", path, params={**params, "page": page, "per_page": per_page}) or {}
            items = list(data.get("data") or [])
            pg = data.get("pagination") or {}
            total_pages = int(pg.get("total_pages") or 0)
            done = page >= total_pages or not items
            yield Page(items=items, next_cursor=None if done else page + 1,
                       total=int(pg["total_count"]) if pg.get("total_count") is not None else None)
            if done:
                return
            page += 1

    def _all(self, path: str, **params: Any) -> Iterator[dict]:
        for pg in self.iter_pages(path, **params):
            yield from pg.items

    # -- office -------------------------------------------------------------------------------------

    def get_office(self) -> dict:
        return self._request("GET", "/office")

    # -- partners (取引先) and departments (部門) ------------------------------------------------------

    def iter_partner_pages(self, *, per_page: int = MAX_PER_PAGE, page: int = 1, **filters: Any) -> Iterator[Page[dict]]:
        """``GET /partners`` (filters ``name`` partial, ``code``, ``name_kana``, ``partner_pic``, ``office_pic``)."""
        return self.iter_pages("/partners", per_page=per_page, page=page, **filters)

    def get_partner(self, partner_id: str) -> dict:
        return self._request("GET", f"/partners/{partner_id}")

    @staticmethod
    def _filter_value(value: str) -> str:
        """MF's list filters split on commas: search by the longest comma-free part, compare exactly after."""
        return max(value.split(","), key=len)

    def find_partner_by_code(self, code: str) -> dict | None:
        for p in self._all("/partners", code=self._filter_value(code)):
            if p.get("code") == code:
                return p
        return None

    def find_partner_by_name(self, name: str) -> dict | None:
        """Exact name (the ``name`` filter matches partially)."""
        for p in self._all("/partners", name=self._filter_value(name)):
            if p.get("name") == name:
                return p
        return None

    def create_partner(self, partner: Mapping[str, Any]) -> dict:
        """``POST /partners`` (with ``departments``). After a doubt: looked up by ``code`` (else exact name)."""
        body = dict(partner)
        code, name = body.get("code"), body["name"]
        find = (lambda: self.find_partner_by_code(code)) if code else (lambda: self.find_partner_by_name(name))
        return self._create_once("/partners", body, find)

    def update_partner(self, partner_id: str, partner: Mapping[str, Any]) -> dict:
        """``PUT /partners/{id}`` (departments are not touched: use the department calls)."""
        body = {k: v for k, v in partner.items() if k != "departments"}
        return self._request("PUT", f"/partners/{partner_id}", json_body=body)

    def list_departments(self, partner_id: str) -> list[dict]:
        """``GET /partners/{id}/departments`` (the document declares no paging parameters here)."""
        return list((self._request("GET", f"/partners/{partner_id}/departments") or {}).get("data") or [])

    def create_department(self, partner_id: str, department: Mapping[str, Any]) -> dict:
        """``POST /partners/{id}/departments``; after a doubt a department that was not there before and
        carries the same fields counts as ours."""
        before = {d["id"] for d in self.list_departments(partner_id)}
        body = dict(department)

        def find() -> dict | None:
            for d in self.list_departments(partner_id):
                if d["id"] not in before and all(d.get(k) == v for k, v in body.items()):
                    return d
            return None

        return self._create_once(f"/partners/{partner_id}/departments", body, find)

    def update_department(self, partner_id: str, department_id: str, department: Mapping[str, Any]) -> dict:
        return self._request("PUT", f"/partners/{partner_id}/departments/{department_id}", json_body=dict(department))

    # -- items (品目) ---------------------------------------------------------------------------------

    def iter_item_pages(self, *, per_page: int = MAX_PER_PAGE, page: int = 1, **filters: Any) -> Iterator[Page[dict]]:
        """``GET /items`` (filters ``name`` partial, ``code``; comma-separated values)."""
        return self.iter_pages("/items", per_page=per_page, page=page, **filters)

    def get_item(self, item_id: str) -> dict:
        return self._request("GET", f"/items/{item_id}")

    def find_item_by_code(self, code: str) -> dict | None:
        for it in self._all("/items", code=self._filter_value(code)):
            if it.get("code") == code:
                return it
        return None

    def create_item(self, item: Mapping[str, Any]) -> dict:
        body = dict(item)
        code = body.get("code")
        return self._create_once("/items", body, (lambda: self.find_item_by_code(code)) if code else None)

    def update_item(self, item_id: str, item: Mapping[str, Any]) -> dict:
        return self._request("PUT", f"/items/{item_id}", json_body=dict(item))

    # -- billings (請求書) ----------------------------------------------------------------------------

    def iter_billing_pages(self, *, per_page: int = MAX_PER_PAGE, page: int = 1, **filters: Any) -> Iterator[Page[dict]]:
        """``GET /billings``: ``partner_id``, ``document_number``, ``status``, ``partner_name``, ``tags``,
        ``q`` (overrides the specific filters), ``range_key`` + ``from`` / ``to`` (dates)."""
        clean = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in filters.items() if v is not None}
        return self.iter_pages("/billings", per_page=per_page, page=page, **clean)

    def get_billing(self, billing_id: str) -> dict:
        return self._request("GET", f"/billings/{billing_id}")

    def find_billings(self, **filters: Any) -> list[dict]:
        return [b for pg in self.iter_billing_pages(**filters) for b in pg.items]

    def find_billing_by_reference(self, reference: str, *, number: str | None = None,
                                  partner_id: str | None = None) -> dict | None:
        """The billing whose reference (``memo`` first line, also a tag) is ``reference``: by tag first,
        then by ``document_number`` when the number is known, then every billing of the partner. No date."""
        from renkei.connectors.moneyforward.mapping import billing_reference

        searches: list[dict[str, Any]] = [{"tags": reference}]
        if number:
            searches.append({"document_number": number})
        if partner_id:
            searches.append({"partner_id": partner_id})
        for filters in searches:
            for pg in self.iter_billing_pages(**filters):
                for b in pg.items:
                    if billing_reference(b) == reference:
                        return b
        return None

    def create_billing(self, billing: Mapping[str, Any]) -> dict:
        """``POST /invoice_template_billings`` (the only creation endpoint of v3.6.0). Exactly once: after a
        doubt the billing is looked up by our reference (tag / memo) or its ``billing_number``."""
        from renkei.connectors.moneyforward.mapping import billing_reference

        body = dict(billing)
        ref = billing_reference(body)
        number = body.get("billing_number")
        find = None
        if ref or number:
            def find() -> Any:
                if ref:
                    return self.find_billing_by_reference(ref, number=number)
                hits = self.find_billings(document_number=number)
                return hits[0] if hits else None
        return self._create_once("/invoice_template_billings", body, find, billing_write=True)

    def update_billing(self, billing_id: str, billing: Mapping[str, Any]) -> dict:
        return self._request("PUT", f"/billings/{billing_id}", json_body=dict(billing), billing_write=True)

    def delete_billing(self, billing_id: str) -> None:
        self._request("DELETE", f"/billings/{billing_id}", billing_write=True)

    def set_payment_status(self, billing_id: str, status: str) -> dict:
        """``PUT /billings/{id}/payment_status`` with ``"0"`` 未設定, ``"1"`` 未入金 or ``"2"`` 入金済み (idempotent)."""
        if status not in ("0", "1", "2"):
            raise ValueError("payment_status is '0' (未設定), '1' (未入金) or '2' (入金済み)")
        return self._request("PUT", f"/billings/{billing_id}/payment_status", json_body={"payment_status": status},
                             billing_write=True)

    def download_pdf(self, billing_id: str) -> bytes:
        """``GET /billings/{id}.pdf`` with the Bearer token."""
        return self.http.request("GET", f"/billings/{billing_id}.pdf", headers={"Accept": "application/pdf"}).content
