"""Run one job of a GitHub Actions workflow the way a hosted runner runs it, as far as a job's own shell steps go:
each ``run:`` step in order under ``bash --noprofile --norc -eo pipefail`` (GitHub's default shell), with the
workflow's, the job's and the step's ``env:`` (their ``${{ }}`` expressions evaluated against known inputs and
variables), ``if:`` conditions, step outputs, and the files steps write to talk to later ones (``GITHUB_OUTPUT``,
``GITHUB_ENV``, ``GITHUB_PATH``, ``GITHUB_STEP_SUMMARY``).

``uses:`` steps are GitHub's or a vendor's code and cannot run here: each must be named in ``stand_ins`` with
the reason, and optionally a script that does its part on this machine. A ``run:`` step may be stood in for the
same way (a step that needs a real cloud). A stand-in for a step the job does not have is an error, as is a
``uses:`` step without one, so a workflow change cannot quietly skip a step.

Expressions cover what a workflow of this kind needs: the contexts ``github``, ``inputs``, ``vars``, ``env``,
``steps``, ``runner`` and ``job``; literals; ``!``, ``==``, ``!=``, ``&&``, ``||`` (which return an operand, as
GitHub's do) and parentheses; the status functions. Anything else raises :class:`WorkflowError`, so a test never
passes on an expression it did not evaluate.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

BASH = ["bash", "--noprofile", "--norc", "-eo", "pipefail"]
"""GitHub's ``shell: bash`` on Linux (``bash --noprofile --norc -eo pipefail {0}``)."""
Value = str | float | bool | dict[str, Any] | None


class WorkflowError(Exception):
    """The workflow asks for something this runner does not do, or a stand-in does not match the job."""


def load_workflow(path: Path) -> dict[str, Any]:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(doc, dict):
        raise WorkflowError(f"{path} is not a mapping")
    # YAML 1.1 reads the key `on` as the boolean true.
    if True in doc:
        doc["on"] = doc.pop(True)
    return doc


# --- expressions ------------------------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<num>-?\d+(?:\.\d+)?)|(?P<op>\|\||&&|==|!=|!|\(|\)|\.)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_-]*))"
)
_EXPR = re.compile(r"\$\{\{(.*?)\}\}", re.DOTALL)
_STATUS = frozenset({"always", "success", "failure", "cancelled"})
_CONTEXTS = frozenset({"github", "inputs", "vars", "env", "steps", "runner", "job"})


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise WorkflowError(f"cannot read the expression {text!r} at {text[pos:]!r}")
        kind = match.lastgroup or ""
        out.append((kind, match.group(kind)))
        pos = match.end()
    return out


def truthy(value: Value) -> bool:
    return value not in (None, False, "", 0, 0.0)


def to_text(value: Value) -> str:
    """How GitHub writes a value into a string: null is empty, booleans are lower case, 3.0 is 3."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else str(value)
    if isinstance(value, dict):
        raise WorkflowError("an object cannot be written into a string here")
    return value


def _number(value: Value) -> float:
    if value is None:
        return 0.0
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, float):
        return value
    if isinstance(value, str):
        try:
            return float(value.strip() or 0)
        except ValueError:
            return float("nan")
    return float("nan")


def _equal(a: Value, b: Value) -> bool:
    """GitHub's loose equality: strings compare without case; values of different types compare as numbers."""
    if isinstance(a, str) and isinstance(b, str):
        return a.casefold() == b.casefold()
    if type(a) is type(b):
        return a == b
    return _number(a) == _number(b)


class _Parser:
    def __init__(self, text: str, contexts: Mapping[str, Any], status: str) -> None:
        self.tokens = _tokens(text)
        self.pos = 0
        self.contexts = contexts
        self.status = status
        self.text = text

    def parse(self) -> Value:
        value = self._or()
        if self.pos != len(self.tokens):
            raise WorkflowError(f"unexpected {self.tokens[self.pos][1]!r} in the expression {self.text!r}")
        return value

    def _peek(self) -> str | None:
        return self.tokens[self.pos][1] if self.pos < len(self.tokens) else None

    def _take(self, expected: str | None = None) -> tuple[str, str]:
        if self.pos >= len(self.tokens):
            raise WorkflowError(f"the expression {self.text!r} ends early")
        token = self.tokens[self.pos]
        if expected is not None and token[1] != expected:
            raise WorkflowError(f"expected {expected!r}, found {token[1]!r} in {self.text!r}")
        self.pos += 1
        return token

    def _or(self) -> Value:
        value = self._and()
        while self._peek() == "||":
            self._take()
            right = self._and()
            value = value if truthy(value) else right
        return value

    def _and(self) -> Value:
        value = self._compare()
        while self._peek() == "&&":
            self._take()
            right = self._compare()
            value = right if truthy(value) else value
        return value

    def _compare(self) -> Value:
        value = self._unary()
        while self._peek() in ("==", "!="):
            op = self._take()[1]
            right = self._unary()
            value = _equal(value, right) if op == "==" else not _equal(value, right)
        return value

    def _unary(self) -> Value:
        if self._peek() == "!":
            self._take()
            return not truthy(self._unary())
        return self._primary()

    def _primary(self) -> Value:
        kind, text = self._take()
        if text == "(" and kind == "op":
            value = self._or()
            self._take(")")
            return value
        if kind == "str":
            return text[1:-1].replace("''", "'")
        if kind == "num":
            return float(text)
        if kind != "name":
            raise WorkflowError(f"unexpected {text!r} in {self.text!r}")
        if text in ("true", "false"):
            return text == "true"
        if text == "null":
            return None
        if self._peek() == "(":
            return self._call(text)
        if text not in _CONTEXTS:
            raise WorkflowError(f"the context {text!r} is not known to this runner (in {self.text!r})")
        found: Value = self.contexts.get(text, {})
        while self._peek() == ".":
            self._take()
            key = self._take()[1]
            found = found.get(key) if isinstance(found, dict) else None
        return found

    def _call(self, name: str) -> Value:
        self._take("(")
        self._take(")")
        if name not in _STATUS:
            raise WorkflowError(f"the function {name}() is not known to this runner")
        if name == "always":
            return True
        if name == "cancelled":
            return False
        return (self.status == "success") == (name == "success")


def evaluate(expression: str, contexts: Mapping[str, Any], status: str = "success") -> Value:
    """One expression, without its ``${{ }}``."""
    return _Parser(expression, contexts, status).parse()


def interpolate(text: str, contexts: Mapping[str, Any], status: str = "success") -> str:
    """``text`` with each ``${{ expression }}`` replaced by its value."""
    return _EXPR.sub(lambda m: to_text(evaluate(m.group(1), contexts, status)), text)


def condition(text: str | bool | None, contexts: Mapping[str, Any], status: str) -> bool:
    """A step's ``if:`` (``success()`` when absent; a condition without a status function gets ``success() &&``)."""
    if text is None:
        return status == "success"
    if isinstance(text, bool):
        return text and status == "success"
    inner = text.strip()
    whole = _EXPR.fullmatch(inner)
    if whole:
        inner = whole.group(1).strip()
    if not any(re.search(rf"\b{name}\s*\(", inner) for name in _STATUS):
        inner = f"success() && ({inner})"
    return truthy(evaluate(inner, contexts, status))


# --- the files a step writes ---------------------------------------------------------------------------------------


def read_key_values(path: Path) -> dict[str, str]:
    """``GITHUB_OUTPUT``/``GITHUB_ENV`` lines: ``NAME=value``, or ``NAME<<DELIMITER``, lines, ``DELIMITER``."""
    values: dict[str, str] = {}
    if not path.exists():
        return values
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line.strip():
            continue
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            body: list[str] = []
            while i < len(lines) and lines[i] != delimiter:
                body.append(lines[i])
                i += 1
            if i == len(lines):
                raise WorkflowError(f"{path}: {name} has no closing {delimiter!r}")
            i += 1
            values[name] = "\n".join(body)
        elif "=" in line:
            name, value = line.split("=", 1)
            values[name] = value
        else:
            raise WorkflowError(f"{path}: cannot read the line {line!r}")
    return values


# --- the job --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StandIn:
    """What replaces a step here, and why. ``run``: a bash script run in the step's place (same environment and
    files); ``None``: nothing runs (what the step does is already true on this machine)."""

    reason: str
    run: str | None = None


@dataclass
class StepResult:
    id: str
    name: str
    outcome: str
    """``success``, ``failure`` or ``skipped``."""
    exit_code: int | None = None
    output: str = ""
    stand_in: StandIn | None = None
    uses: str | None = None
    inputs: dict[str, str] = field(default_factory=dict)
    """A ``uses:`` step's ``with:``, expressions evaluated: the paths an upload step names, say."""
    outputs: dict[str, str] = field(default_factory=dict)


@dataclass
class JobRun:
    steps: list[StepResult]
    summary: Path
    env: dict[str, str]
    """What the steps added through ``GITHUB_ENV``."""

    def step(self, step_id: str) -> StepResult:
        for s in self.steps:
            if s.id == step_id:
                return s
        raise KeyError(step_id)

    @property
    def succeeded(self) -> bool:
        return all(s.outcome != "failure" for s in self.steps)

    def log(self) -> str:
        """Every step's outcome and output, for an assertion's message."""
        parts = []
        for s in self.steps:
            how = f" (stand-in: {s.stand_in.reason})" if s.stand_in else ""
            parts.append(f"--- {s.id}: {s.outcome} exit {s.exit_code}{how}\n{s.output[-4000:]}")
        return "\n".join(parts)


def _yaml_text(value: Any) -> str:
    """A scalar of the workflow file as the runner reads it (``60`` and ``true`` are text to a step)."""
    if isinstance(value, bool) or value is None:
        return to_text(value)
    if isinstance(value, int | float | str):
        return to_text(float(value)) if isinstance(value, int | float) else value
    raise WorkflowError(f"expected a scalar, found {value!r}")


def _env_block(block: Any, contexts: Mapping[str, Any], status: str = "success") -> dict[str, str]:
    if block is None:
        return {}
    if not isinstance(block, dict):
        raise WorkflowError(f"env: must be a mapping, not {block!r}")
    return {str(k): interpolate(_yaml_text(v), contexts, status) for k, v in block.items()}


def _check_shell(*blocks: Any) -> None:
    for block in blocks:
        shell = (block or {}).get("shell") if isinstance(block, dict) else None
        if shell not in (None, "bash"):
            raise WorkflowError(f"shell {shell!r}: this runner runs bash steps only")


def run_job(
    workflow: Mapping[str, Any],
    job_id: str,
    *,
    workspace: Path,
    runner_temp: Path,
    machine_env: Mapping[str, str],
    event_name: str,
    inputs: Mapping[str, str],
    variables: Mapping[str, str],
    stand_ins: Mapping[str, StandIn],
    step_timeout_s: float,
) -> JobRun:
    """Run ``job_id``'s steps in order. ``machine_env``: the runner machine's environment before any step."""
    job = workflow["jobs"][job_id]
    steps: list[dict[str, Any]] = job["steps"]
    ids = [str(s.get("id", f"step{i}")) for i, s in enumerate(steps)]
    unknown = set(stand_ins) - set(ids)
    if unknown:
        raise WorkflowError(f"stand-ins for steps the job does not have: {sorted(unknown)}")
    _check_shell(workflow.get("defaults", {}).get("run"), job.get("defaults", {}).get("run"))

    files = runner_temp / "_runner_file_commands"
    files.mkdir(parents=True, exist_ok=True)
    summary = files / "job-summary.md"
    summary.touch()
    github = {
        "event_name": event_name,
        "repository": "example/dr-runbooks",
        "run_id": "1000001",
        "run_attempt": "1",
        "workspace": str(workspace),
        "job": job_id,
    }
    # Declared inputs with their defaults: an absent input is its default on a dispatch, and null otherwise.
    declared = (workflow.get("on") or {}).get("workflow_dispatch") or {}
    dispatch_inputs = {
        name: str(inputs.get(name, _yaml_text(spec.get("default"))))
        for name, spec in (declared.get("inputs") or {}).items()
    }
    contexts: dict[str, Any] = {
        "github": github,
        "inputs": dispatch_inputs if event_name == "workflow_dispatch" else dict(inputs),
        "vars": dict(variables),
        "runner": {"os": "Linux", "temp": str(runner_temp)},
        "steps": {},
        "job": {"status": "success"},
    }
    contexts["env"] = _env_block(workflow.get("env"), contexts)
    contexts["env"] = {**contexts["env"], **_env_block(job.get("env"), contexts)}
    base_env = {
        **machine_env,
        "CI": "true",
        "GITHUB_ACTIONS": "true",
        "GITHUB_WORKSPACE": str(workspace),
        "GITHUB_EVENT_NAME": event_name,
        "GITHUB_REPOSITORY": github["repository"],
        "GITHUB_RUN_ID": github["run_id"],
        "GITHUB_RUN_ATTEMPT": github["run_attempt"],
        "RUNNER_OS": "Linux",
        "RUNNER_TEMP": str(runner_temp),
    }
    added_env: dict[str, str] = {}
    added_path: list[str] = []
    status = "success"
    results: list[StepResult] = []

    for index, (step_id, step) in enumerate(zip(ids, steps, strict=True)):
        name = str(step.get("name", step_id))
        contexts["env"] = {**contexts["env"], **added_env}
        contexts["job"] = {"status": status}
        stand_in = stand_ins.get(step_id)
        uses = step.get("uses")
        if uses is not None and stand_in is None:
            raise WorkflowError(f"step {step_id} uses {uses}, which cannot run here: give it a stand-in")
        if not condition(step.get("if"), contexts, status):
            results.append(StepResult(step_id, name, "skipped", stand_in=stand_in, uses=uses))
            contexts["steps"][step_id] = {"outcome": "skipped", "conclusion": "skipped", "outputs": {}}
            continue
        step_env = _env_block(step.get("env"), contexts, status)
        with_inputs = {
            str(k): interpolate(_yaml_text(v), contexts, status) for k, v in (step.get("with") or {}).items()
        }
        script = stand_in.run if stand_in is not None else step.get("run")
        if script is None:
            result = StepResult(step_id, name, "success", stand_in=stand_in, uses=uses, inputs=with_inputs)
        else:
            _check_shell(step)
            result = _run_script(
                interpolate(str(script), contexts, status),
                step_id,
                name,
                index,
                files=files,
                env={**base_env, **contexts["env"], **step_env},
                added_path=added_path,
                cwd=workspace / interpolate(str(step.get("working-directory", ".")), contexts, status),
                timeout_s=min(float(step.get("timeout-minutes", 360)) * 60, step_timeout_s),
                summary=summary,
            )
            result.stand_in, result.uses, result.inputs = stand_in, uses, with_inputs
            added_env.update(read_key_values(files / f"env-{index}"))
            path_file = files / f"path-{index}"
            if path_file.exists():
                added_path[:0] = [p for p in reversed(path_file.read_text().splitlines()) if p.strip()]
        results.append(result)
        contexts["steps"][step_id] = {
            "outcome": result.outcome,
            "conclusion": result.outcome,
            "outputs": result.outputs,
        }
        if result.outcome == "failure" and not step.get("continue-on-error", False):
            status = "failure"
    return JobRun(results, summary, added_env)


def _run_script(
    script: str,
    step_id: str,
    name: str,
    index: int,
    *,
    files: Path,
    env: dict[str, str],
    added_path: list[str],
    cwd: Path,
    timeout_s: float,
    summary: Path,
) -> StepResult:
    script_file = files / f"step-{index}.sh"
    script_file.write_text(script, encoding="utf-8")
    output_file, env_file = files / f"output-{index}", files / f"env-{index}"
    path_file, step_summary = files / f"path-{index}", files / f"summary-{index}.md"
    for f in (output_file, env_file, path_file, step_summary):
        f.touch()
    process_env = {
        **env,
        "GITHUB_OUTPUT": str(output_file),
        "GITHUB_ENV": str(env_file),
        "GITHUB_PATH": str(path_file),
        "GITHUB_STEP_SUMMARY": str(step_summary),
        "PATH": os.pathsep.join([*added_path, env.get("PATH", os.defpath)]),
    }
    if not cwd.is_dir():
        return StepResult(step_id, name, "failure", output=f"working-directory {cwd} does not exist")
    try:
        done = subprocess.run(
            [*BASH, str(script_file)],
            cwd=cwd,
            env=process_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired as err:
        out = err.output.decode(errors="replace") if isinstance(err.output, bytes) else str(err.output or "")
        return StepResult(step_id, name, "failure", output=f"{out}\n(timed out after {timeout_s:.0f}s)")
    # GitHub keeps a step's summary only when the step ends; the job's summary is every step's, in order.
    with summary.open("a", encoding="utf-8") as job_summary:
        job_summary.write(step_summary.read_text(encoding="utf-8"))
    return StepResult(
        step_id,
        name,
        "success" if done.returncode == 0 else "failure",
        exit_code=done.returncode,
        output=done.stdout,
        outputs=read_key_values(output_file),
    )
