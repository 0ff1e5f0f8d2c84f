"""Build the HubSpot connector from Renkei's settings (the registry's ``build`` for ``RENKEI_CRM=hubspot``)."""

from __future__ import annotations

from typing import Any

from renkei.connectors.hubspot.checks import check  # noqa: F401  (the registry's connection checks)
from renkei.connectors.hubspot.client import HubSpotClient, paced_limits
from renkei.connectors.hubspot.connector import HubSpotCRM
from renkei.store.ratelimit import DbRateLimiter, limiter_for, shared_backend, zone_offset_s


def hubspot_rate_scope(settings: Any) -> str:
    """HubSpot's 10-second and search buckets are per account (and app): one scope per API base URL and token
    (a short digest, never the token), so two sandboxes or two portals never share buckets."""
    import hashlib

    token = settings.hubspot_token.get_secret_value() if settings.hubspot_token else ""
    digest = hashlib.sha256(f"{settings.hubspot_base_url}|{token}".encode()).hexdigest()[:12]
    return f"hubspot:{digest}"


def hubspot_daily_cap(settings: Any) -> int | None:
    """The daily requests Renkei allows itself in the account (``RENKEI_HUBSPOT_DAILY_CAP``; 0 / None: not
    counted)."""
    return getattr(settings, "hubspot_daily_cap", None) or None


def hubspot_day_offset_s(settings: Any) -> float:
    """The account zone's UTC offset now (HubSpot resets the daily limit at midnight in the account's zone;
    the limiter follows the zone's own midnights, :func:`hubspot_day_zone`)."""
    return zone_offset_s(hubspot_day_zone(settings))


def hubspot_day_zone(settings: Any) -> str:
    """The IANA zone of the account's day (``RENKEI_HUBSPOT_TIMEZONE``, default Asia/Tokyo)."""
    return getattr(settings, "hubspot_timezone", None) or "Asia/Tokyo"


def shared_hubspot_limiter(settings: Any, engine: Any) -> DbRateLimiter | None:
    """The account's shared buckets (the client's: same scope, limits and day) for a HubSpot request made
    outside the client — the webhook receiver's batch read of created deals' stages; ``None`` when limits
    are not shared (``RENKEI_RATE_LIMITS``, the store's database). A request takes ``default`` (and ``daily``
    when the daily cap is counted)."""
    if not shared_backend(settings, engine):
        return None
    return DbRateLimiter(engine, hubspot_rate_scope(settings), paced_limits(daily_cap=hubspot_daily_cap(settings)),
                         calendar_offset_s=hubspot_day_offset_s(settings), calendar_zone=hubspot_day_zone(settings))


def build(settings: Any, store: Any, policy: Any) -> HubSpotCRM:
    return HubSpotCRM(HubSpotClient(
        settings.hubspot_base_url, settings.hubspot_token, daily_cap=hubspot_daily_cap(settings),
        limiter_factory=lambda limits: limiter_for(settings, store, hubspot_rate_scope(settings), limits,
                                                   calendar_offset_s=hubspot_day_offset_s(settings),
                                                   calendar_zone=hubspot_day_zone(settings))))
