"""``python -m renkei.sandboxes.hubspot [--port 8081] [--seed demo|none]`` — run the HubSpot sandbox alone."""

from __future__ import annotations

import argparse

from renkei.sandboxes.common import serve_forever

from . import HubSpotSandboxConfig, create_app


def main() -> None:
    parser = argparse.ArgumentParser(description="Renkei HubSpot sandbox")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--seed", choices=("demo", "none"), default="demo")
    parser.add_argument("--token", default=HubSpotSandboxConfig.token)
    args = parser.parse_args()
    serve_forever([(create_app(HubSpotSandboxConfig(token=args.token, seed=args.seed)), args.port)], host=args.host)


if __name__ == "__main__":
    main()
