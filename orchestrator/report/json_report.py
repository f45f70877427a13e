"""A run report as JSON: the ``RunReport`` fields as they are, so ``parse(render(r)) == r``."""

from __future__ import annotations

import json

from orchestrator.report.model import RunReport


def render(report: RunReport) -> str:
    return json.dumps(report.to_dict(), indent=2, sort_keys=True) + "\n"


def parse(text: str) -> RunReport:
    return RunReport.from_dict(json.loads(text))
