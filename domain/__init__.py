"""Pure business rules: canonical model, normalisation, tax, matching, proration, reconciliation.

Nothing in this package imports Prefect, httpx, the store or a connector.
"""
