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


def add_disaster_at(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--disaster-at",
        metavar="TIME",
        help="when the disaster struck (ISO 8601 with an offset or Z); the report's RPO is measured from it "
        "(default: the run's start)",
    )


def parse_disaster_at(text: str | None, now: datetime | None = None) -> datetime | None:
    """``--disaster-at``: an ISO 8601 time with an offset (or ``Z``), not after ``now``; returned in UTC. A time
    without a zone is refused rather than guessed: an RPO measured from the wrong zone is hours off."""
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise InvalidInput(
            f"--disaster-at {text!r} is not a time; write ISO 8601 with an offset, e.g. 2026-11-26T09:30:00Z"
        ) from exc
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput(f"--disaster-at {text!r} has no time zone; add an offset or Z, e.g. {value.isoformat()}Z")
    current = now or datetime.now(UTC)
    if value > current:
        raise InvalidInput(
            f"--disaster-at {text!r} is in the future (now is {current.isoformat(timespec='seconds')}); "
            "a disaster instant must have happened"
        )
    return value.astimezone(UTC)


def mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"
