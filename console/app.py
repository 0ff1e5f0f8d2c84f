"""The console's FastAPI app: GET-only pages rendered on the server from the latest reporting snapshot.

* Read-only: every route is a GET; any other method is answered 405 before a route runs.
* Every value goes through Jinja2 with autoescape on; chart data is embedded as JSON in
  ``<script type="application/json">`` (``tojson`` escapes ``<``, ``>``, ``&``, ``'``) and drawn by the
  package's own ``static/console.js`` with the vendored Chart.js. A Content-Security-Policy allows scripts
  from this origin only, so a name from the CRM can never run as script even if it got past the escaping.
* Figures come from ``renkei.store.reporting.ReportStore`` (the snapshot the reporting flow wrote); the
  page does no arithmetic on money beyond sums of integer yen for table totals.
"""

from __future__ import annotations

import math
import os
import threading
import time
from contextlib import asynccontextmanager
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Callable

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from renkei.console.format import FILTERS
from renkei.domain.dates import stored_in_tokyo

HERE = Path(__file__).resolve().parent
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
PAGE_SIZE = 100
APPROVALS_TTL_S = 15.0  # a list of pending approvals this old is read again (in the background)
APPROVALS_WAIT_S = 20.0  # the first page after start waits this long for the first list

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
SECURITY_HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
                    "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY", "Cache-Control": "no-store"}

NAV = (("/", "概要", "Overview"), ("/aging", "売掛金年齢", "Aging"), ("/customers", "顧客別収益", "Profitability"),
       ("/drift", "データ差異", "Drift"), ("/queues", "レビュー・承認", "Queues"), ("/trace", "取引追跡", "Trace"),
       ("/search", "検索", "Search"))

# customer profitability: sortable columns (query ?sort=<key>&dir=asc|desc), label ja / en
CUSTOMER_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("name", "顧客", "Customer"), ("sales", "売上（税抜）", "Sales"), ("cost", "原価", "Cost"),
    ("gross_margin", "粗利", "Gross margin"), ("margin_rate", "粗利率", "Margin %"),
    ("collected_to_date", "回収済", "Collected"), ("ltv_projection", "LTV予測", "LTV"),
    ("open_receivable", "売掛残", "Receivable"),
)
_CUSTOMER_SORT_KEY: dict[str, Callable[[Any], Any]] = {
    "name": lambda c: (c.name_masked or "", c.customer_key),
    "sales": lambda c: c.sales, "cost": lambda c: c.cost, "gross_margin": lambda c: c.gross_margin,
    "margin_rate": lambda c: c.margin_rate, "collected_to_date": lambda c: c.collected_to_date,
    "ltv_projection": lambda c: c.ltv_projection, "open_receivable": lambda c: c.open_receivable,
}
# drift items whose crm_id is a deal (a trace link); company_field's is a company
_DEAL_DRIFT = {"deal_amount", "payment_status", "won_no_invoice", "invoice_no_deal"}


class BadQuery(ValueError):
    """A query parameter the page cannot use (shown on the page, HTTP 400)."""


def templates() -> Environment:
    env = Environment(loader=FileSystemLoader(str(HERE / "templates")), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(FILTERS)
    return env


class SnapshotCache:
    """The latest snapshot, read again only when the reporting flow has written a newer one (one cheap
    ``max(id)`` query per page). Its figures are read without the drift items (a long list only the drift
    page shows); :meth:`drift_items` reads those once per snapshot, when that page first asks."""

    def __init__(self, reports: Any) -> None:
        self.reports = reports
        self._lock = threading.Lock()
        self._id: int | None = None
        self._snapshot: Any = None
        self._items_id: int | None = None
        self._items: tuple[Any, ...] = ()

    def _latest(self, *, drift_items: bool) -> Any:
        try:
            return self.reports.latest_snapshot(drift_items=drift_items)
        except TypeError:  # a store API without the option: everything
            return self.reports.latest_snapshot()

    def get(self) -> Any:
        sid = self.reports.latest_snapshot_id()
        if sid is None:
            return None
        with self._lock:
            if sid != self._id:
                self._snapshot, self._id = self._latest(drift_items=False), sid
            return self._snapshot

    def drift_items(self) -> tuple[Any, ...]:
        sid = self.reports.latest_snapshot_id()
        if sid is None:
            return ()
        with self._lock:
            if sid != self._items_id:
                snap = self._latest(drift_items=True)
                self._items, self._items_id = (tuple(snap.drift_items) if snap else ()), sid
            return self._items


def prefect_ui_base() -> str | None:
    """The Prefect UI's address when one is configured (``PREFECT_UI_URL`` / ``PREFECT_API_URL``), else None."""
    from prefect.settings import get_current_settings

    if get_current_settings().ui_url or os.environ.get("PREFECT_API_URL"):
        from renkei.cli import ui_link

        return ui_link("").removesuffix("/runs/flow-run/")
    return None


def _int_param(q: dict[str, str], name: str) -> int | None:
    raw = (q.get(name) or "").replace(",", "").replace("¥", "").replace("￥", "").strip()
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise BadQuery(f"{name}: 整数の円で入力してください / whole yen expected ({raw!r})") from None


def _date_param(q: dict[str, str], name: str) -> date | None:
    raw = (q.get(name) or "").strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise BadQuery(f"{name}: 日付は YYYY-MM-DD / date expected as YYYY-MM-DD ({raw!r})") from None


def _page(q: dict[str, str], total: int) -> tuple[int, int]:
    pages = max(1, math.ceil(total / PAGE_SIZE))
    try:
        page = int(q.get("page") or 1)
    except ValueError:
        page = 1
    return min(max(page, 1), pages), pages


def create_app(store: Any = None, *, database_url: str | None = None,
               approvals: Callable[[], list[dict]] | None = None) -> FastAPI:
    """The console over ``store`` (a :class:`~renkei.store.repo.Store`; default: the configured state store,
    or ``database_url``). ``approvals`` lists the pending approval runs (default: the Prefect API's, when
    ``PREFECT_API_URL`` is set)."""
    from renkei.store.reporting import ReportStore

    if store is None:
        from renkei.settings import get_settings
        from renkei.store.repo import Store

        store = Store.open(database_url or get_settings().database_url)
    reports = ReportStore(store)
    cache = SnapshotCache(reports)
    pending = ApprovalsCache(approvals)
    env = templates()
    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        # read the latest snapshot once in the background at start, so the first page is not the one that
        # pays for decoding a large snapshot (pages wait on the cache's lock meanwhile)
        threading.Thread(target=_warm, args=(cache, pending), name="console-warm-up", daemon=True).start()
        yield

    app = FastAPI(title="Renkei console", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.store, app.state.reports, app.state.cache = store, reports, cache
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    @app.middleware("http")
    async def read_only(request: Request, call_next):
        if request.method not in ("GET", "HEAD"):
            resp: Response = PlainTextResponse("read-only console: GET only", status_code=405,
                                               headers={"Allow": "GET, HEAD"})
        else:
            resp = await call_next(request)
        for k, v in SECURITY_HEADERS.items():
            resp.headers.setdefault(k, v)
        return resp

    def render(request: Request, name: str, status: int = 200, **ctx: Any) -> HTMLResponse:
        snap = ctx.get("snapshot")
        base = dict(nav=NAV, path=request.url.path, snapshot=snap, taken_at=stored_in_tokyo(snap.taken_at) if snap else None,
                    error=None)
        html = env.get_template(name).render(**{**base, **ctx})
        return HTMLResponse(html, status_code=status)

    def query(request: Request) -> dict[str, str]:
        return {k: v for k, v in request.query_params.items()}

    @app.get("/favicon.ico")
    def favicon() -> Response:
        return Response(status_code=204)

    @app.get("/healthz")
    def healthz() -> JSONResponse:
        return JSONResponse({"ok": True, "snapshot_id": reports.latest_snapshot_id()})

    @app.get("/", response_class=HTMLResponse)
    def overview(request: Request) -> HTMLResponse:
        snap = cache.get()
        if snap is None:
            return render(request, "overview.html", snapshot=None)
        months = list(snap.months)
        chart = dict(labels=[m.month for m in months],
                     series=[dict(key="invoiced", label="請求 Invoiced", type="bar",
                                  data=[m.invoiced for m in months]),
                             dict(key="collected", label="入金 Collected", type="bar",
                                  data=[m.collected for m in months]),
                             dict(key="pipeline_weighted", label="パイプライン（加重） Pipeline weighted",
                                  type="line", data=[m.pipeline_weighted for m in months]),
                             dict(key="pipeline_unweighted", label="パイプライン（総額） Pipeline", type="line",
                                  dashed=True, data=[m.pipeline_unweighted for m in months])])
        forecast = list(snap.cash_forecast)
        forecast_chart = dict(labels=[f.month for f in forecast], stacked=True,
                              series=[dict(key="open_invoices_due", label="請求書の入金予定 Open invoices",
                                           type="bar", data=[f.open_invoices_due for f in forecast]),
                                      dict(key="weighted_pipeline_expected",
                                           label="パイプライン（加重）Weighted pipeline", type="bar",
                                           data=[f.weighted_pipeline_expected for f in forecast])])
        return render(request, "overview.html", snapshot=snap, totals=snap.totals(), months=months,
                      stages=list(snap.stages), forecast=forecast, chart=chart, forecast_chart=forecast_chart)

    @app.get("/aging", response_class=HTMLResponse)
    def aging(request: Request) -> HTMLResponse:
        from renkei.domain.reporting import AGING_LABELS_JA

        snap = cache.get()
        buckets = list(snap.aging) if snap else []
        chart = dict(labels=[AGING_LABELS_JA.get(b.label, b.label) for b in buckets],
                     series=[dict(key="amount", label="売掛残 Outstanding", type="bar",
                                  data=[b.amount for b in buckets])])
        customers = sorted((c for c in (snap.customers if snap else ()) if c.open_receivable > 0),
                           key=lambda c: (-c.open_receivable, c.customer_key))
        return render(request, "aging.html", snapshot=snap, buckets=buckets, labels_ja=AGING_LABELS_JA, chart=chart,
                      total_count=sum(b.count for b in buckets), total_amount=sum(b.amount for b in buckets),
                      customers=customers[:PAGE_SIZE], customers_total=len(customers))

    @app.get("/customers", response_class=HTMLResponse)
    def customers(request: Request) -> HTMLResponse:
        q = query(request)
        snap = cache.get()
        sort = q.get("sort") if q.get("sort") in _CUSTOMER_SORT_KEY else "gross_margin"
        direction = q.get("dir") if q.get("dir") in ("asc", "desc") else ("asc" if sort == "name" else "desc")
        rows = list(snap.customers) if snap else []
        rows.sort(key=lambda c: c.customer_key)  # ties: stable by key
        rows.sort(key=_CUSTOMER_SORT_KEY[sort], reverse=direction == "desc")
        page, pages = _page(q, len(rows))
        totals = dict(sales=sum(c.sales for c in rows), cost=sum(c.cost for c in rows),
                      gross_margin=sum(c.gross_margin for c in rows),
                      collected_to_date=sum(c.collected_to_date for c in rows),
                      ltv_projection=sum(c.ltv_projection for c in rows),
                      open_receivable=sum(c.open_receivable for c in rows))
        from renkei.domain.reporting import margin_rate

        totals["margin_rate"] = margin_rate(totals["sales"], totals["gross_margin"])
        return render(request, "customers.html", snapshot=snap, columns=CUSTOMER_COLUMNS, sort=sort, dir=direction,
                      rows=rows[(page - 1) * PAGE_SIZE: page * PAGE_SIZE], count=len(rows), page=page, pages=pages,
                      totals=totals)

    @app.get("/drift", response_class=HTMLResponse)
    def drift(request: Request) -> HTMLResponse:
        from renkei.domain.reporting import DRIFT_KINDS, DRIFT_LABELS_JA

        q = query(request)
        snap = cache.get()
        kind = q.get("kind") if q.get("kind") in DRIFT_KINDS else ""
        history = reports.snapshot_history("drift")
        kinds = list(DRIFT_KINDS)
        for _, counts in history:
            kinds += [c.kind for c in counts if c.kind not in kinds]
        chart = dict(labels=[stored_in_tokyo(t).strftime("%Y-%m-%d %H:%M") for t, _ in history], money=False,
                     series=[dict(key=k, label=DRIFT_LABELS_JA.get(k, k), type="line",
                                  data=[next((c.count for c in counts if c.kind == k), 0) for _, counts in history])
                             for k in kinds])
        items = [i for i in (cache.drift_items() if snap else ()) if not kind or i.kind == kind]
        page, pages = _page(q, len(items))
        return render(request, "drift.html", snapshot=snap, kind=kind, kinds=kinds, labels_ja=DRIFT_LABELS_JA,
                      counts=list(snap.drift_counts) if snap else [], chart=chart, history_len=len(history),
                      items=items[(page - 1) * PAGE_SIZE: page * PAGE_SIZE], count=len(items), page=page,
                      pages=pages, deal_kinds=_DEAL_DRIFT)

    @app.get("/queues", response_class=HTMLResponse)
    def queues(request: Request) -> HTMLResponse:
        from renkei.cli import review_row, ui_link

        ui = prefect_ui_base()
        reviews = []
        for r in store.list_reviews("open"):
            row = review_row(r)
            row["url"] = ui_link(str(row["flow_run_id"])) if ui and row.get("flow_run_id") else None
            reviews.append(row)
        rows, approvals_error, read_at = pending.get()
        return render(request, "queues.html", snapshot=cache.get(), reviews=reviews, approvals=rows,
                      approvals_error=approvals_error, approvals_read_at=read_at, prefect_ui=ui)

    @app.get("/trace", response_class=HTMLResponse)
    def trace(request: Request) -> HTMLResponse:
        deal = (request.query_params.get("deal") or "").strip()
        return _trace(request, deal)

    @app.get("/trace/{deal_id}", response_class=HTMLResponse)
    def trace_path(request: Request, deal_id: str) -> HTMLResponse:
        return _trace(request, deal_id)

    def _trace(request: Request, deal: str) -> HTMLResponse:
        t = reports.trace(deal) if deal else None
        run_links: dict[str, str] = {}
        if t is not None and prefect_ui_base():
            from renkei.cli import ui_link

            for e in t.events:  # an event a run wrote (an approval request): a link to that run in the Prefect UI
                run_id = (e.changes or {}).get("flow_run_id")
                if isinstance(run_id, str) and run_id:
                    run_links[run_id] = ui_link(run_id)
        return render(request, "trace.html", snapshot=cache.get(), deal=deal, trace=t, run_links=run_links,
                      status=200 if t is None or t.found else 404)

    @app.get("/search", response_class=HTMLResponse)
    def search(request: Request) -> HTMLResponse:
        from renkei.store.reporting import KIND_LABELS_JA, SEARCH_KINDS

        q = query(request)
        kinds = [k for k in request.query_params.getlist("kind") if k in SEARCH_KINDS] or list(SEARCH_KINDS)
        asked = any(q.get(k) for k in ("from", "to", "min", "max", "counterparty")) or "kind" in q
        hits, error, status = [], None, 200
        try:
            crit = dict(date_from=_date_param(q, "from"), date_to=_date_param(q, "to"), min_amount=_int_param(q, "min"),
                        max_amount=_int_param(q, "max"), counterparty=(q.get("counterparty") or "").strip() or None)
            if asked:
                hits = reports.search(kinds=kinds, limit=PAGE_SIZE * 5, **crit)
        except BadQuery as exc:
            error, status = str(exc), 400
        return render(request, "search.html", status=status, snapshot=cache.get(), q=q, kinds=kinds,
                      all_kinds=SEARCH_KINDS, kind_labels=KIND_LABELS_JA, hits=hits, asked=asked, error=error,
                      limit=PAGE_SIZE * 5)

    return app


class ApprovalsCache:
    """The pending approval runs (the rows of ``renkei approvals list``), fetched from the Prefect API in a
    background thread and kept :data:`APPROVALS_TTL_S` seconds: reading them takes seconds (one API call per
    run), so a page shows the last list at once (with the time it was read) while a newer one is fetched.
    Only the first page after start waits, at most :data:`APPROVALS_WAIT_S` seconds."""

    def __init__(self, source: Callable[[], list[dict]] | None) -> None:
        self.source = source
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._running = False
        self._rows: list[dict] | None = None
        self._error: str | None = None
        self._at: float | None = None  # monotonic time of the last answer (rows or error)
        self._read_at: datetime | None = None

    def _resolve(self) -> Callable[[], list[dict]] | None:
        if self.source is not None:
            return self.source
        if not os.environ.get("PREFECT_API_URL"):
            return None
        from renkei.cli import pending_approvals

        return pending_approvals

    def _fetch(self, source: Callable[[], list[dict]]) -> None:
        try:
            rows, error = list(source()), None
        except Exception as exc:  # noqa: BLE001 - shown on the page, the rest of it still works
            rows, error = None, f"Prefect API: {type(exc).__name__}"
        with self._lock:
            if rows is not None:
                self._rows, self._read_at = rows, datetime.now(timezone.utc)
            self._error, self._at, self._running = error, time.monotonic(), False
            self._done.set()

    def refresh(self) -> bool:
        """Start a fetch unless one runs or the last answer is fresh; False when no Prefect API is set."""
        source = self._resolve()
        if source is None:
            return False
        with self._lock:
            fresh = self._at is not None and time.monotonic() - self._at < APPROVALS_TTL_S
            if not fresh and not self._running:
                self._running = True
                self._done.clear()
                threading.Thread(target=self._fetch, args=(source,), name="console-approvals", daemon=True).start()
        return True

    def get(self) -> tuple[list[dict], str | None, datetime | None]:
        """(rows, why they may be missing or old, when they were read)."""
        if not self.refresh():
            return [], "PREFECT_API_URL が未設定のため承認待ちは表示できません / PREFECT_API_URL is not set", None
        with self._lock:
            first = self._at is None
        if first:
            self._done.wait(APPROVALS_WAIT_S)
        with self._lock:
            if self._at is None:
                return [], (f"Prefect API から読み込み中です。再読み込みしてください / still reading from the Prefect API "
                            f"(>{APPROVALS_WAIT_S:.0f}s); reload"), None
            return list(self._rows or []), self._error, self._read_at


def _warm(cache: SnapshotCache, approvals: ApprovalsCache) -> None:
    approvals.refresh()
    try:
        cache.get()
    except Exception:  # noqa: BLE001 - a page will read it (and show the error) instead
        pass


def serve(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, *, database_url: str | None = None) -> None:
    """Serve the console with uvicorn until Ctrl-C."""
    import uvicorn

    uvicorn.run(create_app(database_url=database_url), host=host, port=port, log_level="warning")


__all__ = ["create_app", "serve", "DEFAULT_HOST", "DEFAULT_PORT", "CUSTOMER_COLUMNS"]
