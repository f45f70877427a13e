"""The recovery order of a runbook's steps.

Rules: step ids are unique; every ``needs`` entry names another step; there are no cycles; a step needs only
steps of its own or an earlier tier. Tiers are barriers: every step of a tier ends before any step of the
next tier starts. Within a tier a step starts once its needs are done, so the steps of one tier fall into
*waves*: steps whose needs all lie in earlier waves, which may run in parallel.

The critical path is the longest chain of worst-case step durations: each tier's longest chain through its
needs, tier after tier. A step's worst case is its ``timeout`` (or a default estimate when it has none) for
every attempt, plus the waits between attempts. Approval gates are not counted: people are not timed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property
from graphlib import CycleError, TopologicalSorter

from orchestrator.errors import InvalidInput
from orchestrator.runbook.models import Step
from orchestrator.runbook.problems import DocPath, Problem, did_you_mean

DEFAULT_ESTIMATE = timedelta(minutes=5)
"""What a step without a ``timeout`` is assumed to take on the critical path."""


class GraphError(InvalidInput):
    """The steps do not form a valid recovery order; ``problems`` says where."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(p.message for p in self.problems))


@dataclass(frozen=True)
class Wave:
    """Steps that may run in parallel: all in one tier, each with every need in an earlier wave."""

    number: int
    tier: int
    steps: tuple[Step, ...]


@dataclass(frozen=True)
class CriticalPath:
    steps: tuple[str, ...]
    duration: timedelta
    estimated: tuple[str, ...]
    """Steps on the path without a timeout, counted at the default estimate."""


def _step_path(index: int, *rest: str | int) -> DocPath:
    return ("spec", "steps", index, *rest)


def worst_case(step: Step, default: timedelta = DEFAULT_ESTIMATE) -> timedelta:
    """The longest a step can take: every attempt running to its timeout, plus the waits between them."""
    attempt = step.timeout or default
    return attempt * step.retry.attempts + sum(step.retry.waits(), timedelta(0))


def graph_problems(steps: Sequence[Step]) -> list[Problem]:
    """Everything wrong with the order of ``steps``, each at the id or ``needs`` entry to fix."""
    first: dict[str, int] = {}
    duplicates = []
    for i, step in enumerate(steps):
        if step.id in first:
            duplicates.append(
                Problem(_step_path(i, "id"), f"duplicate step id {step.id!r}", first=_step_path(first[step.id], "id"))
            )
        else:
            first[step.id] = i
    if duplicates:
        return duplicates  # with two steps of one name, every later rule would be ambiguous

    problems: list[Problem] = []
    edges: dict[str, list[str]] = {}
    for i, step in enumerate(steps):
        edges[step.id] = []
        for j, need in enumerate(step.needs):
            where = _step_path(i, "needs", j)
            if need == step.id:
                problems.append(Problem(where, f"step {step.id!r} needs itself"))
            elif need not in first:
                hint = did_you_mean(need, [s for s in first if s != step.id])
                problems.append(Problem(where, f"step {step.id!r} needs {need!r}, which is not a step{hint}"))
            elif need in edges[step.id]:
                problems.append(Problem(where, f"step {step.id!r} lists {need!r} in needs twice"))
            else:
                edges[step.id].append(need)

    cycle = find_cycle(edges, order=list(first))
    if cycle is not None:
        at = steps[first[cycle[0]]].needs.index(cycle[1])
        problems.append(Problem(_step_path(first[cycle[0]], "needs", at), "dependency cycle: " + " -> ".join(cycle)))
        return problems

    for i, step in enumerate(steps):
        for j, need in enumerate(step.needs):
            needed = steps[first[need]] if need in first else None
            if needed is not None and needed.tier > step.tier:
                problems.append(
                    Problem(
                        _step_path(i, "needs", j),
                        f"step {step.id!r} (tier {step.tier}) needs {need!r} (tier {needed.tier}); "
                        "a step can only need steps of its own or an earlier tier",
                    )
                )
    return problems


def find_cycle(needs: Mapping[str, Sequence[str]], order: Sequence[str]) -> tuple[str, ...] | None:
    """A cycle as ``(a, b, c, a)`` where each step needs the next, starting at the step earliest in
    ``order``; None when there is none."""
    try:
        TopologicalSorter(needs).prepare()
    except CycleError as err:
        # graphlib lists each node before the node that needs it; reverse it to read "a needs b".
        ring = list(reversed(err.args[1]))[:-1]
        start = min(range(len(ring)), key=lambda k: order.index(ring[k]))
        ring = ring[start:] + ring[:start]
        return (*ring, ring[0])
    return None


def build_graph(steps: Sequence[Step]) -> RecoveryGraph:
    """The recovery order of ``steps``; raises ``GraphError`` listing every problem."""
    problems = graph_problems(steps)
    if problems:
        raise GraphError(problems)
    return RecoveryGraph(tuple(steps))


class RecoveryGraph:
    """A checked recovery order. Build it with ``build_graph``, which is what makes it trustworthy."""

    def __init__(self, steps: tuple[Step, ...]) -> None:
        self.steps: Mapping[str, Step] = {s.id: s for s in steps}
        self._index = {s.id: i for i, s in enumerate(steps)}

    @cached_property
    def tiers(self) -> tuple[int, ...]:
        return tuple(sorted({s.tier for s in self.steps.values()}))

    @cached_property
    def waves(self) -> tuple[Wave, ...]:
        waves: list[Wave] = []
        for tier in self.tiers:
            members = [s for s in self.steps.values() if s.tier == tier]
            sorter = TopologicalSorter({s.id: [n for n in s.needs if self.steps[n].tier == tier] for s in members})
            sorter.prepare()
            while sorter.is_active():
                ready = sorted(sorter.get_ready(), key=self._index.__getitem__)
                waves.append(Wave(len(waves) + 1, tier, tuple(self.steps[r] for r in ready)))
                sorter.done(*ready)
        return tuple(waves)

    @cached_property
    def order(self) -> tuple[str, ...]:
        """One serial order that respects needs and tiers: the waves, one after another."""
        return tuple(s.id for wave in self.waves for s in wave.steps)

    def wave_of(self, step_id: str) -> Wave:
        return next(w for w in self.waves if any(s.id == step_id for s in w.steps))

    def ancestors(self, step_id: str) -> frozenset[str]:
        """Every step ``step_id`` needs, directly or through other needs."""
        return self._ancestors[step_id]

    @cached_property
    def _ancestors(self) -> dict[str, frozenset[str]]:
        closure: dict[str, frozenset[str]] = {}
        for step_id in self.order:  # needs come first in this order, so their closures are ready
            needs = self.steps[step_id].needs
            closure[step_id] = frozenset(needs).union(*(closure[n] for n in needs))
        return closure

    def dependents(self, step_id: str) -> frozenset[str]:
        """Every step that needs ``step_id``, directly or through other needs (skipped when it fails)."""
        return frozenset(s for s, above in self._ancestors.items() if step_id in above)

    def critical_path(self, default: timedelta = DEFAULT_ESTIMATE) -> CriticalPath:
        chain: list[str] = []
        total = timedelta(0)
        for tier in self.tiers:
            finish: dict[str, timedelta] = {}
            via: dict[str, str | None] = {}
            for step_id in self.order:
                step = self.steps[step_id]
                if step.tier != tier:
                    continue
                before = [n for n in step.needs if self.steps[n].tier == tier]
                longest = max(before, key=lambda n: finish[n], default=None)
                via[step_id] = longest
                finish[step_id] = (finish[longest] if longest else timedelta(0)) + worst_case(step, default)
            last = max(finish, key=lambda s: finish[s])
            total += finish[last]
            tier_chain: list[str] = []
            at: str | None = last
            while at is not None:
                tier_chain.append(at)
                at = via[at]
            chain.extend(reversed(tier_chain))
        estimated = tuple(s for s in chain if self.steps[s].timeout is None)
        return CriticalPath(tuple(chain), total, estimated)
