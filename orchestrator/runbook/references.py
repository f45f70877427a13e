"""The references in a runbook document: found, checked and (for parameters) bound.

Only step and compensation ``with`` values and providers may hold references; anywhere else ``${`` is plain
text. Checks that need nothing but the declarations run on the raw document, before the model is built, so
``${params.x}`` can be replaced by its typed value first. Checks of ``${steps...}`` need the recovery graph
and run after it is built (``step_reference_problems``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from orchestrator.runbook.graph import RecoveryGraph
from orchestrator.runbook.interpolate import (
    InterpolationError,
    Reference,
    parse_template,
    stack_reference_problem,
    substitute,
)
from orchestrator.runbook.models import ParamValue, Runbook
from orchestrator.runbook.problems import DocPath, Problem, did_you_mean
from orchestrator.stack_outputs import StackOutputs


@dataclass(frozen=True)
class StepReference:
    """A ``${steps.ID.outputs.NAME}`` found at ``path``; ``owner`` is the index of the step whose ``with`` or
    ``compensate`` holds it, None in the runbook's own compensation."""

    path: DocPath
    ref: Reference
    owner: int | None
    in_compensation: bool


@dataclass(frozen=True)
class BoundDocument:
    data: dict[str, object]
    problems: tuple[Problem, ...]
    step_references: tuple[StepReference, ...]


@dataclass(frozen=True)
class _Site:
    owner: int | None
    in_compensation: bool
    steps_allowed: bool


class _Binder:
    def __init__(self, params: Mapping[str, ParamValue], stack: StackOutputs | None) -> None:
        self._params = params
        self._stack = stack
        self.problems: list[Problem] = []
        self.step_references: list[StepReference] = []

    def walk(self, value: object, path: DocPath, site: _Site) -> object:
        if isinstance(value, str):
            return self._text(value, path, site)
        if isinstance(value, list):
            return [self.walk(v, (*path, i), site) for i, v in enumerate(value)]
        if isinstance(value, dict):
            return {k: self.walk(v, (*path, k), site) for k, v in value.items()}
        return value

    def _text(self, text: str, path: DocPath, site: _Site) -> object:
        try:
            template = parse_template(text)
        except InterpolationError as err:
            self.problems.append(Problem(path, str(err), offset=err.offset))
            return text
        before = len(self.problems)
        for ref in template.references:
            message = self._problem(ref, site)
            if message is not None:
                self.problems.append(Problem(path, message, offset=ref.offset))
            elif ref.namespace == "steps":
                self.step_references.append(StepReference(path, ref, site.owner, site.in_compensation))
        if len(self.problems) > before:
            return text
        return substitute(template, lambda r: self._params[r.name] if r.namespace == "params" else None)

    def _problem(self, ref: Reference, site: _Site) -> str | None:
        if ref.namespace == "params" and ref.name not in self._params:
            if not self._params:
                return f"undefined parameter {ref.name!r} in {ref.text!r}; declare it under spec.parameters"
            return f"undefined parameter {ref.name!r} in {ref.text!r}{did_you_mean(ref.name, self._params)}"
        if ref.namespace == "stack":
            return stack_reference_problem(ref, self._stack)
        if ref.namespace == "steps" and not site.steps_allowed:
            return f"{ref.text!r}: providers are set up before any step runs, so they cannot read step outputs"
        return None


def bind_references(
    data: Mapping[str, object], params: Mapping[str, ParamValue], stack: StackOutputs | None
) -> BoundDocument:
    """Check every reference in ``data`` that can be checked without the step graph, replace parameters by
    their values, and collect the step references for later. Text with a bad reference is left as written."""
    binder = _Binder(params, stack)
    out = dict(data)
    spec = data.get("spec")
    if isinstance(spec, dict):
        spec = dict(spec)
        steps = spec.get("steps")
        if isinstance(steps, list):
            spec["steps"] = [_bind_step(binder, step, i) for i, step in enumerate(steps)]
        compensation = spec.get("compensation")
        if isinstance(compensation, list):
            site = _Site(owner=None, in_compensation=True, steps_allowed=True)
            spec["compensation"] = [
                _bind_with(binder, call, ("spec", "compensation", j), site) for j, call in enumerate(compensation)
            ]
        providers = spec.get("providers")
        if isinstance(providers, dict):
            spec["providers"] = binder.walk(
                providers, ("spec", "providers"), _Site(owner=None, in_compensation=False, steps_allowed=False)
            )
        out["spec"] = spec
    return BoundDocument(out, tuple(binder.problems), tuple(binder.step_references))


def _bind_step(binder: _Binder, step: object, index: int) -> object:
    path: DocPath = ("spec", "steps", index)
    step = _bind_with(binder, step, path, _Site(owner=index, in_compensation=False, steps_allowed=True))
    if isinstance(step, dict) and isinstance(step.get("compensate"), dict):
        site = _Site(owner=index, in_compensation=True, steps_allowed=True)
        step = {**step, "compensate": _bind_with(binder, step["compensate"], (*path, "compensate"), site)}
    return step


def _bind_with(binder: _Binder, call: object, path: DocPath, site: _Site) -> object:
    if isinstance(call, dict) and "with" in call:
        return {**call, "with": binder.walk(call["with"], (*path, "with"), site)}
    return call


def step_reference_problems(refs: Sequence[StepReference], runbook: Runbook, graph: RecoveryGraph) -> list[Problem]:
    """``${steps.ID.outputs.NAME}`` rules: ID is a step this one needs (directly or not), or itself inside
    its own ``compensate``; ID runs in every mode the reader runs in; NAME is an output of ID's action."""
    problems = []
    for sr in refs:
        message = _step_reference_problem(sr, runbook, graph)
        if message is not None:
            problems.append(Problem(sr.path, message, offset=sr.ref.offset))
    return problems


def _step_reference_problem(sr: StepReference, runbook: Runbook, graph: RecoveryGraph) -> str | None:
    target_id, output = sr.ref.path[0], sr.ref.path[2]
    target = graph.steps.get(target_id)
    if target is None:
        return f"{sr.ref.text!r} names no step of this runbook{did_you_mean(target_id, graph.steps)}"
    if sr.owner is not None:
        reader = runbook.spec.steps[sr.owner]
        if target_id == reader.id and not sr.in_compensation:
            return f"step {reader.id!r} cannot read its own outputs in 'with'; they do not exist before it runs"
        if target_id != reader.id and target_id not in graph.ancestors(reader.id):
            return (
                f"step {reader.id!r} reads outputs of {target_id!r} but does not need it, directly or through "
                f"other needs; add {target_id!r} to its needs"
            )
        missing = [m for m in ("drill", "failover") if reader.runs_in(m) and not target.runs_in(m)]
        if missing:
            return (
                f"step {reader.id!r} reads outputs of {target_id!r}, which does not run in {missing[0]} mode "
                f"(when: {target.when})"
            )
    outputs = target.spec.outputs
    if output not in outputs:
        listed = f"its outputs: {', '.join(sorted(outputs))}" if outputs else "it has no outputs"
        return (
            f"{sr.ref.text!r}: action {target.action} of step {target_id!r} has no output {output!r}"
            f"{did_you_mean(output, outputs)} ({listed})"
        )
    return None
