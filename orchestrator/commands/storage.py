"""``drctl ls``: list a location, the quickest check that credentials and names are right."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from orchestrator.commands.common import add_azure_account
from orchestrator.errors import ExitCode
from orchestrator.providers.factory import StoreFactory


def _cmd_ls(args: argparse.Namespace) -> int:
    store = StoreFactory(dict(os.environ), azure_account=args.azure_account).open(args.location)
    store.ensure_root()
    count = total = 0
    for info in store.list():
        count += 1
        total += info.size
        if args.json:
            doc = {"key": info.key, "size": info.size, "modified": info.modified.isoformat(), "etag": info.etag}
            print(json.dumps(doc))
        else:
            print(f"{info.size:>14}  {info.modified:%Y-%m-%d %H:%M:%S}  {info.key}")
    if not args.json:
        print(f"{count} objects, {total} bytes", file=sys.stderr)
    return ExitCode.OK


def register(sub: Any) -> None:
    ls = sub.add_parser("ls", help="list the objects at a location (s3://, az://, file:// or a path)")
    ls.add_argument("location")
    add_azure_account(ls)
    ls.add_argument("--json", action="store_true", help="one JSON object per line")
    ls.set_defaults(handler=_cmd_ls)
