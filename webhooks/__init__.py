"""Webhook receiver: HubSpot v3-signed change notifications and signed generic inbound webhooks (Zapier,
Make) → Prefect events that trigger the deployments (``prefect.yaml`` triggers). Installed as
``renkei.webhooks``; served by ``renkei webhooks serve``. See docs/webhooks.md.

Kept lean on purpose: nothing here imports Prefect or the flows at module level, so the receiver starts
in about a second and answers a delivery in milliseconds (events go to the Prefect REST API with httpx).
"""
