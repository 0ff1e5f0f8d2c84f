"""``renkei doctor``: is every connection of this installation usable, and if not, what to change.

Each check is a plain function returning :class:`Check` rows (check, status, detail, fix). They make
real but harmless calls: HubSpot reads (the property list and the private-app token info), a freee token
through the shared token store (a refresh only when the stored access token is stale, persisted under
the store's lock like every worker's — nobody's refresh token is burnt) and one company read, a store
connection with a write that is rolled back, Prefect reads. Nothing is created.

Connection problems are answered in seconds: every probe has a short timeout and no retry loop (a
refused connection is final). :func:`connection_checks` is the subset a flow needs before it starts
(``tasks/preflight.py``); :func:`explain` turns a known exception into the same one-line message.
"""

from __future__ import annotations

import errno
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable, Optional

import httpx

from renkei.settings import Settings, redact_url

OK, WARN, FAIL, SKIP = "ok", "warn", "fail", "skip"
PROBE_TIMEOUT_S = 5.0
ROOT = Path(__file__).resolve().parents[1]

# Scopes a Renkei private app needs; each entry lists the alternatives of which one is enough.
REQUIRED_SCOPES: tuple[tuple[str, ...], ...] = tuple(
    [(f"crm.objects.{o}.{rw}",) for o in ("companies", "deals") for rw in ("read", "write")]
    + [(f"crm.objects.{o}.{rw}", "e-commerce") for o in ("line_items", "products") for rw in ("read", "write")]
    + [(f"crm.schemas.{o}.{rw}",) for o in ("companies", "deals") for rw in ("read", "write")]
    + [(f"crm.schemas.{o}.{rw}", "e-commerce") for o in ("line_items", "products") for rw in ("read", "write")]
)
TOKEN_INFO_PATH = "/oauth/v2/private-apps/get/access-token-info"


@dataclass
class Check:
    name: str
    status: str
    detail: str
    fix: str = ""

    @property
    def failed(self) -> bool:
        return self.status == FAIL

    def line(self) -> str:
        """The one line a person reads: what is wrong and what to change."""
        return f"{self.name}: {self.detail}" + (f" — fix: {self.fix}" if self.fix else "")


class ConfigProblem(Exception):
    """A configuration problem, said in one line with its fix. Logged without a traceback
    (``renkei.logmask`` drops the traceback of exceptions marked ``quiet_traceback``)."""

    quiet_traceback = True

    def __init__(self, check: Check | str, detail: str = "", fix: str = ""):
        self.check = check if isinstance(check, Check) else Check(check, FAIL, detail, fix)
        super().__init__(self.check.line())

    @property
    def fix(self) -> str:
        return self.check.fix


def _first_line(exc: BaseException | str) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]


# errors that prove the service cannot be reached at all (a dropped or slow answer is weather, not a setting)
UNREACHABLE = (httpx.ConnectError, httpx.ConnectTimeout, httpx.UnsupportedProtocol, httpx.InvalidURL)


def _net_error(exc: Exception) -> str:
    cause = exc.__cause__ or exc.__context__
    msg = _first_line(cause if cause is not None else exc)
    if "refused" in msg.lower():
        return "connection refused"
    if isinstance(exc, httpx.TimeoutException):
        return f"no answer within {PROBE_TIMEOUT_S:.0f}s"
    return msg


# --------------------------------------------------------------------------------------------- policy
def check_policy(settings: Settings) -> Check:
    from renkei.policy import load_policy

    where = str(settings.policy_file) if settings.policy_file else "packaged default"
    try:
        load_policy(settings.policy_file)
    except FileNotFoundError:
        return Check("policy", FAIL, f"policy file {settings.policy_file} does not exist",
                     "set RENKEI_POLICY_FILE to an existing TOML file (or unset it for the packaged default)")
    except Exception as exc:  # noqa: BLE001 - TOML or validation error: reported as one line
        return Check("policy", FAIL, f"{where} does not parse: {_first_line(exc)}",
                     f"correct {where} (see renkei/policy.toml for every key)")
    return Check("policy", OK, f"{where} parses")


# --------------------------------------------------------------------------------------------- HubSpot
def check_hubspot(settings: Settings, *, scopes: bool = True) -> list[Check]:
    """Token present and accepted (one property-list read); scopes from the private-app token info."""
    if settings.hubspot_token is None:
        return [Check("hubspot", FAIL, "RENKEI_HUBSPOT_TOKEN is not set",
                      "set RENKEI_HUBSPOT_TOKEN to the private app's access token "
                      "(HubSpot → Settings → Integrations → Private apps)")]
    base = settings.hubspot_base_url.rstrip("/")
    token = settings.hubspot_token.get_secret_value()
    try:
        r = httpx.get(f"{base}/crm/v3/properties/companies", headers={"Authorization": f"Bearer {token}"},
                      timeout=PROBE_TIMEOUT_S)
    except UNREACHABLE as exc:
        return [Check("hubspot", FAIL, f"cannot reach HubSpot at {base} ({_net_error(exc)})",
                      "check RENKEI_HUBSPOT_BASE_URL (https://api.hubapi.com in production) and the network")]
    except httpx.HTTPError as exc:
        return [Check("hubspot", WARN, f"HubSpot at {base} did not answer cleanly ({_net_error(exc)}); token not "
                      "confirmed", "retry later")]
    if r.status_code == 401:
        return [Check("hubspot", FAIL, f"HubSpot at {base} rejected the token (401 {_hs_category(r)})",
                      "set RENKEI_HUBSPOT_TOKEN to the current access token of the Renkei private app")]
    if r.status_code == 403:
        return [Check("hubspot", FAIL, f"the token may not read company properties (403 {_hs_category(r)})",
                      "grant the private app the scopes listed by `renkei doctor` (crm.schemas.*, crm.objects.*)")]
    if r.status_code >= 400:
        return [Check("hubspot", WARN, f"HubSpot answered {r.status_code} {_hs_category(r)}; token not confirmed",
                      "retry later; see https://status.hubspot.com")]
    out = [Check("hubspot", OK, f"token accepted by {base}")]
    if scopes:
        out.append(_check_scopes(base, token))
    return out


def _hs_category(r: httpx.Response) -> str:
    try:
        return str(r.json().get("category") or "")
    except Exception:  # noqa: BLE001 - not JSON
        return ""


def _check_scopes(base: str, token: str) -> Check:
    try:
        r = httpx.post(f"{base}{TOKEN_INFO_PATH}", json={"tokenKey": token}, timeout=PROBE_TIMEOUT_S)
    except httpx.HTTPError as exc:
        return Check("hubspot scopes", WARN, f"token info not readable ({_net_error(exc)})")
    if r.status_code != 200:
        return Check("hubspot scopes", WARN, f"token info not readable ({r.status_code}): an OAuth token? "
                     "scopes are then checked by the calls themselves")
    granted = set(r.json().get("scopes") or [])
    missing = [alts[0] for alts in REQUIRED_SCOPES if not granted & set(alts)]
    if missing:
        return Check("hubspot scopes", FAIL, f"the token lacks {len(missing)} scope(s): {', '.join(missing)}",
                     "add these scopes to the private app (HubSpot → Private apps → Scopes), then update "
                     "RENKEI_HUBSPOT_TOKEN if HubSpot rotated it")
    return Check("hubspot scopes", OK, f"{len(granted)} scopes granted; all {len(REQUIRED_SCOPES)} needed present")


# --------------------------------------------------------------------------------------------- freee
def token_store(settings: Settings) -> Any:
    """The token store every worker of this installation uses (shared rotation): the runtime's own
    choice when it offers one (``connectors.freee.factory.freee_token_store``), else the token file."""
    import sqlalchemy

    from renkei.connectors.freee.auth import FileTokenStore

    legacy = FileTokenStore(settings.token_store_path)
    try:
        from renkei.connectors.freee.factory import freee_token_store
    except ImportError:
        return legacy
    from renkei.store.repo import Store

    try:
        shared = freee_token_store(settings, Store.open(settings.database_url, run_migrations=False, cached=False))
        shared.load()
    except sqlalchemy.exc.SQLAlchemyError:  # no token table yet: the first run moves the file (or seed) in
        return legacy
    return shared


def check_freee(settings: Settings) -> list[Check]:
    """Reachable, OAuth through the shared token store, the company and its settings as freee reports them."""
    missing = [name for name, value in (("RENKEI_FREEE_CLIENT_ID", settings.freee_client_id),
                                        ("RENKEI_FREEE_CLIENT_SECRET", settings.freee_client_secret),
                                        ("RENKEI_FREEE_COMPANY_ID", settings.freee_company_id)) if value is None]
    if missing:
        return [Check("freee", FAIL, f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set",
                      "set them from the freee app (freee developers → アプリ管理) and the 事業所 id")]
    from renkei.connectors.freee.auth import (FreeeAuth, FreeeAuthError, NoRefreshToken, RefreshTokenRejected,
                                       RefreshUncertain)
    from renkei.connectors.freee.client import token_url_from

    base = settings.freee_base_url.rstrip("/")
    token_url = token_url_from(settings.freee_auth_url)
    for url, setting in ((base, "RENKEI_FREEE_BASE_URL"), (token_url, "RENKEI_FREEE_AUTH_URL")):
        try:
            httpx.get(url, timeout=PROBE_TIMEOUT_S)
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            if not isinstance(exc, UNREACHABLE):
                continue  # reachable, just not a clean answer
            return [Check("freee", FAIL, f"cannot reach freee at {_origin(url)} ({_net_error(exc)})",
                          f"check {setting} (production: {_default(setting)}) and the network")]
    store = token_store(settings)
    auth = FreeeAuth(client_id=settings.freee_client_id, client_secret=settings.freee_client_secret.get_secret_value(),
                     store=store, token_url=token_url, connect_retries=1, timeout_s=PROBE_TIMEOUT_S,
                     initial_refresh_token=(settings.freee_refresh_token.get_secret_value()
                                            if settings.freee_refresh_token else None))
    try:
        access = auth.access_token()
    except NoRefreshToken:
        return [Check("freee", FAIL, f"no freee refresh token: the token store {_store_name(store)} is empty",
                      "authorise the app once and set RENKEI_FREEE_REFRESH_TOKEN to the refresh token it gave")]
    except RefreshTokenRejected as exc:
        return [Check("freee", FAIL, f"freee rejected the refresh token ({_first_line(exc).split('(')[-1].split(';')[0]})",
                      f"re-authorise the app, empty the token store {_store_name(store)} and set "
                      "RENKEI_FREEE_REFRESH_TOKEN to the new refresh token")]
    except RefreshUncertain as exc:  # freee's side or the network: not a setting; the run's own refresh decides
        return [Check("freee", WARN, f"freee token refresh not confirmed: {_first_line(exc)}", "retry later")]
    except FreeeAuthError as exc:
        return [Check("freee", FAIL, f"freee token refresh failed: {_first_line(exc)}",
                      "check RENKEI_FREEE_AUTH_URL and RENKEI_FREEE_CLIENT_ID/RENKEI_FREEE_CLIENT_SECRET")]
    finally:
        auth.close()
    out = [Check("freee", OK, f"OAuth token valid (token store {_store_name(store)})")]
    out.append(_check_company(settings, base, access))
    return out


def _origin(url: str) -> str:
    u = httpx.URL(url)
    return f"{u.scheme}://{u.host}" + (f":{u.port}" if u.port else "")


def _default(setting: str) -> str:
    return str(Settings.model_fields[setting.removeprefix("RENKEI_").lower()].default)


def _store_name(store: Any) -> str:
    return str(getattr(store, "path", None) or store)


def _check_company(settings: Settings, base: str, access: str) -> Check:
    cid = settings.freee_company_id
    try:
        r = httpx.get(f"{base}/api/1/companies/{cid}", headers={"Authorization": f"Bearer {access}"},
                      timeout=PROBE_TIMEOUT_S)
    except httpx.HTTPError as exc:
        return Check("freee company", WARN, f"company {cid} not read ({_net_error(exc)})")
    if r.status_code == 401:
        return Check("freee company", FAIL, f"freee rejected the stored access token for company {cid} (401)",
                     "re-authorise the app, empty the token store and set RENKEI_FREEE_REFRESH_TOKEN")
    if r.status_code in (403, 404):
        return Check("freee company", FAIL, f"company {cid} is not accessible with this token ({r.status_code})",
                     "set RENKEI_FREEE_COMPANY_ID to a 事業所 id the authorising user can use "
                     "(GET /api/1/companies lists them)")
    if r.status_code >= 400:
        return Check("freee company", WARN, f"company {cid} not read ({r.status_code}); retry later")
    company = (r.json() or {}).get("company") or {}
    if not company.get("invoice_numbering") and not company.get("invoice_number_format"):
        try:  # freee's API does not report 採番の設定: the policy says which one the company uses
            from renkei.policy import load_policy

            numbering = load_policy(settings.policy_file).invoice_numbering
            company = {**company, "invoice_numbering": f"{numbering.mode} (policy [invoice_numbering]; "
                                                       f"must match freee請求書 採番の設定)"}
        except Exception:  # noqa: BLE001 - the policy check reports a broken policy file
            pass
    return Check("freee company", OK, f"{company.get('display_name') or company.get('name') or cid}: "
                 + describe_company_settings(company))


def describe_company_settings(company: dict) -> str:
    """The company settings Renkei depends on, as freee reports them."""
    fraction = {0: "切り捨て", 1: "切り上げ", 2: "四捨五入"}
    years = company.get("fiscal_years") or [{}]
    tax_fraction = years[-1].get("tax_fraction", company.get("tax_fraction"))
    code = company.get("use_partner_code")
    numbering = company.get("invoice_numbering") or company.get("invoice_number_format")
    parts = [f"partner codes {'on' if code else 'off' if code is not None else 'unknown'}",
             f"tax rounding {fraction.get(tax_fraction, tax_fraction if tax_fraction is not None else 'unknown')}",
             f"amount rounding {fraction.get(company.get('amount_fraction'), 'unknown')}",
             f"invoice numbering {numbering or 'not reported by the API (see the policy)'}"]
    return ", ".join(parts)


# --------------------------------------------------------------------------------------------- store
def check_store(settings: Settings) -> list[Check]:
    """Reachable, at the migrations' head, writable (a write rolled back). Creates nothing."""
    import sqlalchemy
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from renkei.store.db import alembic_config

    url = settings.database_url
    shown = redact_url(url)
    sqlite_path = _sqlite_path(url)
    if sqlite_path is not None and not sqlite_path.exists():
        parent = next(p for p in [sqlite_path.parent, *sqlite_path.parent.parents] if p.exists())
        if not os.access(parent, os.W_OK):
            return [Check("state store", FAIL, f"{sqlite_path} cannot be created: {parent} is not writable",
                          "set RENKEI_DATABASE_URL to a writable path (or RENKEI_HOME to a writable folder)")]
        return [Check("state store", WARN, f"{sqlite_path} does not exist yet; the first run creates it",
                      "renkei db upgrade")]
    args = {"timeout": PROBE_TIMEOUT_S} if sqlite_path is not None else (
        {"connect_timeout": int(PROBE_TIMEOUT_S)} if url.startswith("postgresql") else {})
    try:
        engine = sqlalchemy.create_engine(url, connect_args=args, poolclass=sqlalchemy.pool.NullPool)
    except Exception as exc:  # noqa: BLE001 - a malformed URL
        return [Check("state store", FAIL, f"RENKEI_DATABASE_URL is not usable ({_first_line(exc)})",
                      "set RENKEI_DATABASE_URL to sqlite:///PATH or postgresql+psycopg2://USER@HOST/DB")]
    out: list[Check] = []
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("select 1")
            out.append(Check("state store", OK, f"reachable: {shown}"))
            current = MigrationContext.configure(conn).get_current_revision()
            heads = set(ScriptDirectory.from_config(alembic_config(url)).get_heads())
            if current in heads:
                out.append(Check("store schema", OK, f"at head ({current})"))
            elif current is None or current in {r.revision for r in ScriptDirectory.from_config(
                    alembic_config(url)).walk_revisions()}:
                out.append(Check("store schema", WARN, f"at {current or 'no schema'}, head is {', '.join(heads)}; "
                                 "flows migrate on start", "renkei db upgrade"))
            else:
                out.append(Check("store schema", FAIL, f"at revision {current}, unknown to this Renkei version",
                                 "install the Renkei version that wrote this store (or newer) on this host"))
            conn.rollback()  # end the reading transaction; the probe opens its own
            out.append(_write_probe(conn, current, shown, sqlite_path))
    except sqlalchemy.exc.SQLAlchemyError as exc:
        if not out:
            out.append(Check("state store", FAIL, f"cannot connect to {shown}: {_db_error(exc)}",
                             "check RENKEI_DATABASE_URL (server running? user, password, database name?)"))
        else:
            out.append(_store_write_failure(exc, shown, sqlite_path))
    finally:
        engine.dispose()
    return out


def _write_probe(conn: Any, current: Optional[str], shown: str, sqlite_path: Optional[Path]) -> Check:
    import sqlalchemy

    try:
        with conn.begin() as tx:
            if current is not None:
                conn.exec_driver_sql("UPDATE alembic_version SET version_num = version_num")
            else:
                conn.exec_driver_sql("CREATE TABLE renkei_doctor_probe (x INTEGER)")
            tx.rollback()
    except sqlalchemy.exc.SQLAlchemyError as exc:
        return _store_write_failure(exc, shown, sqlite_path)
    return Check("store writable", OK, "a write was accepted (and rolled back)")


def _store_write_failure(exc: Exception, shown: str, sqlite_path: Optional[Path]) -> Check:
    where = str(sqlite_path) if sqlite_path is not None else shown
    why = _db_error(exc)
    what = "is read-only" if any(w in why.lower() for w in ("readonly", "read-only", "permission", "unable to open")) \
        else "refused a write"
    return Check("store writable", FAIL, f"{where} {what} ({why})",
                 f"make {where} writable for this user, or set RENKEI_DATABASE_URL to a writable store"
                 if sqlite_path is not None else "grant this database user INSERT/UPDATE/CREATE, or set "
                 "RENKEI_DATABASE_URL to a writable store")


def _db_error(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    return _first_line(orig if orig is not None else exc)


def _sqlite_path(url: str) -> Optional[Path]:
    if not url.startswith("sqlite"):
        return None
    raw = url.split("///", 1)[-1]
    if raw.startswith("file:"):
        raw = raw[5:].split("?", 1)[0]
    if not raw or raw == ":memory:":
        return None
    return Path(raw.split("?", 1)[0]).absolute()


def check_home_writable(home: Path) -> None:
    """Raise :class:`ConfigProblem` when ``RENKEI_HOME`` cannot hold the files Renkei keeps there."""
    home = Path(home).absolute()
    try:
        home.mkdir(parents=True, exist_ok=True)
        probe = home / f".write-probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ConfigProblem("home", f"{home} is not writable ({exc.strerror or _first_line(exc)})",
                            "set RENKEI_HOME to a writable folder") from None


# --------------------------------------------------------------------------------------------- Prefect
def prefect_api_url() -> Optional[str]:
    from prefect.settings import get_current_settings

    url = get_current_settings().api.url
    return str(url) if url else None


def check_prefect(api_url: Optional[str]) -> Check:
    if not api_url:
        return Check("prefect api", FAIL, "PREFECT_API_URL is not set (scheduled runs need a Prefect server)",
                     "start one (`prefect server start`) and set PREFECT_API_URL=http://HOST:4200/api")
    try:
        r = httpx.get(f"{api_url.rstrip('/')}/health", timeout=PROBE_TIMEOUT_S)
    except httpx.HTTPError as exc:  # the health answer is the whole check: any failure fails it
        return Check("prefect api", FAIL, f"cannot reach the Prefect API at {api_url} ({_net_error(exc)})",
                     "start the server (`prefect server start`) or correct PREFECT_API_URL")
    if r.status_code != 200:
        return Check("prefect api", FAIL, f"the Prefect API at {api_url} answered {r.status_code} on /health",
                     "correct PREFECT_API_URL (it ends in /api)")
    return Check("prefect api", OK, f"{api_url} healthy")


def project_deployments(path: Path = ROOT / "prefect.yaml") -> tuple[str, list[str]]:
    """(work pool name, deployment names) from the project's ``prefect.yaml``."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError:
        return "renkei", []
    names = [d["name"] for d in data.get("deployments") or [] if d.get("name")]
    pools = [((d.get("work_pool") or {}).get("name")) for d in data.get("deployments") or []]
    pool = next((p for p in pools if p), None) or ((data.get("definitions") or {}).get("work_pool") or {}).get(
        "name") or "renkei"
    return pool, names


def check_work_pool(pool: str) -> Check:
    from prefect import get_client
    from prefect.exceptions import ObjectNotFound

    try:
        with get_client(sync_client=True) as client:
            wp = client.read_work_pool(pool)
    except ObjectNotFound:
        return Check("work pool", FAIL, f"work pool '{pool}' does not exist",
                     f"prefect work-pool create {pool} --type process")
    paused = " (paused)" if getattr(wp, "is_paused", False) else ""
    return Check("work pool", OK if not paused else WARN, f"'{pool}' ({wp.type}){paused}",
                 f"prefect work-pool resume {pool}" if paused else "")


def check_deployments(pool: str, expected: Iterable[str]) -> Check:
    from prefect import get_client
    from prefect.client.schemas.filters import WorkPoolFilter, WorkPoolFilterName

    expected = list(expected)
    with get_client(sync_client=True) as client:
        have = {d.name for d in client.read_deployments(
            work_pool_filter=WorkPoolFilter(name=WorkPoolFilterName(any_=[pool])))}
    missing = [n for n in expected if n not in have]
    if missing:
        return Check("deployments", FAIL, f"{len(missing)} of {len(expected)} missing on '{pool}': {', '.join(missing)}",
                     "prefect --no-prompt deploy --all  (from the Renkei checkout)")
    return Check("deployments", OK, f"all {len(expected)} on '{pool}'")


# --------------------------------------------------------------------------------------------- together
def with_credentials(settings: Settings) -> tuple[Settings, list[Check]]:
    """The settings with a configured Renkei credentials block applied (as the runtime applies it)."""
    name = getattr(settings, "credentials_block", None)
    if not name:
        return settings, []
    try:
        from renkei.blocks import settings_with_block  # type: ignore[import-not-found]

        return settings_with_block(settings), [Check("credentials", OK, f"block '{name}' loaded")]
    except Exception as exc:  # noqa: BLE001 - reported as one line
        return settings, [Check("credentials", FAIL, f"credentials block '{name}' cannot be loaded: {_first_line(exc)}",
                                "run `renkei setup` against this Prefect API, or unset RENKEI_CREDENTIALS_BLOCK")]


def check_erp(settings: Settings) -> list[Check]:
    """The configured ERP's connection checks: freee's here, another ERP's from ``<its package>.doctor.checks``."""
    if settings.erp == "freee":
        return check_freee(settings)
    import importlib

    from renkei.connectors.registry import entry

    row = entry("erp", settings.erp)
    package = row.build.split(":", 1)[0].rsplit(".", 1)[0]
    try:
        module = importlib.import_module(f"{package}.doctor")
    except ImportError:
        return [Check(row.label, WARN, "no connection check for this ERP")]
    return list(module.checks(settings))


def connection_checks(settings: Settings, *, scopes: bool = False) -> list[Check]:
    """What a flow needs before it starts: policy, HubSpot, the ERP, state store."""
    settings, creds = with_credentials(settings)
    return [*creds, check_policy(settings), *check_hubspot(settings, scopes=scopes), *check_erp(settings),
            *check_store(settings)]


def run_checks(settings: Settings, *, work_pool: Optional[str] = None, prefect: bool = True) -> list[Check]:
    checks = connection_checks(settings, scopes=True)
    if not prefect:
        return checks
    api = prefect_api_url()
    checks.append(check_prefect(api))
    pool, names = project_deployments()
    pool = work_pool or pool
    if checks[-1].failed:
        checks += [Check("work pool", SKIP, "needs the Prefect API"), Check("deployments", SKIP, "needs the Prefect API")]
        return checks
    checks.append(check_work_pool(pool))
    if checks[-1].failed:
        checks.append(Check("deployments", SKIP, f"needs the work pool '{pool}' first"))
    else:
        checks.append(check_deployments(pool, names))
    return checks


# --------------------------------------------------------------------------------------------- errors
def explain(exc: BaseException, settings: Optional[Settings] = None) -> Optional[Check]:
    """The one-line message (with its fix) for a known configuration error, else ``None``."""
    import sqlalchemy

    from renkei.connectors.http import ConnectorError, TransportError, Unauthorized

    from pydantic import ValidationError

    if isinstance(exc, ConfigProblem):
        return exc.check
    if isinstance(exc, ValidationError) and exc.title == "Settings":
        err = exc.errors()[0]
        name = "RENKEI_" + "_".join(str(p) for p in err.get("loc", ())).upper()
        shown = "" if any(w in name for w in ("TOKEN", "SECRET", "KEY", "URL")) else f"={err.get('input')!r}"
        return Check("settings", FAIL, f"{name}{shown} is not valid: {err.get('msg')}",
                     f"correct {name} (see `renkei config` and the README's settings table)")
    try:
        settings = settings or Settings()
    except Exception:  # noqa: BLE001 - settings themselves invalid
        return Check("settings", FAIL, _first_line(exc), "correct the RENKEI_* environment variables")
    text = str(exc)
    if isinstance(exc, ValueError) and "no HubSpot token" in text:
        return check_hubspot(settings, scopes=False)[0] if settings.hubspot_token is None else None
    if isinstance(exc, RuntimeError) and "RENKEI_FREEE_" in text and "not set" in text:
        return check_freee(settings)[0]
    if isinstance(exc, ConnectorError):
        url = str(getattr(exc, "url", "") or "")
        hubspot = url.startswith(settings.hubspot_base_url.rstrip("/"))
        if isinstance(exc, Unauthorized) and hubspot:
            return Check("hubspot", FAIL, f"HubSpot rejected the token ({exc.status} {exc.category or ''})".strip(),
                         "set RENKEI_HUBSPOT_TOKEN to the current access token of the Renkei private app")
        if type(exc).__module__.startswith("renkei.connectors.freee") or not hubspot:
            from renkei.connectors.freee.auth import FreeeAuthError

            if isinstance(exc, (FreeeAuthError, TransportError, Unauthorized)):
                found = [c for c in check_freee(settings) if c.failed]
                if found:
                    return found[0]
        if isinstance(exc, TransportError) and hubspot:
            return Check("hubspot", FAIL, f"cannot reach HubSpot at {settings.hubspot_base_url}",
                         "check RENKEI_HUBSPOT_BASE_URL and the network")
        return None
    if isinstance(exc, sqlalchemy.exc.OperationalError) or (
            isinstance(exc, OSError) and exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM)):
        found = [c for c in check_store(settings) if c.status == FAIL]
        if found:
            return found[0]
        if isinstance(exc, OSError):
            return Check("files", FAIL, f"cannot write {exc.filename or ''} ({os.strerror(exc.errno)})",
                         "make it writable, or set RENKEI_HOME to a writable folder")
    return None


# --------------------------------------------------------------------------------------------- output
def render(checks: list[Check], console: Any) -> None:
    from rich.table import Table

    style = {OK: "green", WARN: "yellow", FAIL: "bold red", SKIP: "dim"}
    table = Table(title="renkei doctor")
    for col in ("check", "status", "detail", "fix"):
        table.add_column(col, overflow="fold")
    for c in checks:
        table.add_row(c.name, f"[{style[c.status]}]{c.status}[/]", c.detail, c.fix)
    console.print(table)
    failed = [c for c in checks if c.failed]
    if failed:
        console.print(f"{len(failed)} check(s) failed:", highlight=False)
        for c in failed:
            console.print(f"✗ {c.line()}", highlight=False, soft_wrap=True, markup=False)
    else:
        console.print("all checks passed", highlight=False)


def as_json(checks: list[Check]) -> str:
    return json.dumps({"ok": not any(c.failed for c in checks), "checks": [asdict(c) for c in checks]},
                      ensure_ascii=False, indent=2)


def doctor_command(
    as_json_: bool = False,
    work_pool: Optional[str] = None,
    skip_prefect: bool = False,
) -> int:
    from rich.console import Console

    settings = Settings()
    checks = run_checks(settings, work_pool=work_pool, prefect=not skip_prefect)
    if as_json_:
        print(as_json(checks))
    else:
        render(checks, Console())
    return 1 if any(c.failed for c in checks) else 0


__all__ = ["Check", "ConfigProblem", "REQUIRED_SCOPES", "check_deployments", "check_freee", "check_hubspot",
           "check_policy", "check_prefect", "check_store", "check_work_pool", "connection_checks", "explain",
           "run_checks"]
