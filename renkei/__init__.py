"""Renkei (連携): code-first CRM ⇄ ERP integration with Prefect flows — the application shell."""

__version__ = "0.1.0"
