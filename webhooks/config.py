"""Build the receiver from Renkei's settings (``RENKEI_WEBHOOK_*``; secrets from the environment or the
Renkei Credentials block) and serve it with uvicorn."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from renkei.webhooks.app import Receiver, create_app
from renkei.webhooks.emit import Emitter, default_emitter
from renkei.webhooks.ledger import Ledger

log = logging.getLogger("renkei.webhooks")


class WonStages:
    """The won deal stages for the receiver's filter: the setting, else the HubSpot pipelines' stages with
    probability 1.0 (read with httpx under the account's pace, cached ten minutes), else None (no filter; the
    flow decides)."""

    def __init__(self, settings: Any, ttl_s: float = 600.0):
        self.settings, self.ttl_s = settings, ttl_s
        self.value: set[str] | None = None
        self.read_at = 0.0
        if settings.webhook_won_stages:
            self.value = {s.strip() for s in settings.webhook_won_stages.split(",") if s.strip()}
            self.read_at = float("inf")

    def __call__(self) -> set[str] | None:
        if time.monotonic() - self.read_at < self.ttl_s:
            return self.value
        self.read_at = time.monotonic()
        try:
            self.value = hubspot_won_stages(self.settings)
        except Exception as exc:  # noqa: BLE001 - unknown stages: pass every stage change on
            log.warning("won stages unknown (%s): every deal stage change is passed on", type(exc).__name__)
            self.value = None
        return self.value


def paced_hubspot_http(settings: Any, timeout_s: float) -> Any:
    """An httpx client for the receiver's HubSpot reads under the account's pace (connectors.hubspot.factory.
    hubspot_pace: the workers' buckets, shared through the state store), so a read never pushes the workers
    over HubSpot's limits. It waits at most ``timeout_s`` for a slot; then the read fails unsent (a stage
    unknown: the event is passed on and the flow decides). Built on first use: the receiver starts without
    importing the connector."""
    import httpx

    from renkei.connectors.hubspot.factory import hubspot_pace

    return httpx.Client(timeout=timeout_s, event_hooks=hubspot_pace(settings, max_wait_s=timeout_s).hooks,
                        headers={"Authorization": f"Bearer {settings.hubspot_token.get_secret_value()}"})


def hubspot_won_stages(settings: Any, timeout_s: float = 10.0) -> set[str] | None:
    if settings.crm != "hubspot" or settings.hubspot_token is None:
        return None
    with paced_hubspot_http(settings, timeout_s) as http:
        resp = http.get(settings.hubspot_base_url.rstrip("/") + "/crm/v3/pipelines/deals")
        resp.raise_for_status()
    won = set()
    for pipeline in resp.json().get("results", []):
        for stage in pipeline.get("stages", []):
            try:
                if float((stage.get("metadata") or {}).get("probability")) == 1.0:
                    won.add(str(stage["id"]))
            except (TypeError, ValueError):
                continue
    return won or None


class DealStages:
    """The current ``dealstage`` of deals, one HubSpot batch read (up to 100 ids) per call, with httpx (no
    connector client, no Prefect import). Used for ``deal.creation`` events, which carry no stage. The read
    takes its slot in the workers' shared rate-limit buckets (:func:`paced_hubspot_http`); a failed read (no
    slot within ``timeout_s``, a 429) only means "stage unknown" (the event is passed on; the flow decides)."""

    def __init__(self, settings: Any, timeout_s: float = 5.0):
        self.settings, self.timeout_s = settings, timeout_s
        self.url = settings.hubspot_base_url.rstrip("/") + "/crm/v3/objects/deals/batch/read"
        self._client: Any = None
        self._lock = threading.Lock()

    @property
    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                self._client = paced_hubspot_http(self.settings, self.timeout_s)
            return self._client

    def __call__(self, ids: list[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        for start in range(0, len(ids), 100):
            resp = self.client.post(self.url, json={"properties": ["dealstage"],
                                                    "inputs": [{"id": i} for i in ids[start:start + 100]]})
            resp.raise_for_status()
            for rec in resp.json().get("results", []):
                stage = (rec.get("properties") or {}).get("dealstage")
                if stage:
                    out[str(rec["id"])] = str(stage)
        return out


def _secret(value: Any) -> str | None:
    return value.get_secret_value() if value is not None else None


def receiver_from_settings(settings: Any = None, *, emitter: Emitter | None = None) -> Receiver:
    from renkei.settings import get_settings

    settings = settings or get_settings()
    if settings.credentials_block:  # only then pay Prefect's import (once, at start)
        from renkei.blocks import settings_with_block

        settings = settings_with_block(settings)
    ledger = Ledger.open(settings.database_url)
    return Receiver(ledger=ledger, emitter=emitter or default_emitter(),
                    hubspot_secret=_secret(settings.webhook_hubspot_secret),
                    inbound_secret=_secret(settings.webhook_inbound_secret), won_stages=WonStages(settings),
                    deal_stages=(DealStages(settings)
                                 if settings.crm == "hubspot" and settings.hubspot_token else None),
                    public_url=settings.webhook_public_url, batch_seconds=settings.webhook_batch_seconds,
                    max_runs=settings.webhook_max_runs, run_seconds=settings.webhook_run_seconds)


def serve(host: str = "127.0.0.1", port: int = 8090, *, log_level: str = "warning") -> None:
    import uvicorn

    t0 = time.perf_counter()
    receiver = receiver_from_settings()
    app = create_app(receiver)
    log.warning("webhook receiver ready in %.2f s on http://%s:%d", time.perf_counter() - t0, host, port)
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False)
