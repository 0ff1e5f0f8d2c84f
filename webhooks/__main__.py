"""``python -m renkei.webhooks [--host H] [--port P]``: the receiver without the CLI's imports."""

import argparse

from renkei.webhooks.config import serve

parser = argparse.ArgumentParser(prog="python -m renkei.webhooks")
parser.add_argument("--host", default="127.0.0.1")
parser.add_argument("--port", type=int, default=8090)
args = parser.parse_args()
serve(args.host, args.port)
