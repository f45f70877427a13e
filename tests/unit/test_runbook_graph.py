"""The recovery order: problems named where they are, waves, tiers, the critical path, and properties over
random graphs."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from orchestrator.runbook.graph import (
    DEFAULT_ESTIMATE,
    GraphError,
    RecoveryGraph,
    build_graph,
    find_cycle,
    graph_problems,
    worst_case,
)
from orchestrator.runbook.models import Step


def step(step_id: str, *needs: str, tier: int = 1, **fields: Any) -> Step:
    return Step.model_validate(
        {"id": step_id, "action": "notify", "with": {"message": step_id}, "needs": list(needs), "tier": tier, **fields}
    )


def messages(*steps: Step) -> list[tuple[tuple[str | int, ...], str]]:
    return [(p.path, p.message) for p in graph_problems(steps)]


def test_waves_run_needs_first_and_parallel_steps_together() -> None:
    graph = build_graph([step("d", "b", "c"), step("b", "a"), step("a"), step("c", "a"), step("e")])
    assert [[s.id for s in w.steps] for w in graph.waves] == [["a", "e"], ["b", "c"], ["d"]]
    assert graph.order == ("a", "e", "b", "c", "d")


def test_tiers_are_barriers_and_waves_never_mix_them() -> None:
    graph = build_graph([step("web", "db", tier=2), step("db"), step("cache", tier=2), step("dns", "web", tier=3)])
    assert [(w.number, w.tier, [s.id for s in w.steps]) for w in graph.waves] == [
        (1, 1, ["db"]),
        (2, 2, ["web", "cache"]),
        (3, 3, ["dns"]),
    ]
    assert graph.tiers == (1, 2, 3)
    assert graph.wave_of("cache").number == 2


def test_tier_gaps_keep_their_order() -> None:
    assert build_graph([step("late", tier=10), step("early", tier=2)]).tiers == (2, 10)


def test_ancestors_and_dependents() -> None:
    graph = build_graph([step("a"), step("b", "a"), step("c", "b"), step("x")])
    assert graph.ancestors("c") == {"a", "b"}
    assert graph.ancestors("a") == frozenset()
    assert graph.dependents("a") == {"b", "c"}


def test_cycle_is_named_from_the_first_step_in_the_file_at_its_needs_entry() -> None:
    problems = messages(step("x"), step("b", "c"), step("c", "a"), step("a", "x", "b"))
    assert problems == [(("spec", "steps", 1, "needs", 0), "dependency cycle: b -> c -> a -> b")]


def test_two_step_cycle() -> None:
    assert find_cycle({"a": ["b"], "b": ["a"]}, order=["b", "a"]) == ("b", "a", "b")
    assert find_cycle({"a": ["b"], "b": []}, order=["a", "b"]) is None


def test_self_dependency_missing_need_and_repeated_need() -> None:
    assert messages(step("copy-db"), step("verify", "verify", "copy-bd", "copy-db", "copy-db")) == [
        (("spec", "steps", 1, "needs", 0), "step 'verify' needs itself"),
        (
            ("spec", "steps", 1, "needs", 1),
            "step 'verify' needs 'copy-bd', which is not a step; did you mean 'copy-db'?",
        ),
        (("spec", "steps", 1, "needs", 3), "step 'verify' lists 'copy-db' in needs twice"),
    ]


def test_duplicate_ids_are_reported_alone() -> None:
    problems = graph_problems([step("a", "nope"), step("a")])
    assert [(p.path, p.message, p.first) for p in problems] == [
        (("spec", "steps", 1, "id"), "duplicate step id 'a'", ("spec", "steps", 0, "id"))
    ]


def test_a_need_in_a_later_tier_is_refused() -> None:
    assert messages(step("db", tier=2), step("web", "db", tier=1)) == [
        (
            ("spec", "steps", 1, "needs", 0),
            "step 'web' (tier 1) needs 'db' (tier 2); a step can only need steps of its own or an earlier tier",
        )
    ]


def test_build_graph_raises_with_every_problem() -> None:
    with pytest.raises(GraphError) as caught:
        build_graph([step("a", "a"), step("b", "zzz")])
    assert len(caught.value.problems) == 2


def test_worst_case_counts_every_attempt_and_the_waits_between() -> None:
    retried = step("a", timeout="10m", retry={"attempts": 4, "backoff": "1m", "max_backoff": "3m"})
    assert worst_case(retried) == timedelta(minutes=40 + 1 + 2 + 3)
    assert worst_case(step("b")) == DEFAULT_ESTIMATE
    assert worst_case(step("c", retry={"attempts": 3})) == 3 * DEFAULT_ESTIMATE


def test_critical_path_takes_the_longest_chain_of_each_tier() -> None:
    graph = build_graph(
        [
            step("fast", timeout="1m"),
            step("slow", timeout="20m"),
            step("after-fast", "fast", timeout="2m"),
            step("db", "after-fast", tier=2, timeout="30m"),
            step("web", tier=2),
        ]
    )
    path = graph.critical_path()
    assert path.steps == ("slow", "db")
    assert path.duration == timedelta(minutes=50)
    assert path.estimated == ()
    assert graph.critical_path(default=timedelta(hours=1)).steps == ("slow", "web")
    assert graph.critical_path(default=timedelta(hours=1)).estimated == ("web",)


# -- properties -------------------------------------------------------------------------------------------------


@st.composite
def tiered_dags(draw: st.DrawFn) -> list[Step]:
    """Random DAGs: a step may need any earlier step of its own or an earlier tier; shuffled into file order."""
    count = draw(st.integers(min_value=1, max_value=12))
    tiers = sorted(draw(st.lists(st.integers(min_value=1, max_value=4), min_size=count, max_size=count)))
    steps = []
    for i in range(count):
        needs = draw(st.lists(st.integers(min_value=0, max_value=i - 1), unique=True, max_size=3)) if i else []
        timeout = draw(st.sampled_from([None, "1m", "7m", "1h"]))
        fields = {"timeout": timeout} if timeout else {}
        steps.append(step(f"s{i}", *(f"s{j}" for j in needs), tier=tiers[i], **fields))
    return draw(st.permutations(steps))


@settings(max_examples=150, deadline=None)
@given(tiered_dags())
def test_waves_respect_needs_and_tiers(steps: list[Step]) -> None:
    graph = build_graph(steps)
    wave_of = {s.id: w for w in graph.waves for s in w.steps}
    assert sorted(wave_of) == sorted(s.id for s in steps)
    assert sum(len(w.steps) for w in graph.waves) == len(steps)
    for s in steps:
        assert wave_of[s.id].tier == s.tier
        for need in s.needs:
            assert wave_of[need].number < wave_of[s.id].number
    assert [w.tier for w in graph.waves] == sorted(w.tier for w in graph.waves)
    assert [w.number for w in graph.waves] == list(range(1, len(graph.waves) + 1))


@settings(max_examples=150, deadline=None)
@given(tiered_dags())
def test_critical_path_is_a_chain_as_long_as_its_steps(steps: list[Step]) -> None:
    graph = build_graph(steps)
    path = graph.critical_path()
    assert path.duration == sum((worst_case(graph.steps[s]) for s in path.steps), timedelta(0))
    assert path.duration >= max(worst_case(s) for s in steps)
    for before, after in itertools.pairwise(path.steps):
        same_tier = graph.steps[before].tier == graph.steps[after].tier
        assert before in graph.steps[after].needs if same_tier else graph.steps[before].tier < graph.steps[after].tier
    assert {graph.steps[s].tier for s in path.steps} == set(graph.tiers)


@settings(max_examples=150, deadline=None)
@given(tiered_dags(), st.data())
def test_any_back_edge_is_reported_as_a_real_cycle(steps: list[Step], data: st.DataObject) -> None:
    graph: RecoveryGraph = build_graph(steps)
    with_ancestors = [s for s in steps if graph.ancestors(s.id)]
    assume(with_ancestors)
    lower = data.draw(st.sampled_from(with_ancestors))
    upper = data.draw(st.sampled_from(sorted(graph.ancestors(lower.id))))
    # The back edge: something ``lower`` (transitively) needs now needs ``lower``.
    changed = [s.model_copy(update={"needs": (*s.needs, lower.id)}) if s.id == upper else s for s in steps]
    cycles = [p.message for p in graph_problems(changed) if p.message.startswith("dependency cycle: ")]
    assert len(cycles) == 1
    ring = cycles[0].removeprefix("dependency cycle: ").split(" -> ")
    assert ring[0] == ring[-1]
    needs = {s.id: s.needs for s in changed}
    for a, b in itertools.pairwise(ring):
        assert b in needs[a]
