"""A run report: what one journaled run did, step by step, and whether it met its recovery objectives.

Built from the run journal (which holds only redacted text) plus the runbook file the run was started from,
for what the journal does not keep: each step's action and tier, and the objectives. A runbook that no longer
validates on its own gives them from its text, unchecked; one that was moved or edited since the run leaves
them unknown. Either way the report covers every step and its notes say why.

Measured RTO is the time from the run's start to the end of the last successful step of the highest tier
that ran: the moment the last recovery step was healthy. Achieved RPO is the age of the restored recovery
point at the run's start: run start minus the point's ``started`` time (``point_started`` in the outputs of a
``backup.restore`` step). When only ``point_created`` is known, that gives a lower bound on the age: enough to
say an objective was missed, never enough to say it was met.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal, cast

from orchestrator.durations import parse_duration
from orchestrator.engine.executor import param_overrides, runbook_sha256, skipped_for_other_mode
from orchestrator.engine.journal import RunJournal, RunStatus, StepRecord, StepState
from orchestrator.engine.redact import redact
from orchestrator.errors import DrError, NotFound
from orchestrator.runbook.loader import LoadedRunbook, parse_runbook
from orchestrator.runbook.problems import RunbookInvalid
from orchestrator.runbook.yamlsource import YamlError, load_yaml

Verdict = Literal["pass", "fail", "unknown"]
RESTORE_ACTION = "backup.restore"


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
    return RunbookFacts({s.id: (s.action, s.tier) for s in spec.steps}, spec.objectives.rto, spec.objectives.rpo)


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
    for item in steps:
        if not isinstance(item, dict):
            return None
        step_id, action, tier = item.get("id"), item.get("action"), item.get("tier", 1)
        if not isinstance(step_id, str) or not isinstance(action, str) or type(tier) is not int:
            return None
        facts[step_id] = (action, tier)
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
    return RunbookFacts(facts, durations[0], durations[1])


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
    rpo = check_rpo(record.started, steps, facts.rpo if facts else None, facts is not None)
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
    run_started: str, steps: tuple[StepReport, ...], objective: timedelta | None, known: bool
) -> ObjectiveCheck:
    """Run start minus the ``started`` time of the recovery point the last successful restore restored."""
    obj = _objective(objective)
    if not known:
        return ObjectiveCheck("rpo", obj, None, "unknown", "step actions are unknown (see notes)")
    restores = [s for s in steps if s.action == RESTORE_ACTION and s.status == StepState.SUCCEEDED]
    if not restores:
        return ObjectiveCheck("rpo", obj, None, "unknown", f"no {RESTORE_ACTION} step succeeded in this run")
    last = max(restores, key=lambda s: s.finished or "")
    point = last.outputs.get("recovery_point", "?")
    started = last.outputs.get("point_started")
    if isinstance(started, str) and (raw_age := _seconds(started, run_started)) is not None:
        # A point taken during the run itself (a drill that backs up first) has lost nothing: zero, not negative.
        age = max(raw_age, 0.0)
        detail = f"{_compare(age, objective)}: age of recovery point {point} (restored by {last.step_id}) at run start"
        if objective is None:
            detail += "; the runbook sets no rpo objective"
        return ObjectiveCheck("rpo", obj, age, _verdict(age, objective), detail)
    created = last.outputs.get("point_created")
    if isinstance(created, str) and (bound := _seconds(created, run_started)) is not None:
        gap = (
            f"{last.step_id} recorded only point_created for {point}, not point_started (when its data was read); "
            f"the point is at least {bound:g}s old"
        )
        if obj is not None and bound > obj:
            return ObjectiveCheck("rpo", obj, bound, "fail", gap + ", already over the objective")
        return ObjectiveCheck("rpo", obj, None, "unknown", gap + ", maybe more")
    return ObjectiveCheck("rpo", obj, None, "unknown", f"{last.step_id} recorded no recovery point time")
