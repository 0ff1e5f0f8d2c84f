"""``python -m renkei.sandboxes.salesforce [--port 8083] [--seed demo|none] [--tls]`` — run the Salesforce
sandbox alone (``--tls`` for simple-salesforce, which only speaks https; the CA file is printed)."""

from __future__ import annotations

import argparse

from renkei.sandboxes.common import serve_forever

from . import SalesforceSandboxConfig, create_app
from .spec import SPEC


def main() -> None:
    parser = argparse.ArgumentParser(description="Renkei Salesforce sandbox")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=SPEC.default_port)
    parser.add_argument("--seed", choices=("demo", "none"), default="demo")
    parser.add_argument("--tls", action="store_true", help="serve https with a throw-away CA (printed)")
    args = parser.parse_args()
    config = SalesforceSandboxConfig(seed=args.seed)
    app = create_app(config)
    scheme = "https" if args.tls else "http"
    for k, v in SPEC.env(f"{scheme}://{args.host}:{args.port}", app).items():
        print(f"{k}={v}")
    if args.tls:
        import uvicorn

        from .tls import certificate

        cert = certificate()
        print(f"# trust this CA: {cert.ca_file}")
        uvicorn.run(app, host=args.host, port=args.port, ssl_certfile=cert.cert_file, ssl_keyfile=cert.key_file,
                    log_level="info")
        return
    serve_forever([(app, args.port)], host=args.host)


if __name__ == "__main__":
    main()
