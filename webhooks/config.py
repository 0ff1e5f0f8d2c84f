"""Build the receiver from Renkei's settings (``RENKEI_WEBHOOK_*``; secrets from the environment or the
Renkei Credentials block) and serve it with uvicorn."""

from __future__ import annotations

import logging
import time
from typing import Any

from renkei.webhooks.app import Receiver, create_app
from renkei.webhooks.emit import Emitter, default_emitter
from renkei.webhooks.ledger import Ledger

log = logging.getLogger("renkei.webhooks")


class WonStages:
    """The won deal stages for the receiver's filter: the setting, else the HubSpot pipelines' stages with
    probability 1.0 (read with httpx, cached ten minutes), else None (no filter; the flow decides)."""

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


def hubspot_won_stages(settings: Any) -> set[str] | None:
    if settings.crm != "hubspot" or settings.hubspot_token is None:
        return None
    import httpx

    resp = httpx.get(settings.hubspot_base_url.rstrip("/") + "/crm/v3/pipelines/deals", timeout=10,
                     headers={"Authorization": f"Bearer {settings.hubspot_token.get_secret_value()}"})
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
    connector, no Prefect import). Used for ``deal.creation`` events, which carry no stage. With shared
    limits (``engine`` = the receiver's database, shared per ``RENKEI_RATE_LIMITS``) each read takes a slot
    in the workers' HubSpot buckets first (``default``, and ``daily`` when counted) and a 429 blocks them for
    everyone, like any HubSpot request; no slot within ``timeout_s`` (or the day's cap used up) and a failed
    read (a 429 included) only mean "stage unknown" (the event is passed on; the flow decides)."""

    def __init__(self, settings: Any, timeout_s: float = 5.0, engine: Any = None):
        import httpx

        self.url = settings.hubspot_base_url.rstrip("/") + "/crm/v3/objects/deals/batch/read"
        self.client = httpx.Client(timeout=timeout_s, headers={
            "Authorization": f"Bearer {settings.hubspot_token.get_secret_value()}"})
        self.timeout_s, self.limiter = timeout_s, None
        if engine is not None:
            from renkei.connectors.hubspot.factory import shared_hubspot_limiter

            self.limiter = shared_hubspot_limiter(settings, engine)
        self.buckets = ("default",) + (("daily",) if self.limiter is not None and "daily" in self.limiter.limits
                                       else ())

    def __call__(self, ids: list[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        for start in range(0, len(ids), 100):
            if self.limiter is not None:
                self.limiter.acquire(*self.buckets, timeout=self.timeout_s)  # QuotaExhausted / TimeoutError: unknown
            resp = self.client.post(self.url, json={"properties": ["dealstage"],
                                                    "inputs": [{"id": i} for i in ids[start:start + 100]]})
            if resp.status_code == 429 and self.limiter is not None:
                from renkei.connectors.http import parse_retry_after

                self.limiter.penalise("default", parse_retry_after(resp.headers.get("retry-after")) or 1.0)
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
                    deal_stages=(DealStages(settings, engine=ledger.engine)
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
