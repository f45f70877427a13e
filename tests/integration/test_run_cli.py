"""``drctl run / resume / status`` end to end with real processes: exit codes, the lock, and a run killed
with SIGKILL mid-step that ``resume`` finishes without repeating what had succeeded.

The commands are driven through a parser built from ``orchestrator.commands.run.register`` only, so these
tests do not depend on how cli.py wires commands."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from orchestrator.engine.lock import LockHolder, SqliteRunLock
from orchestrator.errors import ExitCode

DRIVER = (
    "import argparse, sys\n"
    "from orchestrator.commands import run\n"
    "from orchestrator.errors import DrError\n"
    "p = argparse.ArgumentParser(prog='drctl')\n"
    "run.register(p.add_subparsers(required=True))\n"
    "a = p.parse_args(sys.argv[1:])\n"
    "try:\n"
    "    sys.exit(a.handler(a))\n"
    "except DrError as e:\n"  # what cli.main does with every command's errors
    "    print(f'drctl: error: {e}', file=sys.stderr)\n"
    "    sys.exit(int(e.exit_code))\n"
)
ROOT = Path(__file__).resolve().parents[2]


def runbook(directory: Path, steps: list[dict[str, Any]], name: str = "t") -> Path:
    doc = {"apiVersion": "drctl/v1", "kind": "Runbook", "metadata": {"name": name}, "spec": {"steps": steps}}
    path = directory / "rb.yaml"
    path.write_text(json.dumps(doc))
    return path


def shell(step_id: str, command: str, **kw: Any) -> dict[str, Any]:
    return {"id": step_id, "action": "shell", "with": {"command": command}, **kw}


def start(state: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "DRCTL_STATE_DIR": str(state), "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-c", DRIVER, *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def drctl(state: Path, *args: str) -> tuple[int, str, str]:
    proc = start(state, *args)
    out, err = proc.communicate(timeout=60)
    return proc.returncode, out, err


def test_run_succeeds_and_status_reports_it(tmp_path: Path) -> None:
    path = runbook(tmp_path, [shell("a", "echo hello"), shell("b", "echo world", needs=["a"])])
    code, out, err = drctl(tmp_path / "state", "run", str(path), "--json")
    assert code == ExitCode.OK, err
    outcome = json.loads(out)
    assert outcome["status"] == "succeeded"
    code, out, _ = drctl(tmp_path / "state", "status", outcome["run_id"], "--json")
    assert code == 0
    steps = json.loads(out)["steps"]
    assert steps["a"]["outputs"] == {"exit_code": 0, "stdout": "hello\n"}
    assert steps["b"]["status"] == "succeeded"


def test_exit_codes_failed_invalid_and_unknown_approval(tmp_path: Path) -> None:
    failing = runbook(tmp_path, [shell("a", "exit 4")])
    code, out, _ = drctl(tmp_path / "state", "run", str(failing), "--json")
    assert code == ExitCode.FAILED
    assert drctl(tmp_path / "state", "status", json.loads(out)["run_id"])[0] == ExitCode.FAILED
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: drctl/v1\nkind: Runbook\nmetadata: {name: t}\nspec: {steps: [{id: a, action: nope}]}\n")
    code, _, err = drctl(tmp_path / "state", "run", str(bad))
    assert code == ExitCode.INVALID_INPUT
    assert "unknown action 'nope'" in err
    gated = runbook(tmp_path, [shell("a", "true", approval="required")])
    code, _, err = drctl(tmp_path / "state", "run", str(gated))
    assert code == ExitCode.FAILED
    assert "--approve a" in err
    assert drctl(tmp_path / "state", "run", str(gated), "--approve", "a")[0] == ExitCode.OK


def test_lock_held_exits_3_and_force_unlock_breaks_it(tmp_path: Path) -> None:
    path = runbook(tmp_path, [shell("a", "true")], name="locked")
    state = tmp_path / "state"
    lock = SqliteRunLock(state / "locks.sqlite", "runbook locked on stack (none)")
    lock.acquire(LockHolder.here("other-run", "locked"))  # this test process is alive: the lock is not stale
    lock.close()
    code, _, err = drctl(state, "run", str(path))
    assert code == ExitCode.LOCK_HELD
    assert "other-run" in err
    assert drctl(state, "run", str(path), "--force-unlock")[0] == ExitCode.OK


def test_sigkilled_run_resumes_without_repeating_succeeded_steps(tmp_path: Path) -> None:
    log, started, marker = tmp_path / "log", tmp_path / "started", tmp_path / "marker"
    path = runbook(
        tmp_path,
        [
            shell("a", f"echo a >> {log}"),
            # Hangs the first time (until killed); once the marker exists it succeeds. The runbook text is the
            # same both times, as resume requires.
            shell(
                "b", f"if [ -f {marker} ]; then echo b >> {log}; else touch {started}; exec sleep 60; fi", needs=["a"]
            ),
            shell("c", f"echo c >> {log}", needs=["b"]),
        ],
    )
    state = tmp_path / "state"
    proc = start(state, "run", str(path))
    deadline = time.monotonic() + 30
    while not started.exists():  # poll for the condition itself: b is running
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "step b never started"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate()

    code, out, _ = drctl(state, "status", "--json")
    (run,) = json.loads(out)
    assert run["status"] == "running"  # killed: nothing got to record an end
    marker.touch()
    code, out, err = drctl(state, "resume", run["run_id"], "--json")
    assert code == ExitCode.OK, err
    assert json.loads(out)["status"] == "succeeded"
    assert log.read_text().split() == ["a", "b", "c"], "a ran once; b and c ran on resume"


@pytest.mark.parametrize("edit", ["# changed\n"])
def test_resume_refuses_an_edited_runbook(tmp_path: Path, edit: str) -> None:
    path = runbook(tmp_path, [shell("a", "exit 1")])
    state = tmp_path / "state"
    code, out, _ = drctl(state, "run", str(path), "--json")
    assert code == ExitCode.FAILED
    run_id = json.loads(out)["run_id"]
    path.write_text(path.read_text() + "\n" + edit)
    code, _, err = drctl(state, "resume", run_id)
    assert code == ExitCode.INVALID_INPUT
    assert "changed since run" in err


def test_ctrl_c_stops_the_run_with_130_and_resume_finishes_it(tmp_path: Path) -> None:
    started, marker, log = tmp_path / "started", tmp_path / "marker", tmp_path / "log"
    path = runbook(
        tmp_path,
        [
            shell("slow", f"if [ -f {marker} ]; then echo slow >> {log}; else touch {started}; exec sleep 60; fi"),
            shell("after", f"echo after >> {log}", needs=["slow"]),
        ],
    )
    state = tmp_path / "state"
    proc = start(state, "run", str(path), "--json")
    deadline = time.monotonic() + 30
    while not started.exists():  # poll for the condition itself: the slow step is running
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the slow step never started"
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)  # what Ctrl-C delivers to the foreground process
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == ExitCode.INTERRUPTED, err
    outcome = json.loads(out)
    assert outcome["status"] == "interrupted"
    assert not log.exists(), "no step after the interrupted one started"
    marker.touch()
    code, out, err = drctl(state, "resume", outcome["run_id"], "--json")
    assert code == ExitCode.OK, err
    assert log.read_text().split() == ["slow", "after"]
