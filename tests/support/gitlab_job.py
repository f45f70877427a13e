"""Run one GitLab CI job's scripts the way a shell runner's bash runs them: ``before_script`` and ``script`` in
one ``bash -eo pipefail`` shell, then ``after_script`` in a shell of its own with ``CI_JOB_STATUS``; the job's
variables (the file's, then the project's CI/CD variables, then the pipeline's own, as GitLab ranks them) with
``$NAME`` references expanded; ``id_tokens`` as variables holding a token.

A line that needs what this machine lacks (a download, a cloud) is replaced through ``stand_ins``, keyed by how
the line starts, each with its reason; a stand-in that matches no line is an error, so a changed file cannot
quietly run without its replacement.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.workflow_steps import BASH, WorkflowError

_REF = re.compile(r"\$(?:\{(\w+)\}|(\w+))")


@dataclass(frozen=True)
class LineStand:
    reason: str
    run: str


@dataclass(frozen=True)
class GitlabJobRun:
    exit_code: int
    output: str
    after_exit_code: int
    after_output: str

    def log(self) -> str:
        return (
            f"--- script: exit {self.exit_code}\n{self.output[-6000:]}\n"
            f"--- after_script: exit {self.after_exit_code}\n{self.after_output[-2000:]}"
        )


def script_lines(entries: Any) -> Iterator[str]:
    """A script: strings, or lists of them nested (what a YAML anchor inserts), flattened."""
    if isinstance(entries, str):
        yield entries
    elif isinstance(entries, list):
        for entry in entries:
            yield from script_lines(entry)
    elif entries is not None:
        raise WorkflowError(f"a script line must be a string, not {entries!r}")


def _values(block: Any) -> dict[str, str]:
    """A ``variables:`` block: ``NAME: value`` or ``NAME: {value: ..., description: ...}``."""
    out: dict[str, str] = {}
    for name, spec in (block or {}).items():
        value = spec.get("value", "") if isinstance(spec, dict) else spec
        out[str(name)] = "" if value is None else str(value)
    return out


def _expand(values: Mapping[str, str], known: Mapping[str, str]) -> dict[str, str]:
    scope = dict(known)
    for name, value in values.items():
        scope[name] = _REF.sub(lambda m: scope.get(m.group(1) or m.group(2), ""), value)
    return scope


def run_gitlab_job(
    doc: Mapping[str, Any],
    job_name: str,
    *,
    project_dir: Path,
    machine_env: Mapping[str, str],
    pipeline_source: str,
    project_variables: Mapping[str, str],
    pipeline_variables: Mapping[str, str],
    stand_ins: Mapping[str, LineStand],
    timeout_s: float,
) -> GitlabJobRun:
    job = doc[job_name]
    predefined = {
        "CI": "true",
        "GITLAB_CI": "true",
        "CI_PROJECT_DIR": str(project_dir),
        "CI_JOB_ID": "2000001",
        "CI_PIPELINE_ID": "3000001",
        "CI_PIPELINE_SOURCE": pipeline_source,
    }
    tokens = {name: f"stand-in-id-token-for-{spec.get('aud')}" for name, spec in (job.get("id_tokens") or {}).items()}
    outside = {**project_variables, **pipeline_variables}
    scope = _expand(_values(doc.get("variables")), {**predefined, **tokens, **outside})
    scope = {**_expand(_values(job.get("variables")), scope), **outside}
    used: set[str] = set()

    def replaced(lines: Iterator[str]) -> str:
        out = []
        for line in lines:
            match = [key for key in stand_ins if line.startswith(key)]
            used.update(match)
            out.append(stand_ins[match[0]].run if match else line)
        return "\n".join(out) + "\n"

    main = replaced(script_lines([job.get("before_script"), job.get("script")]))
    after = replaced(script_lines(job.get("after_script")))
    if unused := set(stand_ins) - used:
        raise WorkflowError(f"stand-ins for lines the job does not have: {sorted(unused)}")
    env = {**machine_env, **scope}
    code, output = _bash(main, project_dir, env, timeout_s)
    after_env = {**env, "CI_JOB_STATUS": "success" if code == 0 else "failed"}
    after_code, after_output = _bash(after, project_dir, after_env, timeout_s)
    return GitlabJobRun(code, output, after_code, after_output)


def _bash(script: str, cwd: Path, env: Mapping[str, str], timeout_s: float) -> tuple[int, str]:
    done = subprocess.run(
        [*BASH, "-c", script],
        cwd=cwd,
        env=dict(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    return done.returncode, done.stdout
