"""Build the HubSpot connector from Renkei's settings (the registry's ``build`` for ``RENKEI_CRM=hubspot``)."""

from __future__ import annotations

from typing import Any

from renkei.connectors.hubspot.checks import check  # noqa: F401  (the registry's connection checks)
from renkei.connectors.hubspot.client import HubSpotClient
from renkei.connectors.hubspot.connector import HubSpotCRM


def build(settings: Any, store: Any, policy: Any) -> HubSpotCRM:
    return HubSpotCRM(HubSpotClient(settings.hubspot_base_url, settings.hubspot_token))
