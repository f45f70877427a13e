"""``drctl validate`` and ``drctl plan``: check runbooks, and show what one would do, changing nothing.

Mistakes in a runbook are printed one per line as ``FILE:LINE:COL: message`` (the format editors and CI
annotations understand) and exit 2. Mistakes in the options themselves (a malformed ``-p``, unreadable stack
outputs) are ordinary ``drctl: error:`` lines, also exit 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from orchestrator.commands.common import print_json
from orchestrator.errors import ExitCode
from orchestrator.runbook.fields import format_duration
from orchestrator.runbook.loader import LoadedRunbook, load_runbook
from orchestrator.runbook.params import parse_assignments
from orchestrator.runbook.plan import Plan, PlannedCall, PlannedStep, make_plan
from orchestrator.runbook.problems import RunbookInvalid
from orchestrator.stack_outputs import StackOutputs, load_stack_outputs


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _inputs(args: argparse.Namespace) -> tuple[dict[str, str], StackOutputs | None]:
    overrides = parse_assignments(args.param)
    stack = load_stack_outputs(Path(args.stack_outputs)) if args.stack_outputs else None
    return overrides, stack


def _load(name: str, overrides: dict[str, str], stack: StackOutputs | None) -> LoadedRunbook | None:
    """The checked runbook, or None after printing its diagnostics to stderr."""
    try:
        return load_runbook(Path(name), overrides, stack, source=name)
    except RunbookInvalid as err:
        for diagnostic in err.diagnostics:
            print(diagnostic, file=sys.stderr)
        return None


def _cmd_validate(args: argparse.Namespace) -> int:
    overrides, stack = _inputs(args)  # before any file: a bad option is one usage error, not one per file
    failed = False
    for name in args.files:
        loaded = _load(name, overrides, stack)
        if loaded is None:
            failed = True
            continue
        steps, tiers = len(loaded.graph.steps), len(loaded.graph.tiers)
        print(f"{name}: ok ({_plural(steps, 'step')}, {_plural(tiers, 'tier')})")
    return ExitCode.INVALID_INPUT if failed else ExitCode.OK


def _cmd_plan(args: argparse.Namespace) -> int:
    loaded = _load(args.file, *_inputs(args))
    if loaded is None:
        return ExitCode.INVALID_INPUT
    plan = make_plan(loaded)
    if args.format == "json":
        print_json(plan.as_dict())
    else:
        print("\n".join(render_text(plan)))
    return ExitCode.OK


# -- text rendering ---------------------------------------------------------------------------------------------


def render_text(plan: Plan) -> list[str]:
    lines = [
        f"plan of runbook {plan.name} ({plan.source}): {_plural(len(plan.steps), 'step')} in "
        f"{_plural(len(plan.waves), 'wave')}, {_plural(len(plan.tiers), 'tier')}",
    ]
    if plan.description:
        lines.append(f"  {plan.description}")
    if plan.rto or plan.rpo:
        objectives = [f"{k} {format_duration(v)}" for k, v in (("RTO", plan.rto), ("RPO", plan.rpo)) if v]
        lines.append(f"  objectives: {', '.join(objectives)}")
    if plan.parameters:
        lines.append("  parameters: " + ", ".join(f"{k}={_value(v)}" for k, v in plan.parameters.items()))
    lines.extend(f"  provider {name}: {summary}" for name, summary in plan.providers)
    tier = None
    for wave in plan.waves:
        if wave.tier != tier:
            tier = wave.tier
            lines.extend(["", f"tier {tier}"])
        lines.append(f"  wave {wave.number}")
        for step in wave.steps:
            lines.extend(_step_lines(step))
    lines.append("")
    if plan.approvals:
        lines.append(f"approvals: {', '.join(plan.approvals)} (a person approves each in a failover; drills pass them)")
    lines.extend(_critical_lines(plan))
    for call in plan.compensation:
        lines.append(f"runbook compensation: {_call(call)}")
    lines.append("nothing was changed")
    return lines


def _step_lines(step: PlannedStep) -> list[str]:
    facts = [f"needs {', '.join(step.needs)}"] if step.needs else []
    facts.append(f"timeout {format_duration(step.timeout)}" if step.timeout else "no timeout")
    if step.attempts > 1:
        facts.append(f"{step.attempts} attempts")
    if step.on_error == "continue":
        facts.append("continues on error")
    if step.when != "always":
        facts.append(f"{step.when} only")
    if step.approval:
        facts.append("APPROVAL REQUIRED")
    lines = [f"    {step.id}: {step.action} ({'; '.join(facts)})"]
    lines.extend(f"      {touch}" for touch in step.touches)
    if step.compensate:
        lines.append(f"      undo: {_call(step.compensate)}")
    return lines


def _critical_lines(plan: Plan) -> list[str]:
    path = plan.critical_path
    line = f"critical path: {' -> '.join(path.steps)}: {format_duration(path.duration)} at worst"
    if path.estimated:
        line += f" ({_plural(len(path.estimated), 'step')} without a timeout counted at "
        line += f"{format_duration(plan.default_estimate)})"
    lines = [line]
    if plan.rto is not None:
        verdict = "within" if plan.within_rto else "EXCEEDS"
        lines.append(f"  {verdict} the RTO of {format_duration(plan.rto)}")
    return lines


def _call(call: PlannedCall) -> str:
    return f"{call.action} ({'; '.join(str(t) for t in call.touches)})"


def _value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# -- parser -----------------------------------------------------------------------------------------------------


def _runbook_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--stack-outputs",
        metavar="JSON",
        help="stack outputs (pulumi stack output --json) that ${stack.NAME} must resolve against",
    )
    parser.add_argument(
        "-p",
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="set a runbook parameter (repeatable)",
    )


def register(sub: Any) -> None:
    validate = sub.add_parser("validate", help="check runbooks: structure, actions, references and recovery order")
    validate.add_argument("files", nargs="+", metavar="FILE")
    _runbook_options(validate)
    validate.set_defaults(handler=_cmd_validate)

    plan = sub.add_parser("plan", help="show what a runbook would do, wave by wave, without doing anything")
    plan.add_argument("file", metavar="FILE")
    plan.add_argument("--format", choices=["text", "json"], default="text")
    _runbook_options(plan)
    plan.set_defaults(handler=_cmd_plan)
