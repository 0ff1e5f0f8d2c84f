"""Helpers for tests that talk to the freee sandbox over real HTTP.

::

    with running_sandbox(FreeeSandboxConfig(seed="none")) as sb:
        sb.client.get("/api/1/partners", params={"company_id": sb.company_id})
        sb.store.deals                       # direct access to the state
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI

from renkei.sandboxes.common import Clock, ServerThread

from .app import create_app
from .config import FreeeSandboxConfig
from .store import FreeeStore

__all__ = ["RunningSandbox", "SandboxClient", "running_sandbox"]


class SandboxClient:
    """A minimal freee client: refreshes with the single-use refresh token and sends the bearer token."""

    def __init__(self, base_url: str, config: FreeeSandboxConfig, refresh_token: str) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=10.0)
        self.config = config
        self.refresh_token = refresh_token
        self.access_token: str | None = None

    def refresh(self) -> httpx.Response:
        """Exchange the current refresh token; on success store the rotated pair."""
        response = self.http.post(
            "/public_api/token",
            data={
                "grant_type": "refresh_token",
                "client_id": self.config.client_id,
                "client_secret": self.config.client_secret,
                "refresh_token": self.refresh_token,
            },
        )
        if response.status_code == 200:
            payload = response.json()
            self.access_token = payload["access_token"]
            self.refresh_token = payload["refresh_token"]
        return response

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        if self.access_token is None:
            self.refresh().raise_for_status()
        headers = dict(kwargs.pop("headers", None) or {})
        headers.setdefault("Authorization", f"Bearer {self.access_token}")
        return self.http.request(method, path, headers=headers, **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("PUT", path, **kwargs)

    def close(self) -> None:
        self.http.close()


@dataclass
class RunningSandbox:
    app: FastAPI
    server: ServerThread
    client: SandboxClient
    config: FreeeSandboxConfig

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def store(self) -> FreeeStore:
        return self.app.state.store

    @property
    def clock(self) -> Clock:
        return self.app.state.clock

    @property
    def company_id(self) -> int:
        return self.config.company_id


@contextmanager
def running_sandbox(config: FreeeSandboxConfig | None = None) -> Iterator[RunningSandbox]:
    """Start a sandbox on a free port with a logged-out :class:`SandboxClient` (it refreshes lazily)."""
    config = config or FreeeSandboxConfig(print_refresh_token=False)
    app = create_app(config)
    with ServerThread(app) as server:
        client = SandboxClient(server.url, config, app.state.auth.initial_refresh_token)
        try:
            yield RunningSandbox(app, server, client, config)
        finally:
            client.close()
