"""The scale-out stack on one machine: ``renkei stack up`` / ``renkei stack down`` / ``renkei stack status``.

``up`` starts, each in its own process group with its log under ``<home>/logs``:

1. two databases on a PostgreSQL server (``--postgres``, default the ``.ci/postgres.sh`` server): one for the
   Prefect server (``<prefix>_prefect``), one for Renkei's state store (``<prefix>_state``, migrated);
2. the sandboxes (HubSpot + freee, ``renkei sandbox serve``) unless ``--no-sandboxes`` (then the
   ``RENKEI_*`` API settings of this shell are passed on);
3. a Prefect server on PostgreSQL (``PREFECT_API_DATABASE_CONNECTION_URL``);
4. the process work pool ``renkei`` and the deployments of ``prefect.yaml`` (``prefect deploy --all``);
5. ``--workers`` (default 3) process workers on that pool, all with the same state store and ``RENKEI_HOME``
   (so the same data key: the freee token set and the rate-limit buckets are shared through the store);
6. the webhook receiver (``renkei webhooks serve``) when ``--webhooks`` is given and the command exists.

What ran is written to ``<home>/stack.json``; ``down`` stops it in reverse order: every process group
(SIGTERM, then SIGKILL after a grace period) **and** every descendant that left its group (a flow run a
worker started in a new session), found by walking ``/proc`` before the first signal — so nothing is
orphaned (``renkei.prefect_server`` does the same for the single-server commands). ``down --drop`` also
drops the two databases.

    renkei stack up                       # prints the URLs and the environment of the workers
    renkei stack status
    renkei stack down [--drop]
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

DEFAULT_POSTGRES = "postgresql+psycopg2://postgres@127.0.0.1:55432/postgres"
SANDBOX_REFRESH_TOKEN = "renkei-stack-refresh-token"
POOL = "renkei"  # the work pool of prefect.yaml


@dataclass
class StackProcess:
    name: str
    pid: int
    log: str
    health: str | None = None  # URL answering 200 when up


@dataclass
class StackState:
    home: str
    prefect_api_url: str
    prefect_db: str
    state_db: str
    postgres: str
    env: dict[str, str] = field(default_factory=dict)  # what the workers got (no secret values: sandbox ones)
    processes: list[StackProcess] = field(default_factory=list)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> "StackState":
        d = json.loads(path.read_text(encoding="utf-8"))
        d["processes"] = [StackProcess(**p) for p in d.get("processes", [])]
        return cls(**d)


def _bin(name: str) -> str:
    return shutil.which(name, path=str(Path(sys.executable).parent)) or name


def _db_url(admin_url: str, db: str, driver: str = "postgresql+psycopg2") -> str:
    base = admin_url.rsplit("/", 1)[0]
    return driver + base[base.index("://"):] + f"/{db}"


def create_databases(admin_url: str, names: list[str]) -> None:
    import sqlalchemy

    engine = sqlalchemy.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        for name in names:
            if not conn.exec_driver_sql("SELECT 1 FROM pg_database WHERE datname = %(n)s", {"n": name}).first():
                conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    engine.dispose()


def drop_databases(admin_url: str, names: list[str]) -> None:
    import sqlalchemy

    engine = sqlalchemy.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        for name in names:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    engine.dispose()


def _spawn(name: str, argv: list[str], env: dict[str, str], home: Path, cwd: Path | None = None,
           health: str | None = None) -> StackProcess:
    logs = home / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / f"{name}.log"
    with log_path.open("ab") as log:
        proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, cwd=str(cwd) if cwd else None)
    return StackProcess(name=name, pid=proc.pid, log=str(log_path), health=health)


def _wait_http(url: str, timeout_s: float, proc: StackProcess | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and not _alive(proc.pid):
            raise RuntimeError(f"{proc.name} exited during start-up (see {proc.log})")
        try:
            if httpx.get(url, timeout=2.0).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{url} not answering after {timeout_s:.0f}s")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is gone for our purposes
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def _children_map() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            ppid = int((d / "stat").read_text().split(")")[-1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        kids.setdefault(ppid, []).append(int(d.name))
    return kids


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (Linux ``/proc``; empty elsewhere)."""
    if not Path("/proc").is_dir():
        return []
    kids, out, todo = _children_map(), [], [pid]
    while todo:
        p = todo.pop()
        for c in kids.get(p, []):
            out.append(c)
            todo.append(c)
    return out


def stop_tree(pid: int, grace_s: float = 15.0) -> None:
    """SIGTERM ``pid``'s process group and every descendant (also those in other groups), then SIGKILL."""
    victims = [pid, *descendants(pid)]
    groups = set()
    for p in victims:
        try:
            groups.add(os.getpgid(p))
        except ProcessLookupError:
            pass
    for g in groups:
        try:
            os.killpg(g, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            pass
    for p in victims:
        try:
            os.kill(p, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            pass
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and any(_alive(p) for p in victims):
        _reap(victims)
        time.sleep(0.2)
    for p in victims:
        if _alive(p):
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
    _reap(victims)


def _reap(pids: list[int]) -> None:
    for p in pids:
        try:
            os.waitpid(p, os.WNOHANG)
        except ChildProcessError:
            pass


def worker_env(*, state_url: str, home: Path, api_url: str, hubspot_url: str | None, freee_url: str | None,
               extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {"RENKEI_DATABASE_URL": state_url, "RENKEI_HOME": str(home / "renkei-home"), "PREFECT_API_URL": api_url,
           "RENKEI_RATE_LIMITS": "shared", "PREFECT_LOGGING_LEVEL": "INFO",
           # a worker asks for new runs every 5 s (Prefect's default 10 s): a run created now starts sooner
           "PREFECT_WORKER_QUERY_SECONDS": "5"}
    if hubspot_url:
        env.update({"RENKEI_HUBSPOT_BASE_URL": hubspot_url, "RENKEI_HUBSPOT_TOKEN": "renkei-sandbox-token"})
    if freee_url:
        env.update({"RENKEI_FREEE_BASE_URL": freee_url, "RENKEI_FREEE_AUTH_URL": freee_url,
                    "RENKEI_FREEE_CLIENT_ID": "renkei-sandbox-client",
                    "RENKEI_FREEE_CLIENT_SECRET": "renkei-sandbox-secret",
                    "RENKEI_FREEE_REFRESH_TOKEN": SANDBOX_REFRESH_TOKEN, "RENKEI_FREEE_COMPANY_ID": "1"})
    env.update(extra or {})
    return env


def up(*, home: Path, postgres: str = DEFAULT_POSTGRES, workers: int = 3, prefect_port: int = 4300,
       sandboxes: bool = True, hubspot_port: int = 8081, freee_port: int = 8082, webhooks: bool = False,
       webhooks_port: int = 8090, prefix: str = "renkei_stack", deploy: bool = True, worker_limit: int = 4,
       extra_env: dict[str, str] | None = None, sandbox_args: list[str] | None = None,
       say: Any = print) -> StackState:
    """Start the stack (see the module docstring). Raises if it is already up; stops what it started on error."""
    home = home.resolve()
    home.mkdir(parents=True, exist_ok=True)
    state_file = home / "stack.json"
    if state_file.exists():
        st = StackState.load(state_file)
        if any(_alive(p.pid) for p in st.processes):
            raise RuntimeError(f"a stack is already up ({state_file}); `renkei stack down` first")
    prefect_db, state_db = f"{prefix}_prefect", f"{prefix}_state"
    create_databases(postgres, [prefect_db, state_db])
    state_url = _db_url(postgres, state_db)
    api_url = f"http://127.0.0.1:{prefect_port}/api"
    st = StackState(home=str(home), prefect_api_url=api_url, prefect_db=prefect_db, state_db=state_db,
                    postgres=postgres)
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "RENKEI_"))}
    try:
        from renkei.store.repo import Store

        Store.open(state_url, cached=False).engine.dispose()  # migrate the state store once, before any worker
        say(f"state store: PostgreSQL database {state_db} (migrated)")

        hubspot_url = freee_url = None
        if sandboxes:
            hubspot_url, freee_url = f"http://127.0.0.1:{hubspot_port}", f"http://127.0.0.1:{freee_port}"
            p = _spawn("sandboxes", [_bin("renkei"), "sandbox", "serve", "--hubspot-port", str(hubspot_port),
                                     "--freee-port", str(freee_port), "--freee-refresh-token", SANDBOX_REFRESH_TOKEN,
                                     *(sandbox_args or [])], base_env, home, health=f"{freee_url}/health")
            st.processes.append(p)
            st.save(state_file)
            _wait_http(f"{hubspot_url}/", 60, p)
            say(f"sandboxes: HubSpot {hubspot_url}, freee {freee_url}")

        prefect_env = {**base_env, "PREFECT_HOME": str(home / "prefect"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                       "PREFECT_API_DATABASE_CONNECTION_URL": _db_url(postgres, prefect_db, "postgresql+asyncpg"),
                       "PREFECT_UI_API_URL": api_url, "PREFECT_SERVER_LOG_RETRYABLE_ERRORS": "false",
                       # a run that finds order-to-invoice's concurrency limit full is retried after 2 s, not
                       # Prefect's 30 s (docs/webhooks.md, "Latency")
                       "PREFECT_SERVER_DEPLOYMENTS_CONCURRENCY_SLOT_WAIT_SECONDS": "2"}
        p = _spawn("prefect-server", [_bin("prefect"), "server", "start", "--host", "127.0.0.1", "--port",
                                      str(prefect_port), "--analytics-off"], prefect_env, home,
                   health=f"{api_url}/health")
        st.processes.append(p)
        st.save(state_file)
        _wait_http(f"{api_url}/health", 180, p)
        say(f"Prefect server: {api_url.removesuffix('/api')} (database {prefect_db})")

        env = {**base_env, **worker_env(state_url=state_url, home=home, api_url=api_url, hubspot_url=hubspot_url,
                                         freee_url=freee_url, extra=extra_env),
               "PREFECT_HOME": str(home / "prefect-client")}
        if not sandboxes:  # the APIs of this shell
            env.update({k: v for k, v in os.environ.items() if k.startswith("RENKEI_") and k not in env})
        st.env = {k: ("******" if any(w in k for w in ("TOKEN", "SECRET", "KEY")) else v)
                  for k, v in env.items() if k.startswith(("RENKEI_", "PREFECT_API"))}
        root = Path(__file__).resolve().parents[1]
        subprocess.run([_bin("prefect"), "work-pool", "create", POOL, "--type", "process", "--overwrite"],
                       env=env, check=True, capture_output=True, timeout=120)
        if deploy:
            r = subprocess.run([_bin("prefect"), "--no-prompt", "deploy", "--all"], env=env, cwd=str(root),
                               capture_output=True, text=True, timeout=600)
            if r.returncode != 0:
                raise RuntimeError(f"prefect deploy failed: {r.stdout[-800:]} {r.stderr[-800:]}")
            say("deployments: prefect.yaml → work pool renkei (schedules paused)")
        for i in range(1, workers + 1):
            p = _spawn(f"worker-{i}", [_bin("prefect"), "worker", "start", "--pool", POOL, "--name",
                                       f"renkei-stack-{i}", "--limit", str(worker_limit), "--type", "process"],
                       env, home, cwd=root)
            st.processes.append(p)
        st.save(state_file)
        say(f"workers: {workers} process workers on pool {POOL} (limit {worker_limit} runs each)")

        if webhooks:
            # the webhook receiver (branch h16hooks): started when this installation has the command
            r = subprocess.run([_bin("renkei"), "webhooks", "serve", "--help"], env=env, capture_output=True,
                               timeout=60)
            if r.returncode == 0:
                p = _spawn("webhooks", [_bin("renkei"), "webhooks", "serve", "--port", str(webhooks_port)], env, home)
                st.processes.append(p)
                st.save(state_file)
                say(f"webhook receiver: http://127.0.0.1:{webhooks_port}")
            else:
                say("webhook receiver: `renkei webhooks serve` is not in this installation: skipped")
        time.sleep(1.0)
        dead = [p.name for p in st.processes if not _alive(p.pid)]
        if dead:
            raise RuntimeError(f"exited during start-up: {', '.join(dead)} (logs in {home / 'logs'})")
        return st
    except BaseException:
        for p in reversed(st.processes):
            stop_tree(p.pid)
        state_file.unlink(missing_ok=True)
        raise


def down(home: Path, *, drop: bool = False, say: Any = print) -> list[str]:
    """Stop what ``up`` started (reverse order); returns the names stopped."""
    state_file = home.resolve() / "stack.json"
    if not state_file.exists():
        say("no stack is up here")
        return []
    st = StackState.load(state_file)
    stopped = []
    for p in reversed(st.processes):
        if _alive(p.pid) or descendants(p.pid):
            stop_tree(p.pid)
            stopped.append(p.name)
    if drop:
        drop_databases(st.postgres, [st.prefect_db, st.state_db])
        say(f"dropped databases {st.prefect_db}, {st.state_db}")
    state_file.unlink(missing_ok=True)
    say(f"stopped: {', '.join(stopped) or 'nothing was running'}")
    return stopped


def status(home: Path) -> list[dict[str, Any]]:
    state_file = home.resolve() / "stack.json"
    if not state_file.exists():
        return []
    st = StackState.load(state_file)
    rows = []
    for p in st.processes:
        healthy = None
        if p.health:
            try:
                healthy = httpx.get(p.health, timeout=2.0).status_code < 500
            except httpx.HTTPError:
                healthy = False
        rows.append({"name": p.name, "pid": p.pid, "alive": _alive(p.pid), "healthy": healthy, "log": p.log})
    return rows
