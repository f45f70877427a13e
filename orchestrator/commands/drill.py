"""``drctl drill``: run a runbook as a drill, then always clean up after it.

- ``drctl drill RUNBOOK``: the runbook runs with mode=drill (gates pass automatically and say so; compute and
  DNS actions stay inside the drill network and zone, see ``orchestrator.drill.scope``). Whatever the end
  (success, a failed step, Ctrl-C), everything the drill made is removed and listed. ``--keep`` skips that,
  for a look around; ``drctl drill --cleanup RUN_ID`` removes it later.
- ``drctl drill --cleanup RUN_ID``: after a crash (kill -9, a lost laptop), remove what the drill made.
- ``drctl drill --cleanup --orphans``: find the leftovers of every drill that did not clean up, by tag, and
  remove them; ``--dry-run`` only lists them.

Exit codes: those of ``drctl run`` (0 passed, 1 failed, 130 interrupted), except that a cleanup that left
something behind exits 1 even when the drill passed: a drill that litters has not passed. With
``--fail-on-missed-objectives`` (CI), a drill that passed but missed its RTO or RPO exits 9.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from orchestrator.backup.journal import state_dir
from orchestrator.commands.common import add_disaster_at, parse_disaster_at, print_json
from orchestrator.commands.run import fenced, lock_name, observer_for, print_diagnostics, run_lock, stack_of
from orchestrator.drill.cleanup import Cleaner, Providers, Removal
from orchestrator.drill.orphans import find_leftovers
from orchestrator.durations import parse_duration
from orchestrator.engine.executor import Executor, RunOptions, RunOutcome, new_run_id
from orchestrator.engine.journal import RunJournal, RunStatus, journal_path
from orchestrator.engine.lock import live_local_runs, locks_path
from orchestrator.errors import ExitCode, InvalidInput, NotFound
from orchestrator.report.findings import findings
from orchestrator.report.markdown import disaster_instant, phases_line, rpo_method
from orchestrator.report.model import RunbookFacts, RunReport, build_report, facts_of
from orchestrator.runbook.loader import load_runbook
from orchestrator.runbook.params import parse_assignments
from orchestrator.runbook.problems import RunbookInvalid
from orchestrator.stack_outputs import StackOutputs


def _env() -> dict[str, str]:
    return dict(os.environ)


def _say(message: str) -> None:
    print(f"drctl: {message}", file=sys.stderr, flush=True)


def regions_of(stack: StackOutputs | None, env: Mapping[str, str], extra: list[str] | None) -> set[str]:
    """Where a drill's instances can be: the stack's regions, the environment's, and any ``--region``."""
    regions = set(extra or ())
    if stack is not None and stack.recovery_cloud == "aws":
        regions.add(stack.recovery_region)
    if stack is not None and stack.primary_cloud == "aws":
        regions.add(stack.primary_region)
    default = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
    if default:
        regions.add(default)
    if not regions:
        raise InvalidInput("no AWS region to look in: pass --stack-outputs, --region, or set AWS_REGION")
    return regions


@contextmanager
def _shielded() -> Iterator[None]:
    """Ctrl-C does not stop a cleanup halfway (that would leave exactly the litter it exists to remove); it
    says so. kill -9 still can, and ``drctl drill --cleanup RUN_ID`` then finishes the job."""

    def refuse(signum: int, frame: object) -> None:
        del signum, frame
        _say("cleanup in progress; it finishes first (if killed, `drctl drill --cleanup RUN_ID` completes it)")

    previous = signal.signal(signal.SIGINT, refuse)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def mark_abandoned(journal: RunJournal, run_id: str) -> None:
    """Before a ``--cleanup``, which has made sure no live process on this host runs drill ``run_id``: a run
    the journal still calls running was killed, and is marked interrupted, or ``drctl status`` would show it
    running for ever."""
    record = journal.run(run_id)
    if record is not None and record.status == RunStatus.RUNNING:
        journal.event(run_id, "cleanup", "the drill's process ended without finishing (killed or crashed)")
        journal.finish_run(run_id, RunStatus.INTERRUPTED)


def clean_run(journal: RunJournal, run_id: str, regions: set[str], env: Mapping[str, str]) -> list[Removal]:
    with _shielded():
        journal.event(run_id, "cleanup", f"cleanup started (regions {', '.join(sorted(regions))})")
        removals = Cleaner(journal, Providers.from_env(env), log=_say).clean(run_id, regions)
        failed = sum(1 for r in removals if r.outcome == "failed")
        journal.event(run_id, "cleanup", f"cleanup ended: {len(removals) - failed} undone, {failed} failed")
    return removals


def _cleanup_line(removals: list[Removal]) -> str:
    if not removals:
        return "nothing to remove"
    counts: dict[str, int] = {}
    for r in removals:
        counts[f"{r.outcome} {r.kind}"] = counts.get(f"{r.outcome} {r.kind}", 0) + 1
    return ", ".join(f"{n} {what}" for what, n in sorted(counts.items()))


def _summary(report: RunReport, removals: list[Removal], kept: bool) -> None:
    took = f" in {report.duration_seconds:.1f}s" if report.duration_seconds is not None else ""
    print(f"drill {report.run_id} of {report.runbook_name}: {report.status}{took}")
    for check in (report.rto, report.rpo):
        print(f"  {check.name.upper()}  {check.verdict.upper():<7} {check.detail}")
        if check.name == "rto":
            overlap = " (phases may overlap)" if report.rto_phases and report.rto_phases.window == "rto" else ""
            print(f"       phases: {phases_line(report.rto_phases)}{overlap}")
        else:
            print(f"       method: {rpo_method(report)}; disaster instant: {disaster_instant(report)}")
    for finding in findings(report.steps):
        print(f"  found  {finding.step_id}: {finding.text}")
    failed = [s for s in report.steps if s.status == "failed"]
    for step in failed:
        print(f"  failed step {step.step_id}: {step.error_line}")
    if kept:
        print(f"  cleanup skipped (--keep): remove it later with `drctl drill --cleanup {report.run_id}`")
    else:
        print(f"  cleanup: {_cleanup_line(removals)}")
        for r in removals:
            note = f" ({r.note})" if r.note else ""
            print(f"    {r.outcome:<12} {r.kind:<10} {r.resource_id}  [{r.location}]{note}")
    print(f"  report: drctl report {report.run_id} --format html --out drill-{report.run_id}.html")


def _outcome_doc(report: RunReport, removals: list[Removal], kept: bool) -> dict[str, Any]:
    return {
        "run_id": report.run_id,
        "status": report.status,
        "rto": {
            "verdict": report.rto.verdict,
            "seconds": report.rto.measured_seconds,
            "detail": report.rto.detail,
            "phases": asdict(report.rto_phases) if report.rto_phases else None,
        },
        "rpo": {
            "verdict": report.rpo.verdict,
            "seconds": report.rpo.measured_seconds,
            "detail": report.rpo.detail,
            "method": report.rpo_method,
            "disaster_at": report.disaster_at,
            "disaster_at_source": report.disaster_at_source,
        },
        "kept": kept,
        "cleanup": [r.__dict__ for r in removals],
    }


def _finish(
    journal: RunJournal,
    run_id: str,
    removals: list[Removal],
    kept: bool,
    as_json: bool,
    code: int,
    facts: RunbookFacts | None = None,
    objectives_required: bool = False,
) -> int:
    """``facts``: the runbook's, when this command loaded it (else they are read from the file again).
    ``objectives_required``: a drill that passed but missed its RTO or RPO exits ``OBJECTIVE_MISSED``."""
    report = build_report(journal, run_id, facts)
    if as_json:
        print_json(_outcome_doc(report, removals, kept))
    else:
        _summary(report, removals, kept)
    left = [r for r in removals if r.outcome == "failed"]
    if left:
        _say(f"cleanup incomplete: {len(left)} resource(s) remain; run `drctl drill --cleanup {run_id}` again")
        return int(ExitCode.FAILED) if code == ExitCode.OK else code
    missed = [c for c in (report.rto, report.rpo) if c.verdict == "fail"]
    if objectives_required and missed and code == ExitCode.OK:
        what = "; ".join(f"{c.name.upper()} {c.detail}" for c in missed)
        _say(f"drill {run_id} missed its objectives ({what}); see `drctl report {run_id}`")
        return int(ExitCode.OBJECTIVE_MISSED)
    return code


def _cmd_drill(args: argparse.Namespace) -> int:
    if args.cleanup is not None:
        if args.disaster_at is not None:
            raise InvalidInput("--disaster-at is for a drill run, not --cleanup: a run's instant is set when it starts")
        return _cmd_cleanup(args)
    if args.file is None:
        raise InvalidInput("drctl drill needs a RUNBOOK (or --cleanup RUN_ID, or --cleanup --orphans)")
    disaster_at = parse_disaster_at(args.disaster_at)
    env = _env()
    stack = stack_of(args)
    path = Path(args.file)
    try:
        loaded = load_runbook(path, parse_assignments(args.param), stack, source=args.file)
    except RunbookInvalid as err:
        return print_diagnostics(err)
    if args.parallel < 1:
        raise InvalidInput("--parallel must be at least 1")
    regions = regions_of(stack, env, args.region)
    options = RunOptions(mode="drill", keep=args.keep, max_parallel=args.parallel)
    run_id = new_run_id()
    name = loaded.runbook.metadata.name
    journal = RunJournal(journal_path(state_dir(env)))
    try:
        with run_lock(lock_name(name, stack), run_id, name, args.force_unlock, args.lock_url) as lock:
            outcome: RunOutcome | None = None
            try:
                observer, view = observer_for(loaded, options)
                # The cleanup below is not fenced: it removes only this run's own resources, and must run
                # even when the lock was lost.
                with view, fenced(journal, lock):
                    outcome = Executor(journal, env=env, observer=observer).run(
                        loaded, path, options, run_id=run_id, disaster_at=disaster_at
                    )
            finally:
                # Cleanup happens whatever ended the run: success, failure, Ctrl-C, or an error of drctl's own.
                removals = [] if args.keep or journal.run(run_id) is None else clean_run(journal, run_id, regions, env)
        code = int(outcome.exit_code) if outcome is not None else int(ExitCode.FAILED)
        return _finish(
            journal, run_id, removals, args.keep, args.json, code, facts_of(loaded), args.fail_on_missed_objectives
        )
    finally:
        journal.close()


def _cmd_cleanup(args: argparse.Namespace) -> int:
    env = _env()
    stack = stack_of(args)
    regions = regions_of(stack, env, args.region)
    journal = RunJournal(journal_path(state_dir(env)))
    try:
        if args.orphans:
            return _clean_orphans(journal, regions, env, args)
        run_id = args.cleanup
        if not run_id:
            raise InvalidInput("--cleanup needs a RUN_ID, or --orphans to find every drill's leftovers")
        record = journal.run(run_id)
        if record is None:
            raise NotFound(
                f"no run {run_id!r} in {journal.path}; `drctl drill --cleanup --orphans` finds drills by tag"
            )
        if record.mode != "drill":
            raise InvalidInput(f"run {run_id} is a {record.mode}, not a drill: a failover's resources are kept")
        if run_id in live_local_runs(locks_path(state_dir(env))):
            raise InvalidInput(f"drill {run_id} is still running on this host; it cleans up after itself")
        mark_abandoned(journal, run_id)
        removals = clean_run(journal, run_id, regions, env)
        return _finish(journal, run_id, removals, False, args.json, int(ExitCode.OK))
    finally:
        journal.close()


def _clean_orphans(journal: RunJournal, regions: set[str], env: Mapping[str, str], args: argparse.Namespace) -> int:
    try:
        min_age = parse_duration(args.min_age)
    except InvalidInput as err:
        raise InvalidInput(f"--min-age: {err}") from err
    live = live_local_runs(locks_path(state_dir(env)))
    leftovers = find_leftovers(journal, Providers.from_env(env), regions, live, min_age, datetime.now(UTC))
    removed: list[Removal] = []
    for item in leftovers:
        status = "orphan" if item.orphan else "left alone"
        count = len(item.resource_ids)
        print(f"{status:<10} drill {item.run_id} in {item.region}: {count} resource(s); {item.verdict}")
        if item.orphan and not args.dry_run:
            # For a drill of another machine this journal holds no ledger: the tag sweep is all there is.
            mark_abandoned(journal, item.run_id)
            removed += clean_run(journal, item.run_id, {item.region}, env)
    if not leftovers:
        print(f"no drill leftovers in {', '.join(sorted(regions))}")
    failed = [r for r in removed if r.outcome == "failed"]
    if args.json:
        print_json({"leftovers": [i.__dict__ for i in leftovers], "cleanup": [r.__dict__ for r in removed]})
    if failed:
        _say(f"cleanup incomplete: {len(failed)} resource(s) remain; run `drctl drill --cleanup --orphans` again")
        return int(ExitCode.FAILED)
    return int(ExitCode.OK)


def register(sub: Any) -> None:
    drill = sub.add_parser(
        "drill", help="run a runbook as a drill and always clean up after it (or clean up after a crashed one)"
    )
    drill.add_argument("file", nargs="?", help="the runbook to drill")
    drill.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE", help="set a parameter")
    drill.add_argument(
        "--cleanup", nargs="?", const="", metavar="RUN_ID", help="remove what drill RUN_ID made (after a crash)"
    )
    drill.add_argument("--orphans", action="store_true", help="with --cleanup: every drill's leftovers, by tag")
    drill.add_argument("--dry-run", action="store_true", help="with --orphans: list them, remove nothing")
    drill.add_argument("--min-age", default="1h", help="with --orphans: leave unknown drills younger than this (1h)")
    drill.add_argument("--region", action="append", metavar="REGION", help="also look in this AWS region")
    drill.add_argument("--keep", action="store_true", help="leave what the drill made, to inspect it")
    add_disaster_at(drill)
    drill.add_argument("--parallel", type=int, default=4, help="steps running at once (default 4)")
    drill.add_argument("--stack-outputs", metavar="JSON", help="stack outputs file (the drill network and zone)")
    drill.add_argument("--json", action="store_true", help="print the outcome as JSON")
    drill.add_argument(
        "--fail-on-missed-objectives",
        action="store_true",
        help="exit 9 when the drill passed but missed its RTO or RPO (for CI)",
    )
    drill.add_argument("--force-unlock", action="store_true", help="break another run's lock first")
    drill.add_argument("--lock-url", metavar="S3_URL", help="hold the run lock in S3 instead of on this machine")
    drill.set_defaults(handler=_cmd_drill)
