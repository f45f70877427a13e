"""``drctl validate`` and ``drctl plan`` as users meet them.

The invalid corpus (tests/runbooks/invalid): every file exits 2 with exactly the one ``FILE:LINE:COL``
line its ``# expect:`` comment names, and no traceback. ``# args:`` adds options; paths in it are relative to
the file. The valid examples pass. Commands run in-process through this change's ``register`` (fast), and a
few through a real process using ``orchestrator.cli.main`` with the commands registered if cli.py does not
register them yet.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from orchestrator.commands import runbook as runbook_commands
from orchestrator.errors import DrError, ExitCode

REPO = Path(__file__).resolve().parents[2]
RUNBOOKS = REPO / "tests" / "runbooks"
INVALID = sorted((RUNBOOKS / "invalid").glob("*.yaml"))
VALID = sorted((RUNBOOKS / "valid").glob("*.yaml"))
AWS_TO_AZURE = RUNBOOKS / "stack-outputs" / "aws-to-azure.json"


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str


@dataclass(frozen=True)
class Case:
    path: Path
    expect: str
    args: tuple[str, ...]


def run_cli(*argv: str) -> Result:
    """The commands in-process, with ``orchestrator.cli.main``'s handling of ``DrError``."""
    parser = argparse.ArgumentParser(prog="drctl")
    runbook_commands.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = args.handler(args)
        except DrError as exc:
            print(f"drctl: error: {exc}", file=sys.stderr)
            code = int(exc.exit_code)
    return Result(int(code), out.getvalue(), err.getvalue())


def run_process(*argv: str) -> Result:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", *argv],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def read_case(path: Path) -> Case:
    expect = ""
    args: tuple[str, ...] = ()
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        key, _, value = line[1:].strip().partition(":")
        if key == "expect":
            expect = value.strip()
        elif key == "args":
            args = tuple(str(path.parent / a) if a.startswith(".") else a for a in shlex.split(value))
    assert re.match(r"\d+:\d+: \S", expect), f"{path.name} needs a '# expect: LINE:COL: message' comment"
    return Case(path, expect, args)


# -- the corpus -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_invalid_runbook_gives_its_one_expected_error(path: Path) -> None:
    case = read_case(path)
    result = run_cli("validate", str(path), *case.args)
    assert result.code == ExitCode.INVALID_INPUT
    assert "Traceback" not in result.err
    assert result.out == ""
    assert result.err.splitlines() == [f"{path}:{case.expect}"]


def test_corpus_covers_many_distinct_mistakes() -> None:
    messages = {re.sub(r"'[^']*'", "'…'", read_case(p).expect.split(": ", 1)[1]) for p in INVALID}
    assert len(INVALID) >= 15
    assert len(messages) >= 15


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.stem)
def test_valid_runbook_passes(path: Path) -> None:
    result = run_cli("validate", str(path))
    assert (result.code, result.err) == (ExitCode.OK, "")
    assert re.fullmatch(rf"{re.escape(str(path))}: ok \(\d+ steps?, \d+ tiers?\)\n", result.out)


def test_the_documented_example_is_valid(tmp_path: Path) -> None:
    docs = (REPO / "docs" / "runbooks.md").read_text(encoding="utf-8")
    example = tmp_path / "example.yaml"
    example.write_text(docs.split("```yaml\n", 1)[1].split("```", 1)[0], encoding="utf-8")
    result = run_cli("validate", str(example), "--stack-outputs", str(AWS_TO_AZURE))
    assert (result.code, result.err) == (ExitCode.OK, "")


def test_corpus_through_a_real_process() -> None:
    cases = [read_case(p) for p in INVALID if not read_case(p).args]
    valid = RUNBOOKS / "valid" / "minimal.yaml"
    result = run_process("validate", str(valid), *(str(c.path) for c in cases))
    assert result.code == ExitCode.INVALID_INPUT
    assert "Traceback" not in result.err
    assert result.out == f"{valid}: ok (1 step, 1 tier)\n"
    assert result.err.splitlines() == [f"{c.path}:{c.expect}" for c in cases]


# -- validate ---------------------------------------------------------------------------------------------------


def test_validate_reports_each_file_and_fails_if_any_fails() -> None:
    good, bad = RUNBOOKS / "valid" / "minimal.yaml", RUNBOOKS / "invalid" / "cycle.yaml"
    result = run_cli("validate", str(good), str(bad), str(good))
    assert result.code == ExitCode.INVALID_INPUT
    assert result.out.splitlines() == [f"{good}: ok (1 step, 1 tier)"] * 2
    assert [line.split(":")[0] for line in result.err.splitlines()] == [str(bad)]


def test_validate_names_files_as_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "rb.yaml").write_text((RUNBOOKS / "invalid" / "wrong-kind.yaml").read_text())
    monkeypatch.chdir(tmp_path)
    assert run_cli("validate", "./rb.yaml").err.startswith("./rb.yaml:3:7: kind must be")


def test_validate_against_stack_outputs() -> None:
    path = RUNBOOKS / "valid" / "failover-aws-to-azure.yaml"
    assert run_cli("validate", str(path), "--stack-outputs", str(AWS_TO_AZURE)).code == ExitCode.OK
    lab = run_cli("validate", str(path), "--stack-outputs", str(RUNBOOKS / "stack-outputs" / "lab.json"))
    assert lab.code == ExitCode.INVALID_INPUT
    assert all("stack output 'vault_" in line and "is null in stack 'lab'" in line for line in lab.err.splitlines())


def test_parameter_overrides_apply_to_every_file() -> None:
    path = RUNBOOKS / "valid" / "failover-aws-to-azure.yaml"
    assert run_cli("validate", str(path), "-p", "mode=full", "-p", "copies=2").code == ExitCode.OK
    result = run_cli("validate", str(path), "-p", "mode=ful")
    assert result.err.splitlines() == [
        f"{path}:11:5: -p mode=ful: parameter 'mode' takes one of full, incremental, differential; did you mean 'full'?"
    ]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["-p", "nonsense"], "drctl: error: -p 'nonsense' is not NAME=VALUE, e.g. -p mode=full"),
        (["-p", "a=1", "-p", "a=2"], "drctl: error: -p a is given twice; give each parameter once"),
        (["--stack-outputs", "/no/such/outputs.json"], "drctl: error: stack outputs file /no/such/outputs.json"),
    ],
)
def test_option_mistakes_are_one_usage_error(argv: list[str], message: str) -> None:
    files = [str(RUNBOOKS / "valid" / "minimal.yaml"), str(RUNBOOKS / "invalid" / "cycle.yaml")]
    result = run_cli("validate", *files, *argv)
    assert result.code == ExitCode.INVALID_INPUT
    assert result.out == ""
    assert len(result.err.splitlines()) == 1
    assert result.err.startswith(message)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "1:1: cannot read this file: No such file or directory"),
        (b"apiVersion: drctl/v1\nkind: \xff\n", "2:7: not UTF-8 text (byte 0xff); save the file as UTF-8"),
        (
            b"- just\n- a list\n",
            "1:1: a runbook must be a mapping with apiVersion, kind, metadata and spec, got a list",
        ),
        (b"just text\n", "1:1: a runbook must be a mapping with apiVersion, kind, metadata and spec, got text"),
        (b"a: [1, 2\n", "2:1: invalid YAML: expected ',' or ']', but got '<stream end>'"),
    ],
)
def test_unusable_files_through_a_real_process(tmp_path: Path, content: bytes | None, expected: str) -> None:
    path = tmp_path / "runbook.yaml"
    if content is not None:
        path.write_bytes(content)
    result = run_process("validate", str(path))
    assert result.code == ExitCode.INVALID_INPUT
    assert "Traceback" not in result.err
    assert len(result.err.splitlines()) == 1
    assert result.err.startswith(f"{path}:{expected}")


def test_a_directory_is_not_a_runbook(tmp_path: Path) -> None:
    result = run_cli("validate", str(tmp_path))
    assert result.err == f"{tmp_path}:1:1: cannot read this file: Is a directory\n"


# -- plan -------------------------------------------------------------------------------------------------------


def test_plan_text_through_a_real_process() -> None:
    path = RUNBOOKS / "valid" / "failover-aws-to-azure.yaml"
    result = run_process("plan", str(path), "--stack-outputs", str(AWS_TO_AZURE), "-p", "mode=full")
    assert (result.code, result.err) == (ExitCode.OK, "")
    assert result.out.startswith(f"plan of runbook failover-aws-to-azure ({path}): 6 steps in 5 waves, 3 tiers\n")
    assert "      writes az://backups/db/ (a new full recovery point)\n" in result.out
    assert result.out.endswith("nothing was changed\n")


def test_plan_json() -> None:
    path = RUNBOOKS / "valid" / "failover-aws-to-azure.yaml"
    result = run_cli("plan", str(path), "--format", "json")
    assert result.code == ExitCode.OK
    doc = json.loads(result.out)
    assert [w["wave"] for w in doc["waves"]] == [1, 2, 3, 4, 5]
    assert [[s["id"] for s in w["steps"]] for w in doc["waves"]] == [
        ["copy-db-backups"],
        ["verify", "announce"],
        ["restore-db"],
        ["wait-for-db"],
        ["health"],
    ]
    assert doc["approvals"] == ["verify"]
    assert doc["changes_made"] is False


def test_plan_of_an_invalid_runbook_prints_its_diagnostics() -> None:
    path = RUNBOOKS / "invalid" / "cycle.yaml"
    result = run_cli("plan", str(path))
    assert result.code == ExitCode.INVALID_INPUT
    assert result.out == ""
    assert result.err == f"{path}:{read_case(path).expect}\n"
