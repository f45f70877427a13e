"""``drctl run``, ``drctl resume`` and ``drctl status``: execute runbooks, journaled, one run per target.

Exit codes (``status RUN_ID`` exits with the run's): 0 the run succeeded, 1 it failed or partially failed,
2 invalid input (the runbook, ``-p``, ``--stack-outputs``), 3 another run holds the lock, 130 interrupted
(``drctl resume RUN_ID`` continues it). Progress goes to stderr one event per line; ``--json`` prints the
outcome as JSON on stdout.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from orchestrator.backup.journal import state_dir
from orchestrator.commands.common import add_disaster_at, parse_disaster_at, print_json
from orchestrator.durations import parse_duration
from orchestrator.engine.events import PrintObserver, RunObserver
from orchestrator.engine.executor import Executor, RunOptions, RunOutcome, exit_code_of, new_run_id
from orchestrator.engine.journal import RunJournal, journal_path
from orchestrator.engine.live import LiveView
from orchestrator.engine.lock import LockHolder, RunLock, SqliteRunLock, locks_path
from orchestrator.engine.s3_lease import DEFAULT_TTL_S, S3Lease
from orchestrator.errors import ExitCode, InvalidInput, NotFound
from orchestrator.providers.factory import StoreFactory
from orchestrator.providers.location import parse_location
from orchestrator.runbook.loader import LoadedRunbook, load_runbook
from orchestrator.runbook.models import Step
from orchestrator.runbook.params import parse_assignments
from orchestrator.runbook.problems import RunbookInvalid
from orchestrator.stack_outputs import StackOutputs, load_stack_outputs

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


def _env() -> dict[str, str]:
    return dict(os.environ)


def stack_of(args: argparse.Namespace) -> StackOutputs | None:
    return load_stack_outputs(Path(args.stack_outputs)) if args.stack_outputs else None


def lock_name(runbook: str, stack: StackOutputs | None) -> str:
    """Two runs of one runbook against one stack would fight over the same resources; other pairs may run."""
    return f"runbook {runbook} on stack {stack.stack if stack else '(none)'}"


LOCKS_FOLDER = "locks/"


def lock_ttl(env: dict[str, str]) -> float:
    """The shared lock's lease (``DRCTL_LOCK_TTL``, a duration; 60s): how long a crashed holder blocks others."""
    text = env.get("DRCTL_LOCK_TTL")
    seconds = parse_duration(text).total_seconds() if text else DEFAULT_TTL_S
    if seconds < 1:
        raise InvalidInput(f"DRCTL_LOCK_TTL={text!r} is too short for a lease; use at least 1s (default 60s)")
    return seconds


def shared_locks(lock_url: str) -> tuple[S3Client, str, str]:
    """The S3 client, bucket and key prefix under which ``--lock-url`` keeps its lock objects."""
    loc = parse_location(lock_url)
    if loc.scheme != "s3":
        raise InvalidInput(f"--lock-url {lock_url!r} must be an s3:// location (the lock is an S3 conditional write)")
    return StoreFactory(_env()).s3_client(), loc.root, loc.prefix + LOCKS_FOLDER


def _shared_lock(lock_url: str, name: str) -> S3Lease:
    """A lease in S3, for teams whose runs start from several machines (CI, laptops, a bastion)."""
    client, bucket, prefix = shared_locks(lock_url)
    key = prefix + re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") + ".json"
    return S3Lease(client, bucket, key, ttl_s=lock_ttl(_env()))


@contextmanager
def run_lock(name: str, run_id: str, runbook: str, force: bool, lock_url: str | None = None) -> Iterator[RunLock]:
    lock: RunLock = _shared_lock(lock_url, name) if lock_url else SqliteRunLock(locks_path(state_dir(_env())), name)
    holder = LockHolder.here(run_id, runbook)
    try:
        if force:
            removed = lock.force_unlock()
            if removed is not None:
                print(f"drctl: removed the lock of {removed.describe()}", file=sys.stderr)
        lock.acquire(holder)
        if isinstance(lock, S3Lease) and lock.took_over is not None:
            print(f"drctl: took over the lock of {lock.took_over.describe()}: its lease had expired", file=sys.stderr)
        try:
            yield lock
        finally:
            lock.release(holder)
    finally:
        if isinstance(lock, SqliteRunLock):
            lock.close()


@contextmanager
def fenced(journal: RunJournal, lock: RunLock) -> Iterator[None]:
    """Every journal write checks the lock first, while the run holds it."""
    journal.fence(lock.check)
    try:
        yield
    finally:
        journal.fence(None)


def _options(args: argparse.Namespace, mode: str = "failover") -> RunOptions:
    if args.parallel < 1:
        raise InvalidInput("--parallel must be at least 1")
    return RunOptions(
        mode="drill" if mode == "drill" else "failover",
        approve=frozenset(args.approve or ()),
        approve_all=args.approve_all,
        keep=args.keep,
        max_parallel=args.parallel,
        approval_wait=parse_duration(args.wait_for_approval) if args.wait_for_approval else None,
    )


def _prompt(step: Step) -> bool:
    """Ask at the terminal; only offered when stdin is a TTY, so unattended runs never hang on a gate."""
    what = f" ({step.description})" if step.description else ""
    try:
        answer = input(f"approve step {step.id}{what}? [y/N] ")
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")


def _approver() -> Callable[[Step], bool] | None:
    return _prompt if sys.stdin.isatty() else None


def observer_for(loaded: LoadedRunbook, options: RunOptions) -> tuple[RunObserver, AbstractContextManager[object]]:
    """A live table on a terminal; plain lines otherwise, and whenever an approval prompt could need the
    terminal (a redrawn table and a question do not share a screen well)."""
    steps = loaded.graph.steps
    prompts = (
        options.mode != "drill"
        and not options.approve_all
        and any(s.approval == "required" and s.id not in options.approve for s in steps.values())
    )
    if not sys.stderr.isatty() or prompts:
        return PrintObserver(), nullcontext()
    view = LiveView(Console(stderr=True), [(s.id, s.tier) for s in steps.values()])
    return view, view


def _report(outcome: RunOutcome, as_json: bool) -> int:
    if as_json:
        print_json(
            {
                "run_id": outcome.run_id,
                "status": outcome.status.value,
                "steps": {k: v.value for k, v in outcome.steps.items()},
            }
        )
    else:
        print(f"run {outcome.run_id}: {outcome.status.value}")
        if outcome.exit_code == ExitCode.INTERRUPTED:
            print(f"drctl resume {outcome.run_id} continues it", file=sys.stderr)
    return int(outcome.exit_code)


def print_diagnostics(err: RunbookInvalid) -> int:
    for diagnostic in err.diagnostics:
        print(diagnostic, file=sys.stderr)
    return int(ExitCode.INVALID_INPUT)


def _cmd_run(args: argparse.Namespace) -> int:
    if args.mode == "drill":
        # Only `drctl drill` removes what a drill made, whatever ends it; run here, its copies would stay.
        raise InvalidInput("drills run with `drctl drill RUNBOOK`, which also removes what they make")
    disaster_at = parse_disaster_at(args.disaster_at)
    overrides = parse_assignments(args.param)
    stack = stack_of(args)
    path = Path(args.file)
    try:
        loaded = load_runbook(path, overrides, stack, source=args.file)
    except RunbookInvalid as err:
        return print_diagnostics(err)
    options = _options(args, args.mode)
    for step_id in options.approve:
        if step_id not in loaded.graph.steps:
            raise InvalidInput(f"--approve {step_id}: the runbook has no step {step_id!r}")
    run_id = new_run_id()
    name = loaded.runbook.metadata.name
    with run_lock(lock_name(name, stack), run_id, name, args.force_unlock, args.lock_url) as lock:
        journal = RunJournal(journal_path(state_dir(_env())))
        observer, view = observer_for(loaded, options)
        try:
            executor = Executor(journal, env=_env(), observer=observer, approver=_approver())
            with view, fenced(journal, lock):
                outcome = executor.run(loaded, path, options, run_id=run_id, disaster_at=disaster_at)
        finally:
            journal.close()
    return _report(outcome, args.json)


def _cmd_resume(args: argparse.Namespace) -> int:
    stack = stack_of(args)
    journal = RunJournal(journal_path(state_dir(_env())))
    try:
        record = journal.run(args.run_id)
        if record is None:
            raise NotFound(f"no run {args.run_id!r}; drctl status lists the recent ones")
        if record.mode == "drill":
            # A drill measures a recovery from the start; resumed, its RTO would mean nothing.
            raise InvalidInput(
                f"run {record.run_id} is a drill, and drills are not resumed: remove what it made with "
                f"`drctl drill --cleanup {record.run_id}`, then run the drill again"
            )
        options = _options(args, record.mode)
        with (
            run_lock(
                lock_name(record.runbook_name, stack),
                record.run_id,
                record.runbook_name,
                args.force_unlock,
                args.lock_url,
            ) as lock,
            fenced(journal, lock),
        ):
            try:
                outcome = Executor(journal, env=_env(), observer=PrintObserver(), approver=_approver()).resume(
                    record.run_id, options, stack
                )
            except RunbookInvalid as err:
                return print_diagnostics(err)
    finally:
        journal.close()
    return _report(outcome, args.json)


def _cmd_status(args: argparse.Namespace) -> int:
    journal = RunJournal(journal_path(state_dir(_env())))
    try:
        if args.run_id is None:
            runs = journal.runs()
            if args.json:
                print_json(
                    [
                        {
                            "run_id": r.run_id,
                            "runbook": r.runbook_name,
                            "mode": r.mode,
                            "status": r.status.value,
                            "started": r.started,
                            "finished": r.finished,
                        }
                        for r in runs
                    ]
                )
            for r in [] if args.json else runs:
                print(f"{r.run_id}  {r.status.value:<17} {r.mode:<8} {r.runbook_name}  started {r.started}")
            return int(ExitCode.OK)
        record = journal.run(args.run_id)
        if record is None:
            raise NotFound(f"no run {args.run_id!r}; drctl status lists the recent ones")
        steps = journal.steps(record.run_id)
        if args.json:
            print_json(
                {
                    "run_id": record.run_id,
                    "runbook": record.runbook_path,
                    "mode": record.mode,
                    "status": record.status.value,
                    "started": record.started,
                    "finished": record.finished,
                    "steps": {
                        s.step_id: {
                            "status": s.status.value,
                            "attempts": s.attempts,
                            "outputs": s.outputs,
                            "error": s.error,
                        }
                        for s in steps.values()
                    },
                }
            )
        else:
            print(f"run {record.run_id} of {record.runbook_path} ({record.mode}): {record.status.value}")
            for s in steps.values():
                error = f"  {s.error}" if s.error else ""
                print(f"  {s.step_id:<24} {s.status.value:<12} attempts {s.attempts}{error}")
        return int(exit_code_of(record.status))  # scripts can test a run's outcome by its exit code
    finally:
        journal.close()


def _run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--approve", action="append", metavar="STEP", help="approve this gated step (repeatable)")
    parser.add_argument("--approve-all", action="store_true", help="approve every gated step")
    parser.add_argument(
        "--wait-for-approval",
        metavar="DURATION",
        help="a gated step waits this long (e.g. 30m) for `drctl approve RUN_ID STEP` from elsewhere, then fails",
    )
    parser.add_argument("--keep", action="store_true", help="do not undo a drill at its end")
    parser.add_argument("--parallel", type=int, default=4, help="steps running at once (default 4)")
    parser.add_argument("--stack-outputs", metavar="JSON", help="stack outputs file for ${stack...}")
    parser.add_argument("--json", action="store_true", help="print the outcome as JSON")
    parser.add_argument("--force-unlock", action="store_true", help="break another run's lock first")
    parser.add_argument(
        "--lock-url", metavar="S3_URL", help="hold the run lock in S3 (s3://bucket/prefix/) instead of on this machine"
    )


def register(sub: Any) -> None:
    run = sub.add_parser("run", help="execute a runbook as a failover (drills: drctl drill)")
    run.add_argument("file")
    run.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE", help="set a parameter")
    run.add_argument("--mode", choices=["failover", "drill"], default="failover")
    add_disaster_at(run)
    _run_options(run)
    run.set_defaults(handler=_cmd_run)

    resume = sub.add_parser("resume", help="continue a failed or interrupted run; succeeded steps are not repeated")
    resume.add_argument("run_id")
    _run_options(resume)
    resume.set_defaults(handler=_cmd_resume)

    status = sub.add_parser("status", help="recent runs, or the steps of one run")
    status.add_argument("run_id", nargs="?")
    status.add_argument("--json", action="store_true")
    status.set_defaults(handler=_cmd_status)
