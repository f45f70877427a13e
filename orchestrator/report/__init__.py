"""Run reports: one journaled run as JSON, JUnit XML or Markdown, with RTO and RPO against the objectives."""

from __future__ import annotations

from orchestrator.report.model import (
    AttemptReport,
    EventReport,
    ObjectiveCheck,
    RunbookFacts,
    RunReport,
    StepReport,
    build_report,
)

__all__ = [
    "AttemptReport",
    "EventReport",
    "ObjectiveCheck",
    "RunReport",
    "RunbookFacts",
    "StepReport",
    "build_report",
]
