"""Build the HubSpot connector from Renkei's settings (the registry's ``build`` for ``RENKEI_CRM=hubspot``)."""

from __future__ import annotations

from typing import Any

from renkei.connectors.hubspot.checks import check  # noqa: F401  (the registry's connection checks)
from renkei.connectors.hubspot.client import HubSpotClient, make_retry_after, paced_limits, parse_hubspot_error
from renkei.connectors.hubspot.connector import HubSpotCRM
from renkei.connectors.http import PaceHooks, error_from_response
from renkei.store.ratelimit import limiter_for, zone_offset_s


# HubSpot's 1-second search window is a hard limit (429): a shared slot is reused at least this long after its
# window, since requests reach HubSpot up to ~180 ms after their slot's time on a loaded host
# (store.ratelimit.DbRateLimiter's guard; benchmarks/scale_out.py drew a search 429 without it)
GUARD_MIN_S = 0.15


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


def hubspot_limits(settings: Any) -> dict[str, tuple]:
    """The buckets every HubSpot request of Renkei takes — the connector's client, its connection checks, the
    webhook receiver's reads, ``renkei setup``'s rows: the documented 10-second and search limits under the
    default headroom, and the account's day when a cap is set. One definition: a bucket built with other
    limits would restart the shared ring (store.ratelimit.ensure_buckets)."""
    return paced_limits(daily_cap=hubspot_daily_cap(settings))


def hubspot_buckets(request: Any) -> tuple[str, ...]:
    """The pace bucket of one request, as :meth:`HubSpotClient.request` names it (and as HubSpot counts it): a
    CRM search takes the search bucket, anything else the 10-second one. (Every request also takes the day's
    bucket when a cap is counted: :func:`hubspot_pace` adds it.)"""
    search = request.method == "POST" and request.url.path.endswith("/search")
    return ("search",) if search else ("default",)


def hubspot_limiter(settings: Any, store: Any, limits: dict[str, tuple] | None = None) -> Any:
    """The account's limiter: shared through ``store`` when the limits are shared, else in-process. ``store``
    None: the state store of the settings (a caller with no store at hand)."""
    limits = hubspot_limits(settings) if limits is None else limits
    kw = {"calendar_offset_s": hubspot_day_offset_s(settings), "calendar_zone": hubspot_day_zone(settings),
          "guard_min_s": GUARD_MIN_S}
    return limiter_for(settings, store, hubspot_rate_scope(settings), limits, **kw)


def hubspot_pace(settings: Any, store: Any = None, *, max_wait_s: float | None = None) -> PaceHooks:
    """The account's pace for the callers that use plain httpx instead of the connector's client (connection
    checks, the webhook receiver): ``httpx.Client(event_hooks=hubspot_pace(settings).hooks)``. Each request
    takes its slot in the same buckets as the workers' requests, and a 429 blocks them for every process."""
    limiter = hubspot_limiter(settings, store)
    daily = ("daily",) if limiter is not None and "daily" in limiter.limits else ()
    wait_after = make_retry_after()
    return PaceHooks(limiter, lambda request: hubspot_buckets(request) + daily,
                     retry_after=lambda r: wait_after(r, error_from_response(r, parse_hubspot_error)),
                     max_wait_s=max_wait_s)


def build(settings: Any, store: Any, policy: Any) -> HubSpotCRM:
    return HubSpotCRM(HubSpotClient(
        settings.hubspot_base_url, settings.hubspot_token, daily_cap=hubspot_daily_cap(settings),
        limiter_factory=lambda limits: limiter_for(settings, store, hubspot_rate_scope(settings), limits,
                                                   calendar_offset_s=hubspot_day_offset_s(settings),
                                                   calendar_zone=hubspot_day_zone(settings),
                                                   guard_min_s=GUARD_MIN_S)))
