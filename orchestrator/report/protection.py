"""The report's word on a set that ``drctl protect`` kept: within its RPO at the disaster instant, or not.

A restore step of such a set records the service's objective and when it last had the set in sync
(``protected_rpo_s``, ``protected_in_sync_at``; see ``orchestrator.protect.status``). The RPO itself is still
measured from the data or the point's age; this says whether the service was doing its job when it mattered.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from orchestrator.engine.journal import StepState

if TYPE_CHECKING:
    from orchestrator.report.model import StepReport  # the model imports this module


def protection_note(disaster: str, steps: tuple[StepReport, ...]) -> str | None:
    kept = [
        s for s in steps if s.status == StepState.SUCCEEDED and isinstance(s.outputs.get("protected_in_sync_at"), str)
    ]
    if not kept:
        return None
    last = max(kept, key=lambda s: s.finished or "")
    synced, rpo = str(last.outputs["protected_in_sync_at"]), last.outputs.get("protected_rpo_s")
    try:
        behind = (datetime.fromisoformat(disaster) - datetime.fromisoformat(synced)).total_seconds()
    except (TypeError, ValueError):
        return f"{last.step_id} restored a set kept by drctl protect (RPO {rpo}s), last in sync at {synced}"
    if not isinstance(rpo, int | float):
        return f"{last.step_id} restored a set kept by drctl protect, last in sync at {synced}"
    if behind <= 0:
        verdict = "after the disaster instant: the service was keeping up"
    elif behind <= rpo:
        verdict = f"{behind:g}s before the disaster instant: within its RPO of {rpo:g}s"
    else:
        verdict = f"{behind:g}s before the disaster instant: past its RPO of {rpo:g}s (was the service stopped?)"
    return f"{last.step_id} restored a set kept by drctl protect; last in sync with its source at {synced}, {verdict}"
