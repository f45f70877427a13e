"""A run report: what one journaled run did, step by step, and whether it met its recovery objectives.

Built from the run journal (which holds only redacted text) plus the runbook file the run was started from,
for what the journal does not keep: each step's action and tier, and the objectives. A runbook that no longer
validates on its own gives them from its text, unchecked; one that was moved or edited since the run leaves
them unknown. Either way the report covers every step and its notes say why.

Measured RTO is the time from the run's start to the end of the last successful step of the highest tier
that ran: the moment the last recovery step was healthy. That time is split into phases (copy, verify, restore,
boot, health, dns, other; see ``orchestrator.report.phases``).

Achieved RPO is measured from the *disaster instant*: the run's start, or the time given with ``--disaster-at``
(journaled with the run). When a step found the newest committed row of the restored data (a ``data_timestamp``
output, e.g. of ``db.check``), RPO is the disaster instant minus that row's time (method ``data``); with several
such steps, the last one in tier and end order counts: it checked the data as the recovery left it. Otherwise it
is the age of the restored recovery point at the disaster instant: the instant minus the point's ``started``
time (``point_started`` in the outputs of a ``backup.restore`` step; method ``recovery point age``). When only
``point_created`` is known, that gives a lower bound on the age: enough to say an objective was missed, never
enough to say it was met. RPO is never negative: data newer than the disaster instant means nothing was lost.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal, cast

from orchestrator.durations import parse_duration
from orchestrator.engine.executor import param_overrides, runbook_sha256, skipped_for_other_mode
from orchestrator.engine.journal import RunJournal, RunStatus, StepRecord, StepState
from orchestrator.engine.redact import redact
from orchestrator.errors import DrError, NotFound
from orchestrator.report.phases import Interval, PhaseBreakdown, breakdown
from orchestrator.report.protection import protection_note
from orchestrator.report.verification import verification
from orchestrator.runbook.loader import LoadedRunbook, parse_runbook
from orchestrator.runbook.problems import RunbookInvalid
from orchestrator.runbook.yamlsource import YamlError, load_yaml

Verdict = Literal["pass", "fail", "unknown"]
RpoMethod = Literal["data", "recovery point age"]
DisasterSource = Literal["run start", "--disaster-at"]
DATA_OUTPUT = "data_timestamp"
"""The step output that holds the newest committed row found in the restored data (ISO 8601 with an offset)."""
RESTORE_ACTIONS = frozenset({"backup.restore", "db.restore"})
"""Steps that restore a recovery point; their ``point_started``/``point_created`` outputs date it."""


@dataclass(frozen=True)
class AttemptReport:
    number: int
    started: str
    finished: str | None
    status: str | None
    error: str | None


@dataclass(frozen=True)
class StepReport:
    step_id: str
    action: str | None
    tier: int | None
    status: str
    attempts: tuple[AttemptReport, ...]
    started: str | None
    finished: str | None
    duration_seconds: float | None
    """From the first attempt's start to the step's end: ``started`` is when the step was scheduled, which
    may be earlier when it waited for a free worker."""
    outputs: dict[str, Any]
    error: str | None
    approval: str | None
    """How a gated step was approved ("auto-approved (drill)", "approved by --approve-all"), else None."""
    skip_reason: str | None = None
    """Why a skipped step did not run ("needs 'x', which did not succeed"), from the run's events."""
    verified: str = "unverified"
    """How this step's path has been verified: lab, unit or unverified (``orchestrator.report.verification``)."""

    @property
    def error_line(self) -> str:
        """The error's first line, for one-line formats."""
        return (self.error or "").strip().splitlines()[0] if (self.error or "").strip() else ""


@dataclass(frozen=True)
class EventReport:
    at: str
    step_id: str | None
    kind: str
    message: str


@dataclass(frozen=True)
class ObjectiveCheck:
    name: Literal["rto", "rpo"]
    objective_seconds: float | None
    measured_seconds: float | None
    verdict: Verdict
    detail: str
    """Why the verdict is what it is, in one line (always set; the reason when ``unknown``)."""


@dataclass(frozen=True)
class CleanupReport:
    """One resource a drill created and what its cleanup did to it."""

    kind: str
    """``instance``, ``image``, ``dns-record``, ``objects``..."""
    resource_id: str
    location: str
    """Region or container the resource lives in."""
    outcome: str
    """``removed``, ``already gone`` or ``failed``."""
    at: str | None
    detail: str = ""


@dataclass(frozen=True)
class RunReport:
    run_id: str
    runbook_name: str
    runbook_path: str
    mode: str
    status: str
    started: str
    finished: str | None
    params: dict[str, Any]
    steps: tuple[StepReport, ...]
    events: tuple[EventReport, ...]
    rto: ObjectiveCheck
    rpo: ObjectiveCheck
    notes: tuple[str, ...] = ()
    cleanup: tuple[CleanupReport, ...] = ()
    """For a drill: what its cleanup removed (or failed to), in the order it acted."""
    disaster_at: str | None = None
    """The disaster instant RPO is measured from: ``--disaster-at`` when the run was given one, else its start."""
    disaster_at_source: DisasterSource = "run start"
    rpo_method: RpoMethod | None = None
    """How RPO was measured: ``data`` (the newest restored row) or ``recovery point age``; None when neither
    could be tried (step actions unknown and no step gave a ``data_timestamp``)."""
    rto_phases: PhaseBreakdown | None = None
    """The RTO (or, when none was measured, the run) by phase; None when step actions are unknown."""

    @property
    def duration_seconds(self) -> float | None:
        return _seconds(self.started, self.finished)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> RunReport:
        steps = tuple(
            StepReport(**{**s, "attempts": tuple(AttemptReport(**a) for a in s["attempts"])}) for s in doc["steps"]
        )
        return cls(
            **{
                **doc,
                "steps": steps,
                "events": tuple(EventReport(**e) for e in doc["events"]),
                "rto": ObjectiveCheck(**doc["rto"]),
                "rpo": ObjectiveCheck(**doc["rpo"]),
                "notes": tuple(doc.get("notes", ())),
                "cleanup": tuple(CleanupReport(**c) for c in doc.get("cleanup", ())),
                "rto_phases": PhaseBreakdown.from_dict(doc["rto_phases"]) if doc.get("rto_phases") else None,
            }
        )


def _masked(value: Any, secrets: frozenset[str]) -> Any:
    if isinstance(value, str):
        return redact(value, secrets)
    if isinstance(value, dict):
        return {k: _masked(v, secrets) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_masked(v, secrets) for v in value]
    return value


def redact_report(report: RunReport, secrets: frozenset[str]) -> RunReport:
    """``report`` with every secret masked in its free text (errors, outputs, parameters, messages, notes).
    The journal holds redacted text already: this is a second line of defence that, unlike masking rendered
    output, cannot break a format's syntax or the report's own words (statuses, verdicts, field names)."""
    if not secrets:
        return report

    def text(value: str | None) -> str | None:
        return None if value is None else redact(value, secrets)

    steps = tuple(
        replace(
            s,
            outputs=_masked(s.outputs, secrets),
            error=text(s.error),
            approval=text(s.approval),
            skip_reason=text(s.skip_reason),
            attempts=tuple(replace(a, error=text(a.error)) for a in s.attempts),
        )
        for s in report.steps
    )
    return replace(
        report,
        runbook_path=redact(report.runbook_path, secrets),
        params=_masked(report.params, secrets),
        steps=steps,
        events=tuple(replace(e, message=redact(e.message, secrets)) for e in report.events),
        rto=replace(report.rto, detail=redact(report.rto.detail, secrets)),
        rpo=replace(report.rpo, detail=redact(report.rpo.detail, secrets)),
        notes=tuple(redact(n, secrets) for n in report.notes),
        cleanup=tuple(replace(c, detail=redact(c.detail, secrets)) for c in report.cleanup),
    )


@dataclass(frozen=True)
class RunbookFacts:
    """What the report needs from the runbook: each step's action and tier (in runbook order), the objectives."""

    steps: Mapping[str, tuple[str, int]]
    rto: timedelta | None
    rpo: timedelta | None
    places: Mapping[str, str] = field(default_factory=dict)
    """Where a step acts, when it says or its stack does: its ``cloud`` (compute) or DNS ``provider``."""


def runbook_facts(path: Path, params: Mapping[str, Any], sha256: str) -> tuple[RunbookFacts | None, str | None]:
    """The facts of the runbook a run started from, or None and a note saying why they are unknown. A runbook
    that no longer loads without its run's context (``${stack...}`` references need the stack outputs file)
    still gives its facts from its text, unchecked, with a note."""
    try:
        if runbook_sha256(path) != sha256:
            return None, f"{path} changed since the run started: step actions, tiers and objectives are unknown"
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        why = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
        return None, f"cannot read {path}: {why}; step actions, tiers and objectives are unknown"
    try:
        loaded = parse_runbook(text, str(path), param_overrides(params))
    except (RunbookInvalid, DrError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        facts = _raw_facts(text)
        if facts is None:
            return None, f"cannot load {path} again ({first}); step actions, tiers and objectives are unknown"
        return facts, f"{path} does not load on its own ({first}); actions, tiers and objectives read unchecked"
    return facts_of(loaded), None


def facts_of(loaded: LoadedRunbook) -> RunbookFacts:
    """The facts of a runbook already loaded, as the command that ran it has it."""
    spec = loaded.runbook.spec
    places: dict[str, str] = {}
    for s in spec.steps:
        given = s.with_.model_dump()
        place = given.get("cloud") or given.get("provider")
        if place is None and s.action.startswith("dns.") and loaded.stack is not None:
            place = loaded.stack.dns_provider  # what the DNS actions default to
        if isinstance(place, str):
            places[s.id] = place
    steps = {s.id: (s.action, s.tier) for s in spec.steps}
    return RunbookFacts(steps, spec.objectives.rto, spec.objectives.rpo, places)


def _raw_facts(text: str) -> RunbookFacts | None:
    """Step actions, tiers and objectives straight from the runbook's YAML, or None if they are not plain."""
    try:
        data, _ = load_yaml(text)
    except YamlError:
        return None
    spec = data.get("spec") if isinstance(data, dict) else None
    steps = spec.get("steps") if isinstance(spec, dict) else None
    if not isinstance(spec, dict) or not isinstance(steps, list):
        return None
    facts: dict[str, tuple[str, int]] = {}
    places: dict[str, str] = {}
    for item in steps:
        if not isinstance(item, dict):
            return None
        step_id, action, tier = item.get("id"), item.get("action"), item.get("tier", 1)
        if not isinstance(step_id, str) or not isinstance(action, str) or type(tier) is not int:
            return None
        facts[step_id] = (action, tier)
        given = item.get("with")
        place = (given.get("cloud") or given.get("provider")) if isinstance(given, dict) else None
        if isinstance(place, str) and "${" not in place:
            places[step_id] = place
    objectives = spec.get("objectives", {})
    if not isinstance(objectives, dict):
        return None
    durations: list[timedelta | None] = []
    for name in ("rto", "rpo"):
        value = objectives.get(name)
        try:
            durations.append(parse_duration(value) if isinstance(value, str) else None)
        except DrError:
            durations.append(None)
    return RunbookFacts(facts, durations[0], durations[1], places)


def build_report(journal: RunJournal, run_id: str, facts: RunbookFacts | None = None) -> RunReport:
    """The report of ``run_id``; ``facts`` default to those of the runbook file recorded for the run.
    Raises ``NotFound`` for a run the journal does not hold."""
    record = journal.run(run_id)
    if record is None:
        raise NotFound(f"no run {run_id!r} in {journal.path}; drctl status lists the recent ones")
    notes: list[str] = []
    if facts is None:
        facts, note = runbook_facts(Path(record.runbook_path), record.params, record.runbook_sha256)
        if note:
            notes.append(note)
    records = journal.steps(run_id)
    events = tuple(EventReport(e.at, e.step_id, e.kind, e.message) for e in journal.events(run_id))
    attempts, note = _attempts(journal.path, run_id)
    if note:
        notes.append(note)
    order = [s for s in (facts.steps if facts else {}) if s in records]
    order += sorted((s for s in records if s not in order), key=lambda s: (records[s].started or "~", s))
    steps = tuple(_step(records[s], facts, attempts.get(s, ()), events) for s in order)
    rto = check_rto(record.started, record.status, steps, facts.rto if facts else None, facts is not None)
    source: DisasterSource = "--disaster-at" if record.disaster_at else "run start"
    disaster = record.disaster_at or record.started
    rpo, method, rpo_notes = measure_rpo(disaster, source, steps, facts.rpo if facts else None, facts is not None)
    notes += rpo_notes
    if (kept := protection_note(disaster, steps)) is not None:
        notes.append(kept)
    phases = rto_phases(record.started, record.finished, rto, steps) if facts is not None else None
    cleanup = tuple(
        CleanupReport(r.kind, r.resource_id, r.location, r.outcome or "not yet removed", r.cleaned, r.note or "")
        for r in journal.resources(run_id)
    )
    return RunReport(
        record.run_id,
        record.runbook_name,
        record.runbook_path,
        record.mode,
        record.status.value,
        record.started,
        record.finished,
        dict(record.params),
        steps,
        events,
        rto,
        rpo,
        tuple(notes),
        cleanup,
        disaster,
        source,
        method,
        phases,
    )


def _attempts(path: Path, run_id: str) -> tuple[dict[str, tuple[AttemptReport, ...]], str | None]:
    """The journal has no reader for attempts: read them straight from its table, read-only."""
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            rows = db.execute(
                "SELECT step_id, number, started, finished, status, error FROM attempts WHERE run_id = ? "
                "ORDER BY step_id, number",
                (run_id,),
            ).fetchall()
        finally:
            db.close()
    except sqlite3.Error as err:
        return {}, f"cannot read the attempts of run {run_id} from {path}: {err}"
    out: dict[str, list[AttemptReport]] = {}
    for step_id, number, started, finished, status, error in rows:
        out.setdefault(step_id, []).append(AttemptReport(int(number), started, finished, status, error))
    return {k: tuple(v) for k, v in out.items()}, None


def _step(
    rec: StepRecord, facts: RunbookFacts | None, attempts: tuple[AttemptReport, ...], events: tuple[EventReport, ...]
) -> StepReport:
    action, tier = facts.steps.get(rec.step_id, (None, None)) if facts else (None, None)
    approvals = [e.message for e in events if e.kind == "approval" and e.step_id == rec.step_id]
    skips = [e.message for e in events if e.kind == StepState.SKIPPED and e.step_id == rec.step_id]
    return StepReport(
        rec.step_id,
        action,
        tier,
        rec.status.value,
        attempts,
        rec.started,
        rec.finished,
        _seconds(attempts[0].started if attempts else rec.started, rec.finished),
        dict(rec.outputs),
        rec.error,
        approvals[-1] if approvals else None,
        skips[-1] if skips and rec.status == StepState.SKIPPED else None,
        verification(action, facts.places.get(rec.step_id) if facts else None),
    )


def parse_time(text: str | None) -> datetime | None:
    """A journal timestamp, or None when there is none or it does not parse."""
    if not text:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def _seconds(start: str | None, end: str | None) -> float | None:
    a, b = parse_time(start), parse_time(end)
    if a is None or b is None:
        return None
    try:
        return (b - a).total_seconds()
    except TypeError:  # one naive, one aware: not comparable
        return None


def _compare(measured: float, objective: timedelta | None) -> str:
    if objective is None:
        return f"{measured:g}s"
    sign = "<=" if measured <= objective.total_seconds() else ">"
    return f"{measured:g}s {sign} objective {objective.total_seconds():g}s"


def _verdict(measured: float, objective: timedelta | None) -> Verdict:
    if objective is None:
        return "unknown"
    return "pass" if measured <= objective.total_seconds() else "fail"


def _objective(value: timedelta | None) -> float | None:
    return None if value is None else value.total_seconds()


def check_rto(
    run_started: str, status: RunStatus, steps: tuple[StepReport, ...], objective: timedelta | None, known: bool
) -> ObjectiveCheck:
    """From the run's start to the end of the last successful step of the highest tier that ran."""
    obj = _objective(objective)
    if not known:
        return ObjectiveCheck("rto", obj, None, "unknown", "step tiers are unknown (see notes)")
    ran = [s for s in steps if s.started is not None and s.tier is not None]
    if not ran:
        return ObjectiveCheck("rto", obj, None, "unknown", "no step ran")
    # The highest tier the run meant to reach, not the highest it got to: a run stopped by a failure in tier
    # 2 of 6 has not recovered, however fast tier 2 ended. Steps of the other mode (``when``) do not count.
    meant = [s for s in steps if s.tier is not None and not skipped_for_other_mode(s.skip_reason)]
    top = max(cast(int, s.tier) for s in meant or ran)
    ends = [f for s in ran if s.tier == top and s.status == StepState.SUCCEEDED and (f := s.finished)]
    if not ends:
        if status in (RunStatus.RUNNING, RunStatus.INTERRUPTED):
            return ObjectiveCheck("rto", obj, None, "unknown", f"no step of tier {top} has succeeded yet")
        verdict: Verdict = "fail" if obj is not None else "unknown"
        return ObjectiveCheck("rto", obj, None, verdict, f"no step of tier {top} succeeded: recovery did not complete")
    end = max(ends, key=lambda t: parse_time(t) or datetime.min)
    measured = _seconds(run_started, end)
    if measured is None:
        return ObjectiveCheck("rto", obj, None, "unknown", "unreadable timestamps in the journal")
    detail = f"{_compare(measured, objective)}: run start to the end of the last successful tier-{top} step"
    if objective is None:
        detail += "; the runbook sets no rto objective"
    return ObjectiveCheck("rto", obj, measured, _verdict(measured, objective), detail)


def check_rpo(
    anchor: str, steps: tuple[StepReport, ...], objective: timedelta | None, known: bool, label: str = "run start"
) -> ObjectiveCheck:
    """``anchor`` (the disaster instant: the run's start unless ``--disaster-at`` gave one, named by ``label``)
    minus the ``started`` time of the recovery point the last successful restore restored."""
    obj = _objective(objective)
    if not known:
        return ObjectiveCheck("rpo", obj, None, "unknown", "step actions are unknown (see notes)")
    restores = [s for s in steps if s.action in RESTORE_ACTIONS and s.status == StepState.SUCCEEDED]
    if not restores:
        return ObjectiveCheck(
            "rpo", obj, None, "unknown", "no backup.restore step (or db.restore step) succeeded in this run"
        )
    last = max(restores, key=lambda s: s.finished or "")
    point = last.outputs.get("recovery_point", "?")
    started = last.outputs.get("point_started")
    if isinstance(started, str) and (raw_age := _seconds(started, anchor)) is not None:
        # A point taken during the run itself (a drill that backs up first) has lost nothing: zero, not negative.
        age = max(raw_age, 0.0)
        detail = f"{_compare(age, objective)}: age of recovery point {point} (restored by {last.step_id}) at {label}"
        if objective is None:
            detail += "; the runbook sets no rpo objective"
        return ObjectiveCheck("rpo", obj, age, _verdict(age, objective), detail)
    created = last.outputs.get("point_created")
    if isinstance(created, str) and (bound := _seconds(created, anchor)) is not None:
        gap = (
            f"{last.step_id} recorded only point_created for {point}, not point_started (when its data was read); "
            f"the point is at least {bound:g}s old"
        )
        if obj is not None and bound > obj:
            return ObjectiveCheck("rpo", obj, bound, "fail", gap + ", already over the objective")
        return ObjectiveCheck("rpo", obj, None, "unknown", gap + ", maybe more")
    return ObjectiveCheck("rpo", obj, None, "unknown", f"{last.step_id} recorded no recovery point time")


def _end_order(step: StepReport) -> tuple[int, float]:
    """Tier, then end time: the order in which steps left the data as the recovery found it."""
    end = parse_time(step.finished)
    return (step.tier if step.tier is not None else 0, end.timestamp() if end is not None else float("-inf"))


def _aware(text: object) -> datetime | None:
    value = parse_time(text) if isinstance(text, str) else None
    return value if value is not None and value.utcoffset() is not None else None


def measure_rpo(
    disaster: str, source: DisasterSource, steps: tuple[StepReport, ...], objective: timedelta | None, known: bool
) -> tuple[ObjectiveCheck, RpoMethod | None, list[str]]:
    """RPO measured from the disaster instant, with the method that measured it and any notes for the report.

    By data when a succeeded step gave a ``data_timestamp`` (the newest committed row it found in the restored
    data): the last such step in tier and end order counts, since it saw the data as the recovery left it.
    Otherwise by the restored recovery point's age (``check_rpo``)."""
    label = "run start" if source == "run start" else f"the disaster instant (--disaster-at {disaster})"
    checks = [s for s in steps if s.status == StepState.SUCCEEDED and DATA_OUTPUT in s.outputs]
    if not checks:
        if not known:
            return check_rpo(disaster, steps, objective, known, label), None, []
        return check_rpo(disaster, steps, objective, known, label), "recovery point age", []
    obj = _objective(objective)
    last = max(checks, key=_end_order)
    raw = last.outputs[DATA_OUTPUT]
    newest, instant = _aware(raw), _aware(disaster)
    if newest is None:
        why = f"{last.step_id} gave {DATA_OUTPUT} {raw!r}, not an ISO 8601 time with an offset"
        return ObjectiveCheck("rpo", obj, None, "unknown", why), "data", []
    if instant is None:
        why = f"the disaster instant {disaster!r} is not a readable time"
        return ObjectiveCheck("rpo", obj, None, "unknown", why), "data", []
    lost = (instant - newest).total_seconds()
    notes: list[str] = []
    where = "run start" if source == "run start" else f"--disaster-at {disaster}"
    detail = (
        f"{_compare(max(lost, 0.0), objective)}: disaster instant ({where}) minus the newest restored row "
        f"({newest.isoformat()}, found by {last.step_id})"
    )
    if lost < 0:
        detail += "; that row is newer than the disaster instant, so RPO is 0 (see notes)"
        hint = (
            "expected when the disaster instant is the run's start and the primary kept writing; "
            "--disaster-at gives the real instant"
            if source == "run start"
            else "the primary kept writing after the given --disaster-at"
        )
        notes.append(
            f"RPO is 0: {last.step_id} found a row written at {newest.isoformat()}, {-lost:g}s after the "
            f"disaster instant ({where}); {hint}"
        )
    if objective is None:
        detail += "; the runbook sets no rpo objective"
    measured = max(lost, 0.0)
    return ObjectiveCheck("rpo", obj, measured, _verdict(measured, objective), detail), "data", notes


def rto_phases(
    run_started: str, run_finished: str | None, rto: ObjectiveCheck, steps: tuple[StepReport, ...]
) -> PhaseBreakdown | None:
    """The RTO window (run start to the RTO's end) by phase; when no RTO was measured, the run from its start to
    its end (or to the last time the journal recorded, for a run still going). None when nothing can be
    placed: unreadable times, or no step ran."""
    start = _aware(run_started)
    if start is None:
        return None
    intervals: list[Interval] = []
    ends: list[datetime] = []
    for s in steps:
        begin = _aware(s.attempts[0].started if s.attempts else s.started)
        if begin is None:
            continue  # never ran (skipped, or refused at its gate)
        end = _aware(s.finished)
        intervals.append(Interval(s.step_id, s.action, begin, end))
        ends += [begin] if end is None else [begin, end]
    if not intervals:
        return None
    if rto.measured_seconds is not None:
        return breakdown(intervals, start, start + timedelta(seconds=rto.measured_seconds), "rto")
    finished = _aware(run_finished)
    stop = finished if finished is not None else max(ends)
    return breakdown(intervals, start, max(stop, start), "run")
