"""A run report as JUnit XML, for CI dashboards: one testsuite per run, one testcase per step (``time`` its
duration), a ``failure`` with the one-line error for a failed step, ``skipped`` for a skipped one, and two
testcases ``objective.rto`` and ``objective.rpo`` that fail when the objective was missed (and are skipped
when it cannot be measured). The suite's properties carry the RPO's method and disaster instant and, per
phase, its time and share of the RTO (``rto_phase.restore.seconds``, ``rto_phase.restore.share``).
ElementTree escapes every text and attribute; characters XML cannot carry at all become U+FFFD."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from orchestrator.report.model import ObjectiveCheck, RunReport, StepReport

_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
"""Characters XML 1.0 cannot carry at all, even escaped (control characters a command may print)."""
_NOT_RUN = frozenset({"skipped", "pending", "interrupted", "running"})


def _time(seconds: float | None) -> str:
    return f"{max(seconds or 0.0, 0.0):.3f}"


def _step_case(suite: ET.Element, classname: str, step: StepReport) -> str | None:
    case = ET.SubElement(suite, "testcase", name=step.step_id, classname=classname, time=_time(step.duration_seconds))
    props = ET.SubElement(case, "properties")
    for name, value in (("action", step.action), ("tier", step.tier), ("attempts", len(step.attempts))):
        ET.SubElement(props, "property", name=name, value="" if value is None else str(value))
    if step.status == "failed":
        line = step.error_line or "failed"
        ET.SubElement(case, "failure", message=line, type="StepFailed").text = step.error or line
        return "failure"
    if step.status in _NOT_RUN:
        ET.SubElement(case, "skipped", message=step.error_line or step.status)
        return "skipped"
    return None


def _objective_case(suite: ET.Element, classname: str, check: ObjectiveCheck) -> str | None:
    case = ET.SubElement(suite, "testcase", name=f"objective.{check.name}", classname=classname, time=_time(None))
    if check.verdict == "fail":
        ET.SubElement(case, "failure", message=check.detail, type="ObjectiveMissed").text = check.detail
        return "failure"
    if check.verdict == "unknown":
        ET.SubElement(case, "skipped", message=check.detail)
        return "skipped"
    return None


def _measure_properties(report: RunReport) -> list[tuple[str, str]]:
    out = [
        ("rpo_method", report.rpo_method or ""),
        ("disaster_at", report.disaster_at or ""),
        ("disaster_at_source", report.disaster_at_source),
    ]
    phases = report.rto_phases
    if phases is not None:
        out.append(("rto_phases_window", phases.window))
        for p in phases.phases:
            out.append((f"rto_phase.{p.phase}.seconds", f"{p.seconds:.3f}"))
            if p.share_of_rto is not None:
                out.append((f"rto_phase.{p.phase}.share", f"{p.share_of_rto:.4f}"))
    return out


def render(report: RunReport) -> str:
    classname = f"drctl.{report.runbook_name}"
    suites = ET.Element("testsuites", name="drctl")
    suite = ET.SubElement(
        suites,
        "testsuite",
        name=f"{report.runbook_name} {report.mode} {report.run_id}",
        timestamp=report.started,
        time=_time(report.duration_seconds),
    )
    props = ET.SubElement(suite, "properties")
    for name, value in (("run_id", report.run_id), ("mode", report.mode), ("status", report.status)):
        ET.SubElement(props, "property", name=name, value=value)
    for name, value in _measure_properties(report):
        ET.SubElement(props, "property", name=name, value=value)
    outcomes = [_step_case(suite, classname, s) for s in report.steps]
    outcomes += [_objective_case(suite, classname, c) for c in (report.rto, report.rpo)]
    suite.set("tests", str(len(outcomes)))
    suite.set("failures", str(outcomes.count("failure")))
    suite.set("errors", "0")
    suite.set("skipped", str(outcomes.count("skipped")))
    for key in ("tests", "failures", "errors", "skipped"):
        suites.set(key, suite.get(key, "0"))
    ET.indent(suites)
    text = ET.tostring(suites, encoding="unicode", xml_declaration=True)
    return _NOT_XML.sub("\ufffd", text) + "\n"
