"""``drctl`` with one action made to crash: ``python -m tests.chaos.crashing_cli DRCTL-ARGS...``.

A fault injector for the secret-canary suite. ``CHAOS_CRASH_ACTION`` names the action (``http.check``, say) whose
every attempt raises a plain ``RuntimeError`` instead of running, as a bug in the action or an SDK error that
escapes translation would. Its message, and the message of the exception it is chained to, carry the values of
the variables named in ``CHAOS_CRASH_ECHO`` (comma-separated), as an SDK that echoes its configuration would: the
crash is the worst case for drctl's redaction, a traceback whose text holds the credentials themselves.

drctl is otherwise untouched: the same ``orchestrator.cli.main``, the same registry object, the same executor.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from typing import Any

from orchestrator.actions.base import ActionContext, ActionParams, StepResult
from orchestrator.actions.registry import REGISTRY

CRASH_ACTION = "CHAOS_CRASH_ACTION"
CRASH_ECHO = "CHAOS_CRASH_ECHO"


def _echo() -> str:
    names = [n for n in os.environ.get(CRASH_ECHO, "").split(",") if n]
    return "; ".join(f"{name}={os.environ.get(name, '')}" for name in names)


def _sdk_call() -> None:
    """What an SDK might raise: its configuration, credentials included, in the message."""
    raise ValueError(f"client configuration rejected: {_echo()}")


def _crash(params: ActionParams, ctx: ActionContext) -> StepResult:
    try:
        _sdk_call()
    except ValueError as inner:
        raise RuntimeError(f"unexpected failure in the action ({_echo()})") from inner
    raise AssertionError("unreachable: the SDK call always raises")


def install(action: str) -> None:
    """Replace ``action``'s implementation in the registry drctl dispatches through."""
    spec = REGISTRY.get(action)
    if spec is None:
        raise SystemExit(f"crashing_cli: no action {action!r}")
    # A fault injector swaps one entry of the registry drctl dispatches through, and nothing else.
    specs: dict[str, Any] = REGISTRY._specs
    specs[action] = dataclasses.replace(spec, run=_crash)


def main() -> int:
    action = os.environ.get(CRASH_ACTION)
    if action:
        install(action)
    from orchestrator.cli import main as drctl_main

    return drctl_main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
