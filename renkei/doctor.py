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

from renkei.connectors.base import CHECK_FAIL as FAIL, CHECK_OK as OK, CHECK_SKIP as SKIP, CHECK_WARN as WARN
from renkei.connectors.base import CheckResult as Check
from renkei.connectors.probe import PROBE_TIMEOUT_S, UNREACHABLE, first_line as _first_line, net_error as _net_error

ROOT = Path(__file__).resolve().parents[1]


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


def check_connectors(settings: Settings, *, deep: bool = False) -> list[Check]:
    """The configured CRM's and ERP's own checks (``factory.check`` of each, found through the registry)."""
    from renkei.connectors.registry import entry

    out: list[Check] = []
    for side in ("crm", "erp"):
        e = entry(side, getattr(settings, side))
        try:
            check = e.checker()
        except ImportError as exc:
            out.append(Check(e.name, FAIL, f"the {e.label} connector cannot be loaded ({_first_line(exc)})",
                             f"install Renkei with the {e.label} connector, or set RENKEI_{side.upper()}"))
            continue
        if check is None:
            out.append(Check(e.name, SKIP, f"the {e.label} connector offers no connection check"))
        else:
            out.extend(check(settings, deep=deep))
    return out


def check_install() -> Check:
    """The running ``renkei`` matches its source: every ``renkei.<folder>`` found, and next to ``renkei``
    (``renkei.layout``; a stale or foreign editable install fails here instead of in the middle of a run)."""
    from renkei.layout import install_detail, install_fix, install_problems, package_root

    problems = install_problems()
    if not problems:
        return Check("install", OK, f"renkei from {package_root()}")
    return Check("install", FAIL, install_detail(problems), install_fix())


def connection_checks(settings: Settings, *, scopes: bool = False) -> list[Check]:
    """What a flow needs before it starts: an install matching its source, policy, the configured CRM and ERP,
    state store. With a mismatched install nothing else is checked (it would run code of the wrong tree)."""
    install = check_install()
    if install.failed:
        return [install]
    settings, creds = with_credentials(settings)
    return [install, *creds, check_policy(settings), *check_connectors(settings, deep=scopes),
            *check_store(settings)]


def run_checks(settings: Settings, *, work_pool: Optional[str] = None, prefect: bool = True) -> list[Check]:
    checks = connection_checks(settings, scopes=True)
    if not prefect or checks[0].failed and checks[0].name == "install":
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
    from renkei.connectors.freee.checks import check_freee
    from renkei.connectors.hubspot.checks import check_hubspot

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


def __getattr__(name: str) -> Any:
    """The HubSpot and freee checks moved to their connectors (``connectors/*/checks.py``); kept reachable
    here under their old names."""
    if name in ("check_hubspot", "REQUIRED_SCOPES", "TOKEN_INFO_PATH"):
        from renkei.connectors.hubspot import checks

        return getattr(checks, name)
    if name in ("check_freee", "token_store", "describe_company_settings"):
        from renkei.connectors.freee import checks

        return getattr(checks, name)
    raise AttributeError(name)


__all__ = ["Check", "ConfigProblem", "check_connectors", "check_deployments", "check_policy", "check_prefect",
           "check_store", "check_work_pool", "connection_checks", "explain", "run_checks"]
