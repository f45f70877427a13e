"""What a run's checks found in the recovered system: the values a reader wants next to the verdicts (how many
rows came back, which dump was restored), taken from the outputs of the steps that looked."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from orchestrator.report.model import StepReport

SUCCEEDED = "succeeded"


@dataclass(frozen=True)
class Finding:
    step_id: str
    action: str
    text: str


def _db_check(step: StepReport) -> str | None:
    try:
        values = json.loads(str(step.outputs.get("values", "{}")))
    except ValueError:
        return None
    if not isinstance(values, dict) or not values:
        return None
    return ", ".join(f"{name} = {value}" for name, value in values.items())


def _db_restore(step: StepReport) -> str | None:
    if "object" not in step.outputs:
        return None
    sha = str(step.outputs.get("sha256", ""))[:16]
    return (
        f"{step.outputs['object']} ({step.outputs.get('bytes', '?')} bytes, sha256 {sha}...) "
        f"from point {step.outputs.get('recovery_point', '?')}"
    )


def findings(steps: Sequence[StepReport]) -> list[Finding]:
    """One line per succeeded database restore and check, in the order the report lists steps."""
    found = []
    for step in steps:
        if step.status != SUCCEEDED:
            continue
        text = _db_check(step) if step.action == "db.check" else None
        if step.action == "db.restore":
            text = _db_restore(step)
        if text:
            found.append(Finding(step.step_id, step.action or "?", text))
    return found
