"""HubSpot CRM connector: :class:`HubSpotClient` (API), :mod:`.mapping` (⇄ canonical model),
:mod:`.properties` (custom ``renkei_*`` properties), :class:`HubSpotCRM` (CRMConnector façade)."""

from renkei.connectors.hubspot.client import (
    DEFAULT_HEADROOM, DOCUMENTED_LIMITS, BatchResult, HubSpotClient, ObjectApi, SecretBlockToken, Watermark, modified_property,
    parse_hubspot_error, token_from_secret_block, token_from_settings,
)
from renkei.connectors.hubspot.connector import HubSpotCRM
from renkei.connectors.hubspot.properties import RENKEI_PROPERTIES, PropertyManager, PropertySpec

__all__ = [
    "DEFAULT_HEADROOM", "DOCUMENTED_LIMITS", "BatchResult", "HubSpotCRM", "HubSpotClient", "ObjectApi", "PropertyManager", "PropertySpec",
    "RENKEI_PROPERTIES", "SecretBlockToken", "Watermark", "modified_property", "parse_hubspot_error",
    "token_from_secret_block", "token_from_settings",
]
