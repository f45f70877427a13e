"""The ``drctl`` command line. Every failure ends in one line on stderr and an exit code from ``ExitCode``."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence

from orchestrator import __version__
from orchestrator.errors import DrError, ExitCode, one_line
from orchestrator.log_setup import configure_logging

Handler = Callable[[argparse.Namespace], int]


# Which module registers each command. Importing every command module costs a few tenths of a second (the
# runbook engine, the report model, both cloud SDKs' users), so a command line that names one imports only its
# module; with none, or one not listed here, all are imported and argparse lists every choice.
_COMMAND_MODULES = ("storage", "backup", "runbook", "run", "approve", "unlock", "drill", "report", "project", "protect")
_MODULE_OF = {
    "ls": "storage",
    "backup": "backup",
    "validate": "runbook",
    "plan": "runbook",
    "run": "run",
    "resume": "run",
    "status": "run",
    "approve": "approve",
    "unlock": "unlock",
    "drill": "drill",
    "report": "report",
    "schema": "project",
    "init": "project",
    "protect": "protect",
}


def _parser_for(command: str | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="drctl", description="Multi-cloud disaster-recovery orchestrator.")
    parser.add_argument("--version", action="version", version=f"drctl {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    module = _MODULE_OF.get(command or "")
    for name in (module,) if module else _COMMAND_MODULES:
        importlib.import_module(f"orchestrator.commands.{name}").register(sub)
    return parser


def _command_of(argv: Sequence[str]) -> str | None:
    # drctl's own options (-h, --version) take no value, so the first other word is the command.
    return next((a for a in argv if not a.startswith("-")), None)


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    args = _parser_for(_command_of(words)).parse_args(words)
    handler: Handler = args.handler
    try:
        configure_logging(os.environ)
        return handler(args)
    except DrError as exc:
        print(f"drctl: error: {one_line(str(exc))}", file=sys.stderr)
        return int(exc.exit_code)
    except BrokenPipeError:
        # The reader (e.g. `| head`) went away: not an error of ours. Silence the final flush too.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return int(ExitCode.OK)
    except KeyboardInterrupt:
        print("drctl: interrupted; run the same command again to resume", file=sys.stderr)
        return int(ExitCode.INTERRUPTED)


if __name__ == "__main__":
    sys.exit(main())
