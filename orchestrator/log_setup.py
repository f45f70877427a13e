"""drctl's one log handler: stderr, at the level ``DRCTL_LOG_LEVEL`` asks for, with secrets masked.

The SDKs log what they send at DEBUG: urllib3 logs request lines with their query (an Azure SAS ``sig``),
botocore logs headers (``X-Amz-Security-Token``, ``Authorization``) and azure-core logs URLs. None of that may
reach a terminal or a CI log in clear, so every record passes through ``SecretMask`` before it is written,
whichever library made it.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable, Mapping

from orchestrator.engine.redact import MASK, redact, secrets_of
from orchestrator.errors import InvalidInput

LOG_LEVEL_SETTING = "DRCTL_LOG_LEVEL"
_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}

# Secrets by their shape, for those that are not in the environment (a role's session token, a signature).
_SHAPES = [
    # A SAS's or presigned URL's signature, in a query or a connection string.
    re.compile(r"(?i)((?:^|[?&;\s'\"])(?:sig|x-amz-signature|x-amz-security-token|x-amz-credential)=)[^&;\s'\"]+"),
    # A header as botocore and azure-core print them: 'Name': 'value' or b'value', or Name: value.
    re.compile(
        r"(?i)((?:x-amz-security-token|authorization|x-ms-copy-source-authorization)['\"]?\s*[:=]\s*b?['\"]?)"
        r"[^'\"\n]+"
    ),
    re.compile(r"(?i)((?:AccountKey|SharedAccessSignature)=)[^;\s'\"]+"),
    # An age identity (the secret half of a backup set's recipient), wherever it appears.
    re.compile(r"(AGE-SECRET-KEY-)1[0-9A-Z]+"),
]


def mask_secrets(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with known secret values and anything shaped like a signature, token or key masked."""
    text = redact(text, secrets)
    for shape in _SHAPES:
        text = shape.sub(lambda m: m.group(1) + MASK, text)
    return text


class SecretMask(logging.Filter):
    """Rewrites each record's message (and traceback) with its secrets masked; never drops a record."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._secrets = frozenset(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return True  # a library's malformed call: the handler reports it as logging always does
        record.msg = mask_secrets(message, self._secrets)
        record.args = None
        if record.exc_info:
            record.exc_text = mask_secrets(logging.Formatter().formatException(record.exc_info), self._secrets)
            record.exc_info = None
        return True


def log_level(env: Mapping[str, str]) -> int:
    value = env.get(LOG_LEVEL_SETTING, "").strip().lower()
    if not value:
        # Errors only: a library's warning about a hiccup drctl retries (azure-core's "Incomplete download")
        # would otherwise add a second line to drctl's own one-line error.
        return logging.ERROR
    if value not in _LEVELS:
        raise InvalidInput(f"{LOG_LEVEL_SETTING} must be one of {', '.join(_LEVELS)}, not {value[:20]!r}")
    return _LEVELS[value]


def configure_logging(env: Mapping[str, str]) -> None:
    """Send every logger's records to stderr through ``SecretMask``: the libraries' errors always (Python
    would print them anyway, unmasked), their warnings and debug output when ``DRCTL_LOG_LEVEL`` asks."""
    level = log_level(env)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("drctl: %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(SecretMask(secrets_of(env)))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
