"""The lab's instance runner: LocalStack's EC2 instances that opt in run their user data as local processes.

LocalStack emulates EC2's API, not its machines: an instance that is "running" runs nothing. The runner closes
that gap for the lab, so that a drill boots real programs and its health checks reach real servers.

- **Opt in, loopback only.** User data is code. The runner runs only instances tagged
  :data:`WORKLOAD_TAG` whose private address is on loopback (the lab's VPCs use 127.x CIDRs), so other
  tests' instances, and anything that would listen beyond this machine, are left alone.
- **Boot.** An instance seen ``running`` is booted after :data:`BOOT_DELAY_VAR` seconds (a VM takes time to
  boot, and an RTO that leaves that out means little): its user data runs with ``/bin/sh`` in a session of
  its own, as the lab's own user (the project's Python may sit where no other user can read it; a program
  that refuses root, as PostgreSQL does, drops to ``localstack.pg.LAB_USER`` itself), with the instance's
  id, private address, region, VPC and tags in its environment, and its output in ``<lab>/logs/instances/<id>.log``.
- **Stop, terminate.** Any other state (stopping, stopped, terminated, gone) kills the process group; a
  terminated instance's disk (``<lab>/instances/<id>``) is removed, a stopped one's is kept, as EBS keeps it.
- **Reboot** is not seen: LocalStack 4.13.1 keeps a rebooted instance ``running`` with the same launch time,
  so nothing in the API tells the runner it happened. For the same reason a stop and a start that both fall
  between two polls (half a second) go unseen, and the old process keeps running.
- A program that exits on its own is not restarted: its instance stays ``running`` and unhealthy, as a VM
  whose service crashed would.

State (``<lab>/run/runner-state.json``) lists what runs; ``lab.py status`` prints it. Run with the project's
venv: ``python -m localstack.runner``. SIGTERM stops every instance process, then the runner.
"""

from __future__ import annotations

import base64
import contextlib
import ipaddress
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from localstack.pg import PASSWORD_VAR, PgError, ensure_reachable, lab_password, pg_bin

REPO = Path(__file__).resolve().parent.parent
WORKLOAD_TAG = "drctl-lab:workload"
"""The opt-in tag: only instances carrying it have their user data run."""
BOOT_DELAY_VAR = "DRCTL_LAB_BOOT_DELAY"
DEFAULT_BOOT_DELAY_S = 3.0
REGIONS_VAR = "DRCTL_LAB_REGIONS"
DEFAULT_REGIONS = ("us-east-1", "us-west-2")
POLL_S = 0.5
STOP_GRACE_S = 5.0
LOOPBACK = ipaddress.IPv4Network("127.0.0.0/8")


@dataclass
class Booted:
    """One instance whose program runs (or ran) here."""

    id: str
    region: str
    private_ip: str
    process: subprocess.Popen[bytes]
    started: float
    exit_noted: bool = False
    group_gone: bool = False
    """Its leader exited and no member is left: the group id is free for reuse, so it is never signalled again."""


@dataclass
class Runner:
    lab_dir: Path
    regions: tuple[str, ...]
    boot_delay_s: float
    lab_env: Mapping[str, str]
    clients: dict[str, Any] = field(default_factory=dict)
    booted: dict[str, Booted] = field(default_factory=dict)
    due: dict[str, float] = field(default_factory=dict)
    ended: set[str] = field(default_factory=set)
    """Instances seen terminated: a terminated instance never changes again, so it is not described again."""
    stopping: bool = False

    # --- EC2 --------------------------------------------------------------------------------------------------

    def ec2(self, region: str) -> Any:
        if region not in self.clients:
            self.clients[region] = boto3.client(
                "ec2",
                region_name=region,
                # The loop is the retry: a failed poll is tried again in POLL_S; nothing may stack on it.
                config=Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=2, read_timeout=10),
            )
        return self.clients[region]

    def opted_in(self, region: str) -> dict[str, dict[str, Any]]:
        """Every instance in ``region`` carrying the opt-in tag, by id, whatever its state; terminated ones
        only until their end has been seen once.

        Two calls, not one DescribeInstances filtered by ``tag-key``. LocalStack's EC2 (moto) answers a tag
        filter by walking every tag in the region once per instance it tests, so polling that way every half
        second kept one of the lab's two cores busy as soon as a drill benchmark left a thousand instances
        behind, and slowed every other EC2 call. DescribeTags is one walk; describing the opted-in instances by
        id then costs only those."""
        client = self.ec2(region)
        ids: set[str] = set()
        wanted: Any = [{"Name": "key", "Values": [WORKLOAD_TAG]}, {"Name": "resource-type", "Values": ["instance"]}]
        for page in client.get_paginator("describe_tags").paginate(Filters=wanted):
            ids.update(str(tag["ResourceId"]) for tag in page["Tags"])
        ids -= self.ended
        found: dict[str, dict[str, Any]] = {}
        for batch in _batches(sorted(ids)):
            try:
                found.update(self._described(client, batch))
            except ClientError as err:
                if not _unknown_id(err):
                    raise
                # One id EC2 no longer knows fails the whole call: describe the batch one by one, without it.
                # Any other error fails the poll (tried again in POLL_S): an instance missing from the answer
                # would be taken for gone, and its program stopped.
                for iid in batch:
                    try:
                        found.update(self._described(client, [iid]))
                    except ClientError as one:
                        if not _unknown_id(one):
                            raise
        return found

    @staticmethod
    def _described(client: Any, ids: list[str]) -> dict[str, dict[str, Any]]:
        pages = client.get_paginator("describe_instances").paginate(InstanceIds=ids)
        return {i["InstanceId"]: i for page in pages for r in page["Reservations"] for i in r["Instances"]}

    def user_data(self, region: str, instance_id: str) -> bytes:
        answer = self.ec2(region).describe_instance_attribute(InstanceId=instance_id, Attribute="userData")
        value = answer.get("UserData", {}).get("Value")
        return base64.b64decode(value) if value else b""

    # --- the loop ---------------------------------------------------------------------------------------------

    def poll(self) -> None:
        seen: dict[str, tuple[str, dict[str, Any]]] = {}
        for region in self.regions:
            for iid, inst in self.opted_in(region).items():
                seen[iid] = (region, inst)
        now = time.monotonic()
        for iid in list(self.booted):
            state = seen[iid][1]["State"]["Name"] if iid in seen else "gone"
            if state != "running":
                self.halt(iid, state)
            if state == "gone":  # vanished from the API (LocalStack restarted): nothing will ever boot it again
                self.forget_disk(iid)
        for iid, (region, inst) in seen.items():
            state = inst["State"]["Name"]
            if state in ("terminated", "shutting-down"):
                self.forget_disk(iid)
            if state == "terminated":
                self.ended.add(iid)
            if state != "running" or iid in self.booted:
                if state != "running":
                    self.due.pop(iid, None)
                continue
            ip = inst.get("PrivateIpAddress", "")
            if not _on_loopback(ip):
                continue
            boot_at = self.due.setdefault(iid, now + self.boot_delay_s)
            if now >= boot_at:
                self.boot(iid, region, inst)
        for booted in self.booted.values():
            code = booted.process.poll()
            if code is not None and not booted.exit_noted:
                booted.exit_noted = True
                _say(f"{booted.id}: its program exited with {code}; the instance stays running, unhealthy")
            if code is not None and not booted.group_gone:
                booted.group_gone = not _group_alive(booted.process)

    def boot(self, iid: str, region: str, inst: Mapping[str, Any]) -> None:
        self.due.pop(iid, None)
        script = self.user_data(region, iid)
        disk = self.lab_dir / "instances" / iid
        disk.mkdir(parents=True, exist_ok=True)
        (disk / "user-data").write_bytes(script)
        log = self.lab_dir / "logs" / "instances" / f"{iid}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        tags = {t["Key"]: t["Value"] for t in inst.get("Tags", [])}
        env = {
            **self.lab_env,
            "AWS_DEFAULT_REGION": region,
            "DRCTL_INSTANCE_ID": iid,
            "DRCTL_PRIVATE_IP": inst["PrivateIpAddress"],
            "DRCTL_REGION": region,
            "DRCTL_VPC_ID": inst.get("VpcId", ""),
            "DRCTL_INSTANCE_TAGS": json.dumps(tags, sort_keys=True),
            "DRCTL_INSTANCE_DISK": str(disk),
            "HOME": str(disk),
        }
        with log.open("ab") as out:
            out.write(f"--- boot {iid} ({inst['PrivateIpAddress']}, {region}) at {time.ctime()}\n".encode())
            out.flush()
            process = subprocess.Popen(
                ["/bin/sh", str(disk / "user-data")],
                cwd=REPO,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.booted[iid] = Booted(iid, region, inst["PrivateIpAddress"], process, time.time())
        _say(f"{iid}: booted ({inst['PrivateIpAddress']}, {region}), pid {process.pid}")

    def halt(self, iid: str, state: str) -> None:
        booted = self.booted.pop(iid)
        if not booted.group_gone:
            _kill_group(booted.process)
        _say(f"{iid}: {state}, its processes are stopped")

    def forget_disk(self, iid: str) -> None:
        disk = self.lab_dir / "instances" / iid
        if disk.exists():
            shutil.rmtree(disk, ignore_errors=True)

    def halt_all(self) -> None:
        """Every instance at once: SIGTERM all groups, then one shared grace period, then SIGKILL what is left.
        One by one, a lab of many instances would outlast ``lab.py``'s patience with the runner itself."""
        booted = [b for b in self.booted.values() if not b.group_gone]
        self.booted = {}
        for b in booted:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(b.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        while time.monotonic() < deadline and any(_group_alive(b.process) for b in booted):
            time.sleep(0.05)
        for b in booted:
            _kill_group(b.process, grace_s=0.0)
        _say(f"stopped the processes of {len(booted)} instance(s)")

    def write_state(self, error: str | None) -> None:
        state = {
            "pid": os.getpid(),
            "polled_at": time.time(),
            "error": error,
            "instances": {
                b.id: {
                    "pid": b.process.pid,
                    "region": b.region,
                    "private_ip": b.private_ip,
                    "alive": b.process.poll() is None,
                }
                for b in self.booted.values()
            },
        }
        path = self.lab_dir / "run" / "runner-state.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=1))
        tmp.replace(path)


def _unknown_id(err: ClientError) -> bool:
    return str(err.response.get("Error", {}).get("Code", "")).startswith("InvalidInstanceID")


def _batches(ids: list[str], size: int = 500) -> list[list[str]]:
    """Ids in requests of ``size``: EC2 wants instance id lists kept to a few hundred per call."""
    return [ids[i : i + size] for i in range(0, len(ids), size)]


def _on_loopback(ip: str) -> bool:
    try:
        return ipaddress.IPv4Address(ip) in LOOPBACK
    except ValueError:
        return False


def _kill_group(process: subprocess.Popen[bytes], grace_s: float = STOP_GRACE_S) -> None:
    """SIGTERM the instance's whole session, then SIGKILL what is left after a grace period: a VM that stops
    stops everything. The group is signalled even when its leader (the user-data shell) already exited, since
    a program it started in the background must get its clean shutdown too."""
    group = process.pid
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(group, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and _group_alive(process):
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(group, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(STOP_GRACE_S)


def _group_alive(process: subprocess.Popen[bytes]) -> bool:
    # Linux keeps a group's id reserved while any member lives, so this cannot reach another group while ours
    # has members; the leader is reaped (poll) so that, once everyone is gone, ESRCH says so.
    process.poll()
    try:
        os.killpg(process.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _say(message: str) -> None:
    print(f"runner: {message}", file=sys.stderr, flush=True)


def instance_env(lab_dir: Path, environ: Mapping[str, str]) -> dict[str, str]:
    """What an instance's program may read: the lab's endpoints and keys (an instance role's stand-in), the
    database password (a secrets manager's stand-in), and where the lab's Python and PostgreSQL are."""
    keep = ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AZURE_STORAGE_CONNECTION_STRING")
    env = {k: environ[k] for k in keep if k in environ}
    env.update(
        {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "PYTHONPATH": str(REPO),
            "PYTHONDONTWRITEBYTECODE": "1",
            "DRCTL_LAB_PYTHON": sys.executable,
            "DRCTL_LAB_PG_BIN": str(pg_bin(lab_dir)),
            PASSWORD_VAR: lab_password(lab_dir),
        }
    )
    return env


def main() -> int:
    environ = dict(os.environ)
    lab_dir = Path(environ.get("DRCTL_LAB_DIR", str(REPO / ".lab"))).resolve()
    try:
        delay = float(environ.get(BOOT_DELAY_VAR, DEFAULT_BOOT_DELAY_S))
        runner = Runner(
            lab_dir=lab_dir,
            regions=tuple(r for r in environ.get(REGIONS_VAR, ",".join(DEFAULT_REGIONS)).split(",") if r),
            boot_delay_s=max(0.0, delay),
            lab_env=instance_env(lab_dir, environ),
        )
    except (ValueError, PgError) as err:
        _say(f"error: {err}")
        return 2
    for directory in ensure_reachable(lab_dir):
        _say(f"made {directory} searchable (o+x) so the lab user's PostgreSQL can reach the lab")

    def stop(signum: int, _frame: object) -> None:
        runner.stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    _say(f"watching {', '.join(runner.regions)} for instances tagged {WORKLOAD_TAG} (boot {delay:g}s)")
    try:
        while not runner.stopping:
            error = None
            try:
                runner.poll()
            except (BotoCoreError, ClientError) as err:
                # LocalStack busy or restarting: say so and try again; the processes keep running meanwhile.
                error = " ".join(str(err).split())
                _say(f"poll failed: {error}")
            runner.write_state(error)
            deadline = time.monotonic() + POLL_S
            while not runner.stopping and time.monotonic() < deadline:
                time.sleep(0.05)
    finally:
        runner.halt_all()
        runner.write_state(None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
