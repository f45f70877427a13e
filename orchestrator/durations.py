"""Durations as people write them in runbooks and options: ``90s``, ``15m``, ``1h30m``, ``2d``, or ``0``."""

from __future__ import annotations

import re
from datetime import timedelta

from orchestrator.errors import InvalidInput

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    raw = text.strip().lower()
    if raw == "0":
        return timedelta(0)
    pos, seconds = 0, 0.0
    for match in _PART.finditer(raw):
        if match.start() != pos:
            break
        seconds += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if not raw or pos != len(raw):
        raise InvalidInput(f"{text!r} is not a duration; write e.g. 90s, 15m, 1h30m or 2d")
    try:
        return timedelta(seconds=seconds)
    except OverflowError as exc:
        raise InvalidInput(f"{text!r} is too long a duration; use at most a few years") from exc
