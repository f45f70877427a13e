"""Load a runbook file into a validated, ordered runbook, or fail with every mistake as ``FILE:LINE:COL``.

Stages, each run only when the ones before found nothing, so one mistake is reported once and not again as
the confusing consequences it has further on:

1. read the file as UTF-8 and parse one YAML document, keeping every node's position;
2. check ``apiVersion`` and ``kind`` (a document of another version would fail in ways that mislead);
3. validate the parameter declarations and bind them to defaults and ``-p`` overrides;
4. check every reference and bind parameters, then validate the whole document against the models;
5. build the recovery graph, then check the ``${steps...}`` references against it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from pydantic import TypeAdapter, ValidationError

from orchestrator.runbook.fields import Name
from orchestrator.runbook.graph import GraphError, RecoveryGraph, build_graph
from orchestrator.runbook.models import API_VERSION, KIND, Parameter, ParamValue, Runbook
from orchestrator.runbook.params import bind
from orchestrator.runbook.problems import Diagnostic, DocPath, Problem, RunbookInvalid, describe_value
from orchestrator.runbook.pydantic_errors import problems_from
from orchestrator.runbook.references import bind_references, step_reference_problems
from orchestrator.runbook.yamlsource import START, SourceMap, YamlError, load_yaml
from orchestrator.stack_outputs import StackOutputs

_PARAMETERS = TypeAdapter(dict[Name, Parameter])


@dataclass(frozen=True)
class LoadedRunbook:
    """A runbook that passed every check, with what it was checked against."""

    source: str
    runbook: Runbook
    graph: RecoveryGraph
    parameters: Mapping[str, ParamValue]
    stack: StackOutputs | None
    sources: SourceMap


def load_runbook(
    path: Path,
    overrides: Mapping[str, str] | None = None,
    stack: StackOutputs | None = None,
    *,
    source: str | None = None,
) -> LoadedRunbook:
    """Load and check ``path``; raises ``RunbookInvalid`` naming every mistake found. ``source`` is how the
    file is named in diagnostics (default: the path)."""
    source = source if source is not None else str(path)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise RunbookInvalid([Diagnostic(source, 1, 1, f"cannot read this file: {err.strerror or err}")]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        column = err.start - (raw.rfind(b"\n", 0, err.start) + 1) + 1
        message = f"not UTF-8 text (byte 0x{raw[err.start]:02x}); save the file as UTF-8"
        raise RunbookInvalid([Diagnostic(source, line, column, message)]) from None
    return parse_runbook(text, source, overrides, stack)


def parse_runbook(
    text: str, source: str, overrides: Mapping[str, str] | None = None, stack: StackOutputs | None = None
) -> LoadedRunbook:
    """``load_runbook`` for text already read; ``source`` names it in diagnostics."""
    try:
        data, sources = load_yaml(text)
    except YamlError as err:
        raise RunbookInvalid([Diagnostic(source, m.line, m.column, message) for m, message in err.problems]) from None
    report = _Report(source, sources)

    if not isinstance(data, dict):
        shape = f"a runbook must be a mapping with apiVersion, kind, metadata and spec, got {describe_value(data)}"
        report.fail([Problem((), shape)])
    report.fail_if(_header_problems(data))

    spec = data.get("spec")
    declared_raw = spec.get("parameters", {}) if isinstance(spec, dict) else {}
    try:
        declared = _PARAMETERS.validate_python(declared_raw)
    except ValidationError as err:
        report.fail(problems_from(err, declared_raw, ("spec", "parameters")))
    values, problems = bind(declared, overrides or {})
    report.fail_if(problems)

    bound = bind_references(data, values, stack)
    try:
        runbook = Runbook.model_validate(bound.data)
    except ValidationError as err:
        # A text whose reference is already reported also fails its field's type: say it once.
        reported = [p.path for p in bound.problems]
        model = [p for p in problems_from(err, bound.data) if not any(_within(p.path, r) for r in reported)]
        report.fail([*bound.problems, *model])
    report.fail_if(bound.problems)

    try:
        graph = build_graph(runbook.spec.steps)
    except GraphError as err:
        report.fail(err.problems)
    report.fail_if(step_reference_problems(bound.step_references, runbook, graph))
    return LoadedRunbook(source, runbook, graph, values, stack, sources)


def _header_problems(data: Mapping[str, object]) -> list[Problem]:
    problems = []
    for key, expected in (("apiVersion", API_VERSION), ("kind", KIND)):
        if key not in data:
            problems.append(
                Problem((), f"missing {key!r}; a runbook starts with apiVersion: {API_VERSION}, kind: {KIND}")
            )
        elif data[key] != expected:
            got = data[key]
            shown = repr(got) if isinstance(got, str) else describe_value(got)
            problems.append(Problem((key,), f"{key} must be {expected!r}, got {shown}"))
    return problems


def _within(path: DocPath, ancestor: DocPath) -> bool:
    return path[: len(ancestor)] == ancestor


class _Report:
    """Turns problems at document paths into diagnostics at file positions, and raises them."""

    def __init__(self, source: str, sources: SourceMap) -> None:
        self._source = source
        self._sources = sources

    def diagnostic(self, problem: Problem) -> Diagnostic:
        mark = self._sources.locate(problem.path, at_key=problem.at_key, offset=problem.offset)
        message = problem.message
        if problem.first is not None:
            message += f" (first at line {self._sources.locate(problem.first).line})"
        return Diagnostic(self._source, mark.line, mark.column, message)

    def fail(self, problems: Iterable[Problem]) -> NoReturn:
        diagnostics = [self.diagnostic(p) for p in problems]
        raise RunbookInvalid(diagnostics or [Diagnostic(self._source, START.line, START.column, "invalid runbook")])

    def fail_if(self, problems: Iterable[Problem]) -> None:
        problems = list(problems)
        if problems:
            self.fail(problems)
