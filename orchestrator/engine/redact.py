"""Keep secrets out of everything a run records or prints.

A run's journal, events and output are read by people and kept for audits, so every text that might echo
a secret (a command's output, an error message) passes through ``redact`` first. The secrets are the values
of the environment variables a runbook reads through ``${env.X}`` (whatever their names), of those a step
names as the holder of a secret (``password_env``, ``key_env``: whatever their names), and of every variable
whose name looks like a credential.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

MASK = "***"
SECRET_NAME = re.compile(r"KEY|SECRET|TOKEN|PASSWORD|SAS|CONNECTION_STRING|CREDENTIAL|IDENTITY", re.IGNORECASE)
MIN_SECRET_LENGTH = 4
"""Shorter values are not masked: masking every ``1`` or ``yes`` would mangle output without protecting much."""


def looks_secret(name: str) -> bool:
    return SECRET_NAME.search(name) is not None


def env_references(value: object) -> set[str]:
    """Names of the environment variables ``${env.X}`` reads anywhere in ``value`` (dumped params)."""
    # Imported here: the runbook modules load pydantic, and every command's log setup imports this module.
    from orchestrator.runbook.interpolate import InterpolationError, parse_template

    names: set[str] = set()
    if isinstance(value, str):
        try:
            refs = parse_template(value).references
        except InterpolationError:
            return names
        names.update(r.name for r in refs if r.namespace == "env")
    elif isinstance(value, Mapping):
        for v in value.values():
            names |= env_references(v)
    elif isinstance(value, list | tuple):
        for v in value:
            names |= env_references(v)
    return names


SECRET_ENV_KEYS = frozenset({"password_env", "key_env"})
"""Keys of a step's ``with`` whose value is the *name* of an environment variable that holds a secret."""


def named_secret_envs(value: object) -> set[str]:
    """Names of the environment variables ``value`` (dumped params) names under :data:`SECRET_ENV_KEYS`."""
    names: set[str] = set()
    if isinstance(value, Mapping):
        for k, v in value.items():
            if k in SECRET_ENV_KEYS and isinstance(v, str):
                names.add(v)
            else:
                names |= named_secret_envs(v)
    elif isinstance(value, list | tuple):
        for v in value:
            names |= named_secret_envs(v)
    return names


def secrets_of(env: Mapping[str, str], referenced: Iterable[str] = ()) -> frozenset[str]:
    """The values to mask: referenced variables, and variables whose names look like credentials."""
    names = set(referenced) | {n for n in env if looks_secret(n)}
    return frozenset(f for n in names if (v := env.get(n)) for f in _forms(v) if len(f) >= MIN_SECRET_LENGTH)


def _forms(value: str) -> set[str]:
    """A secret as it may be echoed: verbatim, without surrounding whitespace, and escaped as ``repr`` writes
    it. A token read from a file keeps its newline, and http.client then refuses it with the value's repr in
    the message (``Invalid header value b'...\\n'``), which the verbatim value does not match."""
    stripped = value.strip()
    return {value, stripped, repr(value)[1:-1], repr(stripped)[1:-1]}


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret replaced by ``***``; longest first, so a secret containing another is
    masked whole rather than leaving its remainder visible."""
    for secret in sorted(set(secrets), key=len, reverse=True):
        if secret:
            text = text.replace(secret, MASK)
    return text
