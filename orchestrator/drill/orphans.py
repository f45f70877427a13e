"""Leftovers of drills that never cleaned up (a crash, a lost machine, ``--keep``), found by their tags.

An instance tagged ``drctl:drill-run`` belongs to a drill. Its drill is left alone when it is certainly
still running: it holds a run lock on this host from a live process, or it is unknown to this machine's
journal and younger than ``min_age`` (it may be running on another machine; its ``drctl:drill-started`` tag
tells its age). Every other drill's instances are orphans.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from orchestrator.drill.cleanup import Providers
from orchestrator.drill.scope import TAG_RUN, TAG_STARTED, drill_image_name, run_of_drill_image
from orchestrator.engine.journal import RunJournal, RunStatus


@dataclass(frozen=True)
class DrillLeftovers:
    run_id: str
    region: str
    resource_ids: tuple[str, ...]
    """The leftovers' ids: instances and image copies."""
    started: str | None
    verdict: str
    """Why it is (or is not) an orphan, in a few words."""
    orphan: bool


def _age(started: str | None, now: datetime) -> timedelta | None:
    try:
        return now - datetime.fromisoformat(started) if started else None
    except (ValueError, TypeError):
        return None


def find_leftovers(
    journal: RunJournal,
    providers: Providers,
    regions: Iterable[str],
    live_runs: set[str],
    min_age: timedelta,
    now: datetime,
) -> list[DrillLeftovers]:
    found: list[DrillLeftovers] = []
    for region in sorted(set(regions)):
        by_run: dict[str, list[str]] = {}
        started: dict[str, str | None] = {}
        compute = providers.compute(region)
        for instance, info in compute.tagged(TAG_RUN).items():
            run_id = info.tags[TAG_RUN]
            by_run.setdefault(run_id, []).append(instance)
            started[run_id] = info.tags.get(TAG_STARTED)
        # An image copy is a leftover too; a drill with only images left is still found.
        for image, tags in compute.tagged_images(TAG_RUN).items():
            run_id = tags[TAG_RUN]
            by_run.setdefault(run_id, []).append(image)
            started.setdefault(run_id, tags.get(TAG_STARTED))
        # A copy killed before it was tagged has only its name; its age is unknown, so only a run this
        # machine's journal knows makes it an orphan.
        for image, name in compute.images_named(drill_image_name("*", "*")).items():
            named_run = run_of_drill_image(name)
            if named_run is not None and image not in by_run.get(named_run, ()):
                by_run.setdefault(named_run, []).append(image)
                started.setdefault(named_run, None)
        for run_id, ids in sorted(by_run.items()):
            found.append(_judge(journal, run_id, region, tuple(sorted(ids)), started[run_id], live_runs, min_age, now))
    return found


def _judge(
    journal: RunJournal,
    run_id: str,
    region: str,
    ids: tuple[str, ...],
    started: str | None,
    live_runs: set[str],
    min_age: timedelta,
    now: datetime,
) -> DrillLeftovers:
    def verdict(text: str, orphan: bool) -> DrillLeftovers:
        return DrillLeftovers(run_id, region, ids, started, text, orphan)

    if run_id in live_runs:
        return verdict("its drill is running on this host", False)
    record = journal.run(run_id)
    if record is not None:
        if record.status == RunStatus.RUNNING:
            return verdict("its drill stopped without finishing (crashed or killed)", True)
        return verdict(f"its drill ended ({record.status.value}) without removing it", True)
    age = _age(started, now)
    if age is None or age < min_age:
        return verdict(f"unknown drill younger than {min_age} (or of unknown age): may be running elsewhere", False)
    return verdict(f"unknown drill started {age} ago", True)
