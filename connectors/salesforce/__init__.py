"""Salesforce CRM connector: :class:`SalesforceClient` (REST API, raw records), :mod:`.mapping`
(⇄ canonical model), :mod:`.fields` (the ``Renkei_*__c`` custom fields), :class:`SalesforceCRM`
(CRMConnector façade), :mod:`.factory` (registry entry)."""

from renkei.connectors.salesforce.auth import SalesforceAuth, sign_jwt
from renkei.connectors.salesforce.client import ApiBudget, SalesforceClient, Watermark, parse_salesforce_error
from renkei.connectors.salesforce.connector import SalesforceCRM, SalesforceSetupError
from renkei.connectors.salesforce.fields import RENKEI_FIELDS, field_name
from renkei.connectors.salesforce.settings import SalesforceSettings

__all__ = ["ApiBudget", "RENKEI_FIELDS", "SalesforceAuth", "SalesforceCRM", "SalesforceClient", "SalesforceSettings",
           "SalesforceSetupError", "Watermark", "field_name", "parse_salesforce_error", "sign_jwt"]
