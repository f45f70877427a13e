"""Option helpers shared by the command modules."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import Any

from orchestrator.errors import InvalidInput


def add_azure_account(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--azure-account", help="storage account for az:// locations (default: from the environment)")


def print_json(doc: Any) -> None:
    json.dump(doc, sys.stdout, indent=1, sort_keys=True, default=str)
    sys.stdout.write("\n")


def parse_time(text: str) -> datetime:
    """An ISO 8601 time; without a zone it is taken as UTC."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise InvalidInput(f"{text!r} is not a time; write ISO 8601, e.g. 2026-11-26T09:30:00Z") from exc
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"
