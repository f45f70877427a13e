"""The ``drctl`` command line. Every failure ends in one line on stderr and an exit code from ``ExitCode``."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from orchestrator import __version__
from orchestrator.commands import backup, drill, report, run, runbook, storage
from orchestrator.errors import DrError, ExitCode

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="drctl", description="Multi-cloud disaster-recovery orchestrator.")
    parser.add_argument("--version", action="version", version=f"drctl {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    storage.register(sub)
    backup.register(sub)
    runbook.register(sub)
    run.register(sub)
    drill.register(sub)
    report.register(sub)
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
    except BrokenPipeError:
        # The reader (e.g. `| head`) went away: not an error of ours. Silence the final flush too.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return int(ExitCode.OK)
    except KeyboardInterrupt:
        print("drctl: interrupted; run the same command again to resume", file=sys.stderr)
        return int(ExitCode.INTERRUPTED)


if __name__ == "__main__":
    sys.exit(main())
