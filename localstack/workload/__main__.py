"""``python -m localstack.workload db|app|web [options]``: what a lab instance's user data runs."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence

from localstack.pg import PgError


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m localstack.workload")
    tiers = parser.add_subparsers(dest="tier", required=True)
    db = tiers.add_parser("db", help="PostgreSQL; --primary adds the schema, --dump-to the backup schedule")
    db.add_argument("--primary", action="store_true")
    db.add_argument("--dump-to", help="s3://bucket/key of the scheduled pg_dump")
    db.add_argument("--dump-every", type=float, default=10.0, help="seconds between dumps")
    app = tiers.add_parser("app", help="the orders service")
    app.add_argument("--port", type=int, default=8080)
    app.add_argument("--writer-rate", type=float, default=0.0, help="orders a second the writer commits")
    web = tiers.add_parser("web", help="the shop's page")
    web.add_argument("--port", type=int, default=8000)
    web.add_argument("--app-port", type=int, default=8080)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    stop = threading.Event()
    # The runner stops an instance with SIGTERM to its session: finish cleanly (postgres shuts down fast).
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        if args.tier == "db":
            from localstack.workload import db

            db.serve(args.primary, args.dump_to, args.dump_every, stop)
        elif args.tier == "app":
            from localstack.workload import app

            app.serve(args.port, args.writer_rate, stop)
        else:
            from localstack.workload import web

            web.serve(args.port, args.app_port, stop)
    except PgError as err:
        print(f"{args.tier}: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
