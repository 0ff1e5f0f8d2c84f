"""``python -m renkei.sandboxes.freee [--port 8082] [--seed demo|none] [--refresh-token TOKEN] ...``

Serves the freee sandbox in the foreground and prints the first refresh token. Point both
``RENKEI_FREEE_BASE_URL`` and ``RENKEI_FREEE_AUTH_URL`` at ``http://HOST:PORT``.
"""

from __future__ import annotations

import argparse

from renkei.sandboxes.common import FaultConfig, serve_forever

from . import FreeeSandboxConfig, create_app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m renkei.sandboxes.freee", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8082)
    parser.add_argument("--seed", choices=("demo", "none"), default="demo")
    parser.add_argument("--refresh-token", default=None, help="first refresh token (default: generated)")
    parser.add_argument("--company-id", type=int, default=1)
    parser.add_argument("--daily-cap", type=int, default=0)
    parser.add_argument("--latency-ms", type=int, default=0)
    parser.add_argument("--fault-rate", type=float, default=0.0)
    parser.add_argument("--fault-seed", type=int, default=None)
    args = parser.parse_args(argv)
    config = FreeeSandboxConfig(
        refresh_token=args.refresh_token,
        company_id=args.company_id,
        seed=args.seed,
        daily_cap=args.daily_cap,
        faults=FaultConfig(latency_ms=args.latency_ms, fault_rate=args.fault_rate, fault_seed=args.fault_seed),
    )
    serve_forever([(create_app(config), args.port)], host=args.host)


if __name__ == "__main__":
    main()
