"""Renkei's settings for tests that run against the local sandboxes."""

from __future__ import annotations

from pathlib import Path


def sandbox_env(hubspot, freee, tmp: Path, *, db: Path | None = None) -> dict[str, str]:
    """Renkei's settings pointing at a HubSpot and a freee sandbox (the ``hubspot_sandbox`` /
    ``freee_sandbox`` fixtures' ``ServerThread``s), with a SQLite store (``db``, default ``tmp/renkei.db``) and ``RENKEI_HOME`` under ``tmp``."""
    return {
        "RENKEI_HUBSPOT_BASE_URL": hubspot.url,
        "RENKEI_HUBSPOT_TOKEN": hubspot.config.token,
        "RENKEI_FREEE_BASE_URL": freee.url,
        "RENKEI_FREEE_AUTH_URL": freee.url,
        "RENKEI_FREEE_CLIENT_ID": freee.config.client_id,
        "RENKEI_FREEE_CLIENT_SECRET": freee.config.client_secret,
        "RENKEI_FREEE_REFRESH_TOKEN": freee.config.refresh_token,
        "RENKEI_FREEE_COMPANY_ID": str(freee.config.company_id),
        "RENKEI_DATABASE_URL": f"sqlite:///{db or tmp / 'renkei.db'}",
        "RENKEI_HOME": str(tmp / ".renkei"),
    }
