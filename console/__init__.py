"""``renkei console``: a small local, read-only web app over the reporting snapshots in the state store.

Server-rendered pages (FastAPI + Jinja2, every value HTML-escaped) and Chart.js served from this package's
``static/`` folder (no CDN: it works offline). Pages: overview, receivables aging, customer profitability,
drift, review and approval queues, deal trace and search. See ``docs/console.md``.
"""

from __future__ import annotations

from renkei.console.app import DEFAULT_HOST, DEFAULT_PORT, create_app

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "create_app"]
