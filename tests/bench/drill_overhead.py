"""The orchestrator's own overhead on a large drill (``python -m tests.bench.drill_overhead``, inside the lab).

1. Generate an estate on LocalStack EC2 (``tests.bench.drill_estate``): by default 4 tiers x 50 stopped standby
   instances, a recovery and an isolated drill network, an AMI and a security group per tier, all tagged
   ``drctl:estate=<name>``; a stack outputs file and a runbook with, per tier, ``compute.start`` (in a drill:
   one copy per standby, launched into the drill network) then ``compute.wait_healthy``.
2. Run ``drctl drill`` on it as a person would (a subprocess, its own state directory), ``--reps`` times.
3. From the run journal: the run's duration, each step's, each tier's critical path (the longest chain of
   step durations through the needs within the tier), and the overhead = run duration - sum of the tiers'
   critical paths, split into where it sits (before the first step, between steps of a tier, between
   tiers, after the last step). Also the process's time outside the run (start-up, cleanup, exit), the
   launches in flight at once (from each copy's ``launch_asked``/``launch_returned`` in the drill ledger),
   and what the cleanup removed; after each rep, a check that no copy of that drill is still live.

Figures are printed, never asserted: they come from emulators on whatever machine runs this, so a person
reads them. The estate is removed at the end unless ``--keep-estate`` (then ``--estate NAME`` reuses it).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator.drill.copies import LAUNCH_THREADS
from orchestrator.drill.scope import TAG_BATCH, TAG_RUN
from orchestrator.engine.journal import RunJournal, journal_path
from orchestrator.report.model import RunReport, StepReport, build_report
from orchestrator.runbook.loader import load_runbook
from tests.bench.drill_estate import (
    REGION,
    Estate,
    EstateShape,
    ec2_client,
    ensure_estate,
    live_instances,
    runbook_yaml,
    stack_outputs,
    status_checks_reported,
    teardown,
)
from tests.bench.drill_floor import Floor, batched_floor, limit_floor_s
from tests.support.drill import peak_in_flight
from tests.support.ec2_throttle import AWS_DEFAULTS, Ec2ThrottleProxy, Limits
from tests.support.lab import NOT_RUNNING, lab_settings

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class DrillProcess:
    run_id: str
    exit_code: int
    wall_s: float
    spawned: datetime
    exited: datetime
    outcome: dict[str, object]


@dataclass
class TierFigures:
    steps: dict[str, float]
    critical_path_s: float
    span_s: float
    """First step start to last step end: the tier's share of the run, critical path plus gaps inside it."""
    first_start: datetime
    last_end: datetime
    launches: int
    peak_in_flight: int
    mean_in_flight: float
    """Sum of the launch requests' durations over the launch window: how busy the launch threads kept EC2."""
    launch_window_s: float
    launch_call_s: float
    """Median duration of one RunInstances request (a batch of copies) as the launching thread saw it."""
    before_launches_s: float
    """Start step's start to its first launch: selecting and describing the standbys, the one lookup of
    earlier copies (``launch_asked`` is stamped after it), and in the first tier building the client. Near 0
    when the selection was looked up while the tier before came up (``orchestrator.actions.lookahead``)."""
    after_launches_s: float
    """Last launch's return to the start step's end: waiting for the copies to run, describing their IPs."""


@dataclass(frozen=True)
class EmulatorLoad:
    """The emulator's state before a rep. LocalStack keeps terminated instances (AWS forgets them after about an
    hour), and its filtered DescribeInstances walks all of them: a drill that filters once per copy slows
    down as the lab fills up, which these figures make visible."""

    instances_in_region: int
    filtered_describe_s: float
    """Median of a few DescribeInstances calls filtered as ``Compute.find`` filters (two tags and the state)."""


def emulator_load(ec2: EC2Client) -> EmulatorLoad:
    every = sum(
        len(r["Instances"]) for p in ec2.get_paginator("describe_instances").paginate() for r in p["Reservations"]
    )
    times: list[float] = []
    for _ in range(5):
        start = time.perf_counter()
        live_instances(
            ec2,
            [{"Name": f"tag:{TAG_RUN}", "Values": ["bench-probe"]}, {"Name": f"tag:{TAG_BATCH}", "Values": ["probe"]}],
        )
        times.append(time.perf_counter() - start)
    return EmulatorLoad(every, statistics.median(times))


@dataclass
class RepFigures:
    run_id: str
    status: str
    exit_code: int
    wall_s: float
    run_s: float
    startup_s: float
    after_run_s: float
    cleanup_s: float | None
    tiers: dict[str, TierFigures]
    lead_s: float
    between_tiers_s: float
    tail_s: float
    launched: int
    launch_span_s: float
    """The first launch request's start to the last one's return, across tiers."""
    removed: int
    left_live: int
    emulator: EmulatorLoad
    notes: list[str] = field(default_factory=list)

    @property
    def sum_critical_s(self) -> float:
        return sum(t.critical_path_s for t in self.tiers.values())

    @property
    def overhead_s(self) -> float:
        return self.run_s - self.sum_critical_s

    @property
    def within_tiers_s(self) -> float:
        return sum(t.span_s - t.critical_path_s for t in self.tiers.values())


def _at(text: str | None) -> datetime:
    if text is None:
        raise SystemExit("bench: the journal lacks a timestamp the benchmark needs (did the drill finish?)")
    return datetime.fromisoformat(text)


def _seconds(a: datetime, b: datetime) -> float:
    return (b - a).total_seconds()


def run_drill(runbook: Path, outputs: Path, state: Path, env: Mapping[str, str]) -> DrillProcess:
    """``drctl drill`` as a subprocess; wall time from spawn to exit. The UTC stamps around it let the
    journal's own times (UTC, same clock) be placed inside the process's life."""
    argv = [sys.executable, "-m", "orchestrator.cli", "drill", str(runbook), "--stack-outputs", str(outputs), "--json"]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        spawned = datetime.now(UTC)
        start = time.perf_counter()
        proc = subprocess.run(argv, cwd=REPO, env={**env, "DRCTL_STATE_DIR": str(state)}, stdout=out, stderr=err)
        wall = time.perf_counter() - start
        exited = datetime.now(UTC)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    try:
        outcome = json.loads(stdout)
    except json.JSONDecodeError:
        raise SystemExit(
            f"bench: the drill printed no outcome (exit {proc.returncode}): {stderr.strip()[-800:]}"
        ) from None
    return DrillProcess(str(outcome["run_id"]), proc.returncode, wall, spawned, exited, outcome)


def chain_lengths(durations: Mapping[str, float], needs: Mapping[str, Sequence[str]]) -> dict[str, float]:
    """Per step, the longest chain of durations ending with it, through needs inside ``durations`` only
    (a need in an earlier tier is behind the tier barrier, so it is not on this tier's path)."""
    memo: dict[str, float] = {}

    def longest(step: str) -> float:
        if step not in memo:
            before = [longest(n) for n in needs.get(step, ()) if n in durations]
            memo[step] = durations[step] + max(before, default=0.0)
        return memo[step]

    return {s: longest(s) for s in durations}


def _tier_figures(
    steps: Sequence[StepReport], needs: Mapping[str, Sequence[str]], launches: Sequence[tuple[datetime, datetime]]
) -> TierFigures:
    durations: dict[str, float] = {}
    for s in steps:
        if s.duration_seconds is None:
            raise SystemExit(f"bench: step {s.step_id} has no duration ({s.status}); the drill did not complete")
        durations[s.step_id] = s.duration_seconds
    # A step's start is its first attempt's, as the report's durations use: the wait for a worker between the
    # step being scheduled and its attempt starting is the orchestrator's, so it belongs to the overhead.
    starts = [_at(s.attempts[0].started if s.attempts else s.started) for s in steps]
    ends = [_at(s.finished) for s in steps]
    first_ask = min((a for a, _ in launches), default=None)
    last_return = max((b for _, b in launches), default=None)
    window = _seconds(first_ask, last_return) if first_ask and last_return else 0.0
    calls = [_seconds(a, b) for a, b in launches]
    start = next((s for s in steps if s.action == "compute.start"), None)
    start_began = _at(start.attempts[0].started if start.attempts else start.started) if start else None
    start_ended = _at(start.finished) if start else None
    return TierFigures(
        steps=durations,
        critical_path_s=max(chain_lengths(durations, needs).values()),
        span_s=_seconds(min(starts), max(ends)),
        first_start=min(starts),
        last_end=max(ends),
        launches=len(launches),
        peak_in_flight=peak_in_flight(launches),
        mean_in_flight=sum(calls) / window if window > 0 else 0.0,
        launch_window_s=window,
        launch_call_s=statistics.median(calls) if calls else 0.0,
        before_launches_s=_seconds(start_began, first_ask) if start_began and first_ask else 0.0,
        after_launches_s=_seconds(last_return, start_ended) if last_return and start_ended else 0.0,
    )


def measure(
    state: Path, drill: DrillProcess, runbook: Path, estate: Estate, ec2: EC2Client, load: EmulatorLoad
) -> RepFigures:
    journal = RunJournal(journal_path(state))
    try:
        report: RunReport = build_report(journal, drill.run_id)
        resources = journal.resources(drill.run_id)
    finally:
        journal.close()
    graph = load_runbook(runbook).graph
    needs = {s.id: tuple(s.needs) for s in graph.steps.values()}
    tier_of_step = {s.id: f"t{s.tier}" for s in graph.steps.values()}
    tier_of_source = estate.tier_of()
    # One RunInstances request launches a batch of copies, and each copy's ledger entry carries its request's
    # times: a request counts once.
    launches: dict[str, set[tuple[datetime, datetime]]] = {}
    for r in resources:
        asked, returned = r.detail.get("launch_asked"), r.detail.get("launch_returned")
        if r.kind == "instance" and asked and returned:
            tier = tier_of_source.get(str(r.detail.get("source")), "?")
            launches.setdefault(tier, set()).add((_at(str(asked)), _at(str(returned))))
    tiers: dict[str, TierFigures] = {}
    for tier in estate.shape.tier_names:
        members = [s for s in report.steps if tier_of_step.get(s.step_id) == tier]
        tiers[tier] = _tier_figures(members, needs, sorted(launches.get(tier, set())))
    started, finished = _at(report.started), _at(report.finished)
    requests = [interval for intervals in launches.values() for interval in intervals]
    ordered = list(tiers.values())
    cleanup = [e.at for e in report.events if e.kind == "cleanup"]
    left = live_instances(ec2, [{"Name": f"tag:{TAG_RUN}", "Values": [drill.run_id]}])
    return RepFigures(
        run_id=drill.run_id,
        status=report.status,
        exit_code=drill.exit_code,
        wall_s=drill.wall_s,
        run_s=_seconds(started, finished),
        startup_s=_seconds(drill.spawned, started),
        after_run_s=_seconds(finished, drill.exited),
        cleanup_s=_seconds(_at(cleanup[0]), _at(cleanup[-1])) if len(cleanup) >= 2 else None,
        tiers=tiers,
        lead_s=_seconds(started, ordered[0].first_start),
        between_tiers_s=sum(_seconds(a.last_end, b.first_start) for a, b in itertools.pairwise(ordered)),
        tail_s=_seconds(ordered[-1].last_end, finished),
        launched=sum(1 for r in resources if r.kind == "instance"),
        launch_span_s=_seconds(min(a for a, _ in requests), max(b for _, b in requests)) if requests else 0.0,
        removed=sum(1 for r in resources if r.kind == "instance" and r.outcome == "removed"),
        left_live=len(left),
        emulator=load,
        notes=list(report.notes),
    )


# -- the table ---------------------------------------------------------------------------------------------------


def _tier_rows(reps: Sequence[RepFigures], tier: str) -> list[tuple[str, list[float | None], str]]:
    def each(fn: Callable[[TierFigures], float]) -> list[float | None]:
        return [fn(r.tiers[tier]) for r in reps]

    return [
        (f"{tier} start step", each(lambda t: t.steps[f"start-{tier}"]), "s"),
        (f"{tier}   before 1st launch (selection; ~0 if looked up ahead)", each(lambda t: t.before_launches_s), "s"),
        (f"{tier}   launch window (first ask -> last return)", each(lambda t: t.launch_window_s), "s"),
        (f"{tier}   after the last launch (wait running, IPs)", each(lambda t: t.after_launches_s), "s"),
        (f"{tier}   RunInstances requests", each(lambda t: float(t.launches)), ""),
        (f"{tier}   one RunInstances request (median)", each(lambda t: t.launch_call_s), "s"),
        (f"{tier}   requests in flight: peak", each(lambda t: float(t.peak_in_flight)), ""),
        (f"{tier}   requests in flight: mean", each(lambda t: t.mean_in_flight), ""),
        (
            f"{tier}   launch threads' time in RunInstances",
            each(lambda t: 100 * t.mean_in_flight / LAUNCH_THREADS),
            "%",
        ),
        (f"{tier} wait_healthy step", each(lambda t: t.steps[f"{tier}-healthy"]), "s"),
        (f"{tier} critical path", each(lambda t: t.critical_path_s), "s"),
    ]


def _rows(reps: Sequence[RepFigures], tiers: Sequence[str]) -> list[tuple[str, list[float | None], str]]:
    def each(fn: Callable[[RepFigures], float | None]) -> list[float | None]:
        return [fn(r) for r in reps]

    rows: list[tuple[str, list[float | None], str]] = [
        (
            "emulator: instances in us-west-2 before (any state)",
            each(lambda r: float(r.emulator.instances_in_region)),
            "",
        ),
        ("emulator: one filtered DescribeInstances", each(lambda r: r.emulator.filtered_describe_s), "s"),
        ("process wall time (spawn -> exit)", each(lambda r: r.wall_s), "s"),
        ("  start-up (spawn -> run start)", each(lambda r: r.startup_s), "s"),
        ("  run (journal: start -> finish)", each(lambda r: r.run_s), "s"),
        ("  after the run (cleanup, report, exit)", each(lambda r: r.after_run_s), "s"),
        ("    of which cleanup (journal events)", each(lambda r: r.cleanup_s), "s"),
    ]
    for tier in tiers:
        rows += _tier_rows(reps, tier)
    rows += [
        ("sum of tier critical paths", each(lambda r: r.sum_critical_s), "s"),
        ("overhead = run - sum of critical paths", each(lambda r: r.overhead_s), "s"),
        ("overhead, % of run", each(lambda r: 100 * r.overhead_s / r.run_s if r.run_s else None), "%"),
        ("  run start -> first step", each(lambda r: r.lead_s), "s"),
        ("  gaps inside tiers (span - critical path)", each(lambda r: r.within_tiers_s), "s"),
        ("  between tiers (barrier hand-over)", each(lambda r: r.between_tiers_s), "s"),
        ("  last step -> run finish", each(lambda r: r.tail_s), "s"),
        ("wall time - sum of critical paths", each(lambda r: r.wall_s - r.sum_critical_s), "s"),
        ("  as % of wall time", each(lambda r: 100 * (r.wall_s - r.sum_critical_s) / r.wall_s), "%"),
        ("instances launched (ledger)", each(lambda r: float(r.launched)), ""),
        ("instances removed by cleanup", each(lambda r: float(r.removed)), ""),
        ("copies still live after the rep", each(lambda r: float(r.left_live)), ""),
    ]
    return rows


def _cell(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "" and float(value).is_integer():
        return f"{int(value)}"
    return f"{value:.1f}" if unit == "%" else f"{value:.2f}"


def print_table(reps: Sequence[RepFigures], tiers: Sequence[str]) -> None:
    label = 50
    head = "".join(f"{f'rep {i}':>10}" for i in range(1, len(reps) + 1))
    print(f"{'':<{label}}{head}{'median':>10}  unit")
    for name, values, unit in _rows(reps, tiers):
        known = [v for v in values if v is not None]
        median = statistics.median(known) if known else None
        cells = "".join(f"{_cell(v, unit):>10}" for v in values)
        print(f"{name:<{label}}{cells}{_cell(median, unit):>10}  {unit}")


# -- the yardsticks: the batched floor and EC2's throttling ------------------------------------------------------

BENCH_LIMITS = Limits(resource={**AWS_DEFAULTS.resource, "RunInstances": (50, 2)})
"""EC2's request buckets as AWS documents them, and a RunInstances resource bucket as a busy day leaves it: 50
instances left of AWS's 1,000, refilled at AWS's 2 a second, so a 200-copy drill waits for most of its copies."""


def _rep(
    label: str,
    state: Path,
    runbook: Path,
    outputs: Path,
    estate: Estate,
    ec2: EC2Client,
    lab: Mapping[str, str],
    limits: Limits | None,
) -> tuple[RepFigures, Ec2ThrottleProxy]:
    """One drill, its EC2 calls counted (and throttled, with ``limits``) by a proxy in front of LocalStack."""
    load = emulator_load(ec2)
    proxy = Ec2ThrottleProxy(lab["AWS_ENDPOINT_URL"], limits)
    try:
        drill = run_drill(runbook, outputs, state, {**os.environ, **lab, "AWS_ENDPOINT_URL_EC2": proxy.url})
    finally:
        proxy.close()
    figures = measure(state, drill, runbook, estate, ec2, load)
    print(
        f"bench: {label}: drill {figures.run_id} {figures.status} (exit {figures.exit_code}) in "
        f"{figures.wall_s:.1f}s; {proxy.calls.total()} EC2 calls ({proxy.throttled.total()} throttled); live "
        f"instances tagged {TAG_RUN}={figures.run_id} afterwards: {figures.left_live}",
        file=sys.stderr,
    )
    return figures, proxy


def _start_phases_s(r: RepFigures) -> float:
    return sum(t.steps[f"start-{name}"] for name, t in r.tiers.items())


def print_yardsticks(
    reps: Sequence[RepFigures],
    calls: Sequence[Ec2ThrottleProxy],
    floors: Sequence[Floor],
    throttled: tuple[RepFigures, Ec2ThrottleProxy],
) -> None:
    before, after = floors
    first, last = _start_phases_s(reps[0]), _start_phases_s(reps[-1])
    cleanups = [r.cleanup_s for r in reps if r.cleanup_s is not None]
    slow, slow_calls = throttled
    limit = limit_floor_s(BENCH_LIMITS, slow.launched)
    capacity, refill = BENCH_LIMITS.resource["RunInstances"]

    def line(label: str, value: float, unit: str, note: str = "") -> None:
        print(f"  {label:<56}{value:8.2f} {unit}{note}")

    print()
    print("side by side (same estate, same run; tier-start phases = the compute.start steps, summed over tiers):")
    line("batched floor, before the drills", before.start_s, "s")
    line("drctl drill, rep 1", first, "s")
    line("  rep 1 / floor before", first / before.start_s, "x", "  (target <= 2)")
    line(f"drctl drill, rep {len(reps)}", last, "s")
    line("batched floor, after the drills", after.start_s, "s")
    line(f"  rep {len(reps)} / floor after", last / after.start_s, "x", "  (target <= 2)")
    if cleanups:
        line("cleanup, drctl (median)", statistics.median(cleanups), "s")
    floor_cleanup = statistics.median(f.terminate_s for f in floors)
    line("cleanup, floor (one TerminateInstances, then wait; median)", floor_cleanup, "s")
    bucket = f"RunInstances bucket {capacity:g}, +{refill:g}/s"
    print(f"  behind throttling ({bucket}): drill {slow.status}, exit {slow.exit_code}")
    line("  first launch request -> last copy launched", slow.launch_span_s, "s")
    line(f"  the limit's floor for {slow.launched} copies ((copies - bucket) / refill)", limit, "s")
    if limit > 0:
        line("  drctl / limit floor", slow.launch_span_s / limit, "x", "  (target <= 1.5)")
    line("  tier-start phases (the compute.start steps)", _start_phases_s(slow), "s")
    print()
    kinds = sorted(set().union(*(c.calls for c in calls), slow_calls.calls, before.calls))
    head = "".join(f"{f'rep {i}':>8}" for i in range(1, len(calls) + 1))
    print(f"EC2 calls by kind    {head}{'floor':>8}{'throttled':>11}{'refused':>9}")
    for kind in kinds:
        cells = "".join(f"{c.calls[kind]:>8}" for c in calls)
        print(
            f"  {kind:<19}{cells}{before.calls.get(kind, 0):>8}{slow_calls.calls[kind]:>11}"
            f"{slow_calls.throttled[kind]:>9}"
        )
    total = "".join(f"{c.calls.total():>8}" for c in calls)
    print(
        f"  {'all':<19}{total}{sum(before.calls.values()):>8}{slow_calls.calls.total():>11}"
        f"{slow_calls.throttled.total():>9}"
    )


# -- main --------------------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.drill_overhead", description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=int(os.environ.get("BENCH_REPS", 3)), help="drills (3)")
    parser.add_argument("--tiers", type=int, default=4, help="tiers of standby instances (4)")
    parser.add_argument("--per-tier", type=int, default=50, help="standby instances per tier (50)")
    parser.add_argument("--interval", type=int, default=1, help="wait_healthy poll interval, seconds (1)")
    parser.add_argument("--estate", help="estate name to reuse (default: a new bench-<8 hex>)")
    parser.add_argument("--keep-estate", action="store_true", help="leave the estate in the lab afterwards")
    args = parser.parse_args(argv)
    if args.reps < 1 or args.tiers < 1 or args.per_tier < 1 or args.interval < 1:
        parser.error("--reps, --tiers, --per-tier and --interval must be at least 1")
    return args


def main(argv: Sequence[str]) -> int:
    lab = lab_settings()
    if lab is None:
        print(f"bench: {NOT_RUNNING}", file=sys.stderr)
        return 2
    args = parse_args(argv)
    shape = EstateShape(args.estate or f"bench-{uuid.uuid4().hex[:8]}", args.tiers, args.per_tier)
    ec2 = ec2_client()
    work = Path(tempfile.mkdtemp(prefix="drctl-bench-drill-"))
    reps: list[RepFigures] = []
    calls: list[Ec2ThrottleProxy] = []
    floors: list[Floor] = []
    throttled: tuple[RepFigures, Ec2ThrottleProxy] | None = None
    checks = True
    try:
        print(
            f"bench: estate {shape.name}: {shape.tiers} tiers x {shape.per_tier} standbys in {REGION}", file=sys.stderr
        )
        start = time.perf_counter()
        estate = ensure_estate(ec2, shape)
        print(f"bench: estate ready in {time.perf_counter() - start:.1f}s", file=sys.stderr)
        checks = status_checks_reported(ec2, estate)
        outputs, runbook = work / "stack-outputs.json", work / "runbook.yaml"
        outputs.write_text(json.dumps(stack_outputs(estate), indent=2) + "\n", encoding="utf-8")
        runbook.write_text(runbook_yaml(estate, args.interval, checks), encoding="utf-8")
        # The floor right before the first rep and right after the last: LocalStack slows down as terminated
        # instances pile up in the region, so each drill is held against a floor measured at its own load.
        print("bench: the batched floor on the same estate, before the drills", file=sys.stderr)
        floors.append(batched_floor(ec2, estate))
        for rep in range(1, args.reps + 1):
            figures, counted = _rep(f"rep {rep}", work / f"state-{rep}", runbook, outputs, estate, ec2, lab, None)
            reps.append(figures)
            calls.append(counted)
        print("bench: the batched floor again, after the drills", file=sys.stderr)
        floors.append(batched_floor(ec2, estate))
        throttled = _rep("throttled", work / "state-throttled", runbook, outputs, estate, ec2, lab, BENCH_LIMITS)
    finally:
        if args.keep_estate:
            print(f"bench: estate kept (--keep-estate); reuse it with --estate {shape.name}", file=sys.stderr)
        else:
            problems = teardown(ec2, shape.name)
            note = "; left: " + ", ".join(problems) if problems else ""
            print(f"bench: estate {shape.name} removed{note}", file=sys.stderr)
    print()
    print(
        f"drill overhead: {shape.tiers} tiers x {shape.per_tier} standby instances, {len(reps)} reps, "
        f"wait_healthy every {args.interval}s, status checks {'on' if checks else 'off (not reported)'}"
    )
    print(
        f"ALL FIGURES COME FROM LOCALSTACK EMULATORS on a {os.cpu_count()}-core machine, not from AWS: "
        "they show where drctl spends its own time, not how long a real drill takes."
    )
    print(f"runbook and stack outputs: {work}")
    print_table(reps, shape.tier_names)
    if len(floors) == 2 and throttled is not None:
        print_yardsticks(reps, calls, floors, throttled)
    for r in [*reps, *([throttled[0]] if throttled else [])]:
        for note in r.notes:
            print(f"note (drill {r.run_id}): {note}")
        if r.left_live:
            print(f"LEFT BEHIND: drill {r.run_id} has {r.left_live} live instance(s) after its cleanup")
    every = [*reps, *([throttled[0]] if throttled else [])]
    failed = [r for r in every if r.status != "succeeded" or r.exit_code != 0]
    return 1 if failed or any(r.left_live for r in every) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
