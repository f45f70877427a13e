"""Helpers for drilling the lab's three-tier shop on an estate of a test's own: the estate isolated by a stack
name of its own, drills run as a user runs them, the lab's instance runner and processes looked at from outside,
and a vault blob found through its recovery point's manifest."""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from orchestrator.backup.layout import POINTS_PREFIX, blob_key
from orchestrator.drill.scope import TAG_RUN
from orchestrator.stack_outputs import StackOutputs
from tests.support.cli import drctl
from tests.support.estate import REPO, Lab

SET_PREFIX = "sets/app/"
"""Where the drill runbook keeps the vault's backup set inside the vault container."""
LIVE = ["pending", "running", "stopping", "stopped"]
RUNNER_WAIT_S = 30.0
"""How long the runner may take to stop a terminated instance's processes (it polls twice a second and gives
each process group a few seconds' grace)."""


@dataclass(frozen=True)
class ShopEstate:
    """A seeded estate under ``prefix``: a stack of its own (the seeder names it after the prefix), so a drill of
    it copies its standbys only, and drills of other estates never copy its own."""

    prefix: str
    outputs_path: Path
    outputs: StackOutputs
    lab: Lab
    base_env: dict[str, str]

    def env(self, state: Path) -> dict[str, str]:
        return {**self.base_env, "DRCTL_STATE_DIR": str(state)}

    @property
    def vault(self) -> str:
        return f"{self.prefix}-vault"

    def params(self, source: str | None = None) -> list[str]:
        """The runbook parameters that point a drill at this estate's data and vault."""
        return ["-p", f"source={source or f's3://{self.prefix}-app-data/'}", "-p", f"vault=az://{self.vault}/"]


def run_drill(estate: ShopEstate, state: Path, *args: str, timeout: float = 300) -> tuple[int, dict[str, Any]]:
    """``drctl drill runbooks/drill.yaml --json`` on the estate: its exit code and JSON outcome."""
    runbook = str(REPO / "runbooks" / "drill.yaml")
    result = drctl(
        "drill",
        runbook,
        "--stack-outputs",
        str(estate.outputs_path),
        "--json",
        *args,
        env=estate.env(state),
        timeout=timeout,
    )
    return result.returncode, outcome_of(result.returncode, result.stdout, result.stderr)


def outcome_of(code: int, stdout: str, stderr: str) -> dict[str, Any]:
    assert "Traceback" not in stderr, stderr[-3000:]
    try:
        doc: dict[str, Any] = json.loads(stdout)
    except json.JSONDecodeError:
        pytest.fail(f"no JSON outcome (exit {code}): {stdout[-1000:]!r} {stderr[-3000:]!r}")
    return doc


def report(estate: ShopEstate, state: Path, run_id: str) -> dict[str, Any]:
    result = drctl("report", run_id, "--format", "json", env=estate.env(state))
    assert result.returncode == 0, result.stderr
    doc: dict[str, Any] = json.loads(result.stdout)
    return doc


def steps_by_id(doc: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["step_id"]: s for s in doc["steps"]}


# --- EC2 --------------------------------------------------------------------------------------------------------


def instances(lab: Lab, *filters: tuple[str, list[str]]) -> dict[str, dict[str, Any]]:
    wanted: Any = [{"Name": k, "Values": v} for k, v in filters]
    found: dict[str, dict[str, Any]] = {}
    for page in lab.ec2.get_paginator("describe_instances").paginate(Filters=wanted):
        for reservation in page["Reservations"]:
            for inst in reservation["Instances"]:
                found[inst["InstanceId"]] = dict(inst)
    return found


def tags_of(inst: Mapping[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in inst.get("Tags", [])}


def drill_copies(estate: ShopEstate, run_id: str) -> dict[str, dict[str, Any]]:
    """Every instance drill ``run_id`` made, whatever its state."""
    return instances(estate.lab, (f"tag:{TAG_RUN}", [run_id]))


def live_copies(estate: ShopEstate, run_id: str) -> set[str]:
    return set(instances(estate.lab, ("instance-state-name", LIVE), (f"tag:{TAG_RUN}", [run_id])))


def copies_of_tier(estate: ShopEstate, tier: str, live_only: bool = False) -> dict[str, dict[str, Any]]:
    """Drill copies of this estate's ``tier`` standbys (any drill; any state unless ``live_only``, which is
    far quicker on a lab full of ended instances: LocalStack drops those on the state before any tag lookup)."""
    tags = (("tag:drctl:stack", [estate.prefix]), ("tag:drctl:tier", [tier]), ("tag-key", [TAG_RUN]))
    return instances(estate.lab, *((("instance-state-name", LIVE),) if live_only else ()), *tags)


# --- the lab's instance runner and the processes it starts --------------------------------------------------------


def lab_dir() -> Path:
    return Path(os.environ.get("DRCTL_LAB_DIR", str(REPO / ".lab"))).resolve()


def runner_instances(directory: Path | None = None) -> dict[str, dict[str, Any]]:
    """The runner's ``runner-state.json``: the instances whose programs it started, by id ({} while unreadable:
    it is replaced atomically, but may not exist yet)."""
    path = (directory or lab_dir()) / "run" / "runner-state.json"
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    found: dict[str, dict[str, Any]] = state.get("instances", {})
    return found


def pid_alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def processes_of(instance_ids: set[str]) -> dict[int, str]:
    """Live processes on this machine running for one of ``instance_ids``: the runner gives each instance's program
    ``DRCTL_INSTANCE_ID`` and its children (PostgreSQL's, say) inherit it. Unreadable processes are skipped."""
    wanted = {f"DRCTL_INSTANCE_ID={i}".encode() for i in instance_ids}
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = set((entry / "environ").read_bytes().split(b"\0"))
        except OSError:
            continue
        hit = wanted & environ
        if hit and pid_alive(int(entry.name)):
            found[int(entry.name)] = next(iter(hit)).decode()
    return found


def leftover_processes(instance_ids: set[str]) -> dict[str, Any]:
    """What still runs for ``instance_ids``: entries of the runner's state with a live pid, and processes."""
    listed = {
        iid: inst["pid"]
        for iid, inst in runner_instances().items()
        if iid in instance_ids and pid_alive(int(inst["pid"]))
    }
    running = processes_of(instance_ids)
    return {"runner-state": listed, "processes": running} if listed or running else {}


def wait_until_no_process(instance_ids: set[str]) -> None:
    """Poll (bounded) until no process of ``instance_ids`` is left; fail naming what is."""
    deadline = time.monotonic() + RUNNER_WAIT_S
    left = leftover_processes(instance_ids)
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left = leftover_processes(instance_ids)
    assert not left, f"instance processes left {RUNNER_WAIT_S:.0f}s after the drill's cleanup: {left}"


# --- the vault ------------------------------------------------------------------------------------------------------


def newest_point_blob(estate: ShopEstate, key: str) -> tuple[str, str]:
    """The newest recovery point of the vault's set and the blob path (in the vault container) of its ``key``,
    read from the point's manifest (``points/<id>.json``; the object's ``blob`` names ``data/<ab>/<blob>``)."""
    container = estate.lab.blobs.get_container_client(estate.vault)
    points = sorted(
        b.name for b in container.list_blobs(name_starts_with=SET_PREFIX + POINTS_PREFIX) if b.name.endswith(".json")
    )
    assert points, f"the vault az://{estate.vault}/{SET_PREFIX} has no recovery point"
    manifest = json.loads(container.download_blob(points[-1]).readall())
    entries = [o for o in manifest["point"]["objects"] if o["key"] == key]
    assert len(entries) == 1, f"{key} is not in {points[-1]}"
    point_id = points[-1][len(SET_PREFIX + POINTS_PREFIX) : -len(".json")]
    return point_id, SET_PREFIX + blob_key(entries[0]["blob"])


def read_blob(estate: ShopEstate, name: str) -> bytes:
    return estate.lab.blobs.get_container_client(estate.vault).download_blob(name).readall()


def write_blob(estate: ShopEstate, name: str, data: bytes) -> None:
    estate.lab.blobs.get_container_client(estate.vault).upload_blob(name, data, overwrite=True)


# --- a private lab -----------------------------------------------------------------------------------------------


def port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def processes_mentioning(text: str) -> Iterator[tuple[int, str]]:
    """Live processes whose command line or environment contains ``text``."""
    needle = text.encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if (needle in cmdline or needle in environ) and pid_alive(int(entry.name)):
            yield int(entry.name), cmdline.replace(b"\0", b" ").decode(errors="replace")[:200]
