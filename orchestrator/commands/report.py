"""``drctl report RUN_ID``: one journaled run as JSON, JUnit XML, Markdown or a self-contained HTML page (with
a timeline of every attempt), with its measured RTO and RPO checked against the runbook's objectives. Stdout
by default, ``--out FILE`` to write a file. An unknown run id exits 5 (not found)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from orchestrator.backup.journal import state_dir
from orchestrator.engine.journal import RunJournal, journal_path
from orchestrator.engine.redact import secrets_of
from orchestrator.errors import ExitCode, InvalidInput
from orchestrator.report import html, json_report, junit, markdown
from orchestrator.report.model import RunReport, build_report, redact_report

RENDERERS: dict[str, Callable[[RunReport], str]] = {
    "json": json_report.render,
    "junit": junit.render,
    "markdown": markdown.render,
    "html": html.render,
}


def render(report: RunReport, fmt: str, env: dict[str, str]) -> str:
    """The report in ``fmt``; the journal holds redacted text already, and credential-looking variables of
    this environment are masked once more, in the report's text fields so no format's syntax is touched."""
    return RENDERERS[fmt](redact_report(report, secrets_of(env)))


def _cmd_report(args: argparse.Namespace) -> int:
    env = dict(os.environ)
    journal = RunJournal(journal_path(state_dir(env)))
    try:
        report = build_report(journal, args.run_id)
    finally:
        journal.close()
    text = render(report, args.format, env)
    if args.out:
        try:
            Path(args.out).write_text(text, encoding="utf-8")
        except OSError as err:
            raise InvalidInput(f"cannot write {args.out}: {err.strerror or err}") from err
    else:
        sys.stdout.write(text)
    return int(ExitCode.OK)


def register(sub: Any) -> None:
    report = sub.add_parser(
        "report", help="a run's steps and RTO/RPO against its objectives, as json|junit|markdown|html"
    )
    report.add_argument("run_id")
    report.add_argument("--format", choices=sorted(RENDERERS), default="markdown")
    report.add_argument("--out", metavar="FILE", help="write the report to FILE instead of stdout")
    report.set_defaults(handler=_cmd_report)
