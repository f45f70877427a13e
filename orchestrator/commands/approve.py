"""``drctl approve RUN_ID STEP``: a person's go-ahead for a gated step, from another terminal or from CI.

A run started with ``--wait-for-approval`` waits at its gate and reads the approval from the journal; a
failed or interrupted run takes it at ``drctl resume``. The journal keeps who approved, from which account,
when, and why. Exit codes: 0 approved (or already approved), 2 the step cannot be approved, 5 no such run.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from orchestrator.backup.journal import state_dir
from orchestrator.engine.executor import param_overrides
from orchestrator.engine.journal import RunJournal, RunRecord, RunStatus, StepState, journal_path
from orchestrator.engine.lock import LockHolder
from orchestrator.errors import InvalidInput, NotFound
from orchestrator.runbook.loader import load_runbook
from orchestrator.runbook.problems import RunbookInvalid


def _gated_steps(record: RunRecord) -> set[str]:
    """The steps of the run's runbook that carry ``approval: required``, read from the runbook it ran."""
    try:
        loaded = load_runbook(Path(record.runbook_path), param_overrides(record.params), None)
    except (RunbookInvalid, OSError) as err:
        raise InvalidInput(
            f"cannot read {record.runbook_path} to check run {record.run_id}'s gates ({err}); "
            "approve from the machine and checkout the run started from"
        ) from err
    return {s.id for s in loaded.graph.steps.values() if s.approval == "required"}


def _cmd_approve(args: argparse.Namespace) -> int:
    journal = RunJournal(journal_path(state_dir(dict(os.environ))))
    try:
        record = journal.run(args.run_id)
        if record is None:
            raise NotFound(f"no run {args.run_id!r}; drctl status lists the recent ones")
        if record.mode == "drill":
            raise InvalidInput(f"run {record.run_id} is a drill: drills pass their gates themselves")
        if record.status == RunStatus.SUCCEEDED:
            raise InvalidInput(f"run {record.run_id} has already succeeded; there is nothing left to approve")
        gated = _gated_steps(record)
        if args.step not in gated:
            choices = ", ".join(sorted(gated)) or "none"
            raise InvalidInput(f"step {args.step!r} of run {record.run_id} has no approval gate (gated: {choices})")
        step = journal.steps(record.run_id).get(args.step)
        if step is not None and step.status == StepState.SUCCEEDED:
            raise InvalidInput(f"step {args.step} of run {record.run_id} has already run and succeeded")
        here = LockHolder.here(record.run_id, record.runbook_name)
        account = f"{here.user}@{here.host}"
        approval = journal.approve(record.run_id, args.step, args.by or account, account, args.comment)
    finally:
        journal.close()
    print(f"step {args.step} of run {record.run_id}: {approval.describe()}")
    if record.status != RunStatus.RUNNING:
        print(f"run {record.run_id} is {record.status.value}: drctl resume {record.run_id} continues it")
    return 0


def register(sub: Any) -> None:
    approve = sub.add_parser("approve", help="approve a gated step of a run that waits for it (or will be resumed)")
    approve.add_argument("run_id")
    approve.add_argument("step")
    approve.add_argument("--by", metavar="NAME", help="who approves, e.g. a CI actor (default: this account@host)")
    approve.add_argument("--comment", metavar="TEXT", help="why; kept in the journal and the report")
    approve.set_defaults(handler=_cmd_approve)
