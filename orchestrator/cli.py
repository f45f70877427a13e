"""The ``drctl`` command line. Every failure ends in one line on stderr and an exit code from ``ExitCode``."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence

from orchestrator import __version__
from orchestrator.errors import DrError, ExitCode
from orchestrator.providers.factory import StoreFactory

Handler = Callable[[argparse.Namespace], int]


def _cmd_ls(args: argparse.Namespace) -> int:
    store = StoreFactory(dict(os.environ), azure_account=args.azure_account).open(args.location)
    store.ensure_root()
    count = total = 0
    for info in store.list():
        count += 1
        total += info.size
        if args.json:
            print(
                json.dumps(
                    {"key": info.key, "size": info.size, "modified": info.modified.isoformat(), "etag": info.etag}
                )
            )
        else:
            print(f"{info.size:>14}  {info.modified:%Y-%m-%d %H:%M:%S}  {info.key}")
    if not args.json:
        print(f"{count} objects, {total} bytes", file=sys.stderr)
    return ExitCode.OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="drctl", description="Multi-cloud disaster-recovery orchestrator.")
    parser.add_argument("--version", action="version", version=f"drctl {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    ls = sub.add_parser("ls", help="list the objects at a location (s3://, az://, file:// or a path)")
    ls.add_argument("location")
    ls.add_argument("--azure-account", help="storage account for az:// locations (default: from the environment)")
    ls.add_argument("--json", action="store_true", help="one JSON object per line")
    ls.set_defaults(handler=_cmd_ls)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except DrError as exc:
        print(f"drctl: error: {exc}", file=sys.stderr)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        print("drctl: interrupted", file=sys.stderr)
        return int(ExitCode.INTERRUPTED)


if __name__ == "__main__":
    sys.exit(main())
