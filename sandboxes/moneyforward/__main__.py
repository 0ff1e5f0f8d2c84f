"""``python -m renkei.sandboxes.moneyforward [--port 8084] [--seed demo|none] [--numbering auto|manual] ...``

Serves the Money Forward クラウド請求書 sandbox in the foreground and prints the first refresh token. Point
``RENKEI_MONEYFORWARD_AUTH_URL`` at ``http://HOST:PORT`` and ``RENKEI_MONEYFORWARD_BASE_URL`` at
``http://HOST:PORT/api/v3``.
"""

from __future__ import annotations

import argparse

from renkei.sandboxes.common import FaultConfig, serve_forever

from .config import ROUNDINGS
from .spec import SPEC


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m renkei.sandboxes.moneyforward", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=SPEC.default_port)
    parser.add_argument("--seed", choices=("demo", "none"), default="demo")
    parser.add_argument("--refresh-token", default=None, help="first refresh token (default: generated)")
    parser.add_argument("--numbering", choices=("auto", "manual"), default="auto")
    parser.add_argument("--rounding-consumption-tax", choices=ROUNDINGS, default="round_down")
    parser.add_argument("--no-registration-code", action="store_true", help="office without 登録番号")
    parser.add_argument("--monthly-document-cap", type=int, default=0)
    parser.add_argument("--latency-ms", type=int, default=0)
    parser.add_argument("--fault-rate", type=float, default=0.0)
    parser.add_argument("--fault-seed", type=int, default=None)
    args = parser.parse_args(argv)
    options = dict(refresh_token=args.refresh_token, numbering=args.numbering,
                   rounding_consumption_tax=args.rounding_consumption_tax,
                   monthly_document_cap=args.monthly_document_cap,
                   faults=FaultConfig(latency_ms=args.latency_ms, fault_rate=args.fault_rate, fault_seed=args.fault_seed))
    if args.no_registration_code:
        options["registration_code"] = None
    serve_forever([(SPEC.app(seed=args.seed, **options), args.port)], host=args.host)


if __name__ == "__main__":
    main()
