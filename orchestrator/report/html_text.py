"""Text and numbers as the HTML report writes them: escaped, free of characters HTML cannot hold, times
shortened for reading, SVG coordinates that are always valid."""

from __future__ import annotations

import html
import math
import re

from orchestrator.report.model import parse_time

# Control characters are invalid in HTML and lone surrogates cannot be written as UTF-8 at all: an error
# message from a shell step may carry either.
_UNWRITABLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")

VERDICT_ICON = {"pass": "✓", "fail": "✗", "unknown": "?"}
STATUS_ICON = {
    "succeeded": "✓",
    "failed": "✗",
    "partially_failed": "!",
    "skipped": "\u2013",
    "interrupted": "‖",
    "running": "▸",
    "pending": "·",
}
# U+00D7 MULTIPLICATION SIGN ("retried x2", a failed attempt's mark), escaped: ruff reads it as a look-alike x.
TIMES = "\u00d7"
OUTCOME_CLASS = {"removed": "ok", "restored": "ok", "already gone": "neutral", "failed": "bad"}


def esc(value: object) -> str:
    """Text safe anywhere in the page, element content or quoted attribute value."""
    text = "" if value is None else str(value)
    return html.escape(_UNWRITABLE.sub("\ufffd", text), quote=True)


def slug(value: str) -> str:
    """A CSS class fragment from a status word the journal wrote (``partially_failed``, ``already gone``)."""
    return re.sub(r"[^a-z0-9]+", "-", value.lower()).strip("-") or "unknown"


def when_text(text: str | None) -> str:
    """A journal timestamp for people (``2026-03-01 12:00:00 UTC``), in a ``<time>`` element; the raw text,
    escaped, when it does not parse; an em dash when there is none."""
    if not text:
        return "—"
    moment = parse_time(text)
    if moment is None:
        return esc(text)
    shown = moment.strftime("%Y-%m-%d %H:%M:%S")
    if moment.microsecond:
        shown += f".{moment.microsecond // 1000:03d}"
    if moment.tzinfo is not None:
        offset = moment.utcoffset()
        shown += " UTC" if offset is not None and not offset else moment.strftime(" %z")
    return f'<time datetime="{esc(text)}">{esc(shown)}</time>'


def num(value: float) -> str:
    """An SVG coordinate: short, and never ``nan`` or ``inf`` (which would make the attribute invalid)."""
    if not math.isfinite(value):
        return "0"
    return f"{value:.1f}".rstrip("0").rstrip(".")


def truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
