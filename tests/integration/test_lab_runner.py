"""The lab's instance runner (``localstack/runner.py``) against the running lab: what it boots, what it leaves
alone, how stop, start and terminate reach the processes, and how ``lab.py`` reports it.

The instances live in loopback VPCs of this module's own (127.250-254.x, a second octet the seeded estates do
not use), are tagged with a nonce, and are terminated, with their subnets and VPCs deleted, however the tests
end. Every program they run gives up by itself within :data:`LIFETIME_S`, so nothing outlives a broken runner
for long.
"""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest

from localstack.lab import LabConfig, runner_state
from localstack.runner import WORKLOAD_TAG
from tests.integration.test_lab import alive
from tests.support.estate import wait_for
from tests.support.ports import free_port

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[2]
LAB_PY = REPO / "localstack" / "lab.py"
VENV_PYTHON = REPO / ".venv" / "bin" / "python"
REGION = "us-west-2"  # not the lab's default region, so DRCTL_REGION cannot come from AWS_DEFAULT_REGION
IMAGE = "ami-760aaa0f"  # one of the images LocalStack's EC2 preloads in every region
CASE_TAG = "drctl-test:runner-case"
LIFETIME_S = 120
FRESH_S = 10.0

LISTENER = f"""\
import os, socket, sys, time
deadline = time.monotonic() + {LIFETIME_S}
with socket.create_server((os.environ["DRCTL_PRIVATE_IP"], int(sys.argv[1]))) as srv:
    srv.settimeout(0.5)
    while time.monotonic() < deadline:
        try:
            conn, _ = srv.accept()
        except TimeoutError:
            continue
        with conn:
            conn.sendall(os.environ["DRCTL_INSTANCE_ID"].encode() + b"\\n")
"""


def server_script(port: int) -> str:
    """Count the boot, record pid, cwd and environment on the disk, start a background child, become a listener."""
    return f"""#!/bin/sh
d="$DRCTL_INSTANCE_DISK"
echo boot >> "$d/boots"
echo $$ > "$d/pid"
pwd > "$d/cwd"
sleep {LIFETIME_S} &
echo $! > "$d/child.pid"
"$DRCTL_LAB_PYTHON" -c 'import json, os, sys; json.dump(dict(os.environ), open(sys.argv[1], "w"))' "$d/env.tmp"
mv "$d/env.tmp" "$d/env.json"
cat > "$d/listen.py" <<'PY'
{LISTENER}PY
exec "$DRCTL_LAB_PYTHON" "$d/listen.py" {port}
"""


def touch_script(marker: Path) -> str:
    return f"#!/bin/sh\ntouch '{marker}'\n"


EXITS_ONCE_SCRIPT = '#!/bin/sh\necho boot >> "$DRCTL_INSTANCE_DISK/count"\nexit 0\n'


# --- helpers ---------------------------------------------------------------------------------------------------


def answer(ip: str, port: int) -> str | None:
    """The listener's one-line answer on ``ip:port``, or None when nothing answers there."""
    try:
        with socket.create_connection((ip, port), timeout=1) as conn:
            conn.settimeout(2)
            return conn.makefile("rb").readline().decode().strip() or None
    except OSError:
        return None


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def state_of(cfg: LabConfig) -> dict[str, Any]:
    return runner_state(cfg) or {}


def listed(cfg: LabConfig) -> dict[str, Any]:
    instances: dict[str, Any] = state_of(cfg).get("instances", {})
    return instances


def polls_pass(cfg: LabConfig, seconds: float) -> None:
    """Wait until the runner's state says it polled ``seconds`` after the state seen now: no bare sleep."""
    since = float(state_of(cfg).get("polled_at", 0))
    wait_for(
        f"the runner to poll {seconds}s past {since}",
        lambda: float(state_of(cfg).get("polled_at", 0)) > since + seconds,
    )


def lab(env: Mapping[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VENV_PYTHON), str(LAB_PY), *args], env=dict(env), capture_output=True, text=True, timeout=120, check=False
    )


# --- the module's instances ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Instance:
    id: str
    ip: str
    vpc: str
    tags: dict[str, str]


@dataclass
class Fleet:
    cfg: LabConfig
    ec2: EC2Client
    nonce: str
    port: int
    markers: Path
    server: Instance  # opted in, loopback: a listener (launched last: the control for what must not run)
    cycle: Instance  # opted in, loopback: the same program, stopped, started and terminated by a test
    exits_once: Instance  # opted in, loopback: counts its boot and exits
    untagged: Instance  # loopback, not opted in: would touch a marker
    elsewhere: Instance  # opted in, in a 10.x VPC: would touch a marker
    vpcs: list[str] = field(default_factory=list)

    def disk(self, inst: Instance) -> Path:
        return self.cfg.lab_dir / "instances" / inst.id

    def log(self, inst: Instance) -> Path:
        return self.cfg.lab_dir / "logs" / "instances" / f"{inst.id}.log"

    def ec2_state(self, inst: Instance) -> str:
        found = self.ec2.describe_instances(InstanceIds=[inst.id])["Reservations"][0]["Instances"][0]
        return found["State"]["Name"]

    def answers(self, inst: Instance) -> bool:
        return answer(inst.ip, self.port) == inst.id


@pytest.fixture(scope="module")
def lab_cfg(lab_env: dict[str, str]) -> LabConfig:
    if lab_env.get("DRCTL_LAB_RUNNER") == "off":
        pytest.skip("the lab's instance runner is off (DRCTL_LAB_RUNNER=off)")
    cfg = LabConfig.from_env(dict(os.environ))
    polled = float(state_of(cfg).get("polled_at", 0))
    if time.time() - polled > FRESH_S:
        pytest.fail(
            f"the lab's instance runner has not polled EC2 for {time.time() - polled:.0f}s: see `lab.py status`"
        )
    return cfg


@pytest.fixture(scope="module")
def fleet(lab_cfg: LabConfig, lab_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    ec2: EC2Client = boto3.client(
        "ec2",
        region_name=REGION,
        endpoint_url=lab_env["AWS_ENDPOINT_URL"],
        aws_access_key_id=lab_env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=lab_env["AWS_SECRET_ACCESS_KEY"],
    )
    nonce = uuid.uuid4().hex[:12]
    markers = tmp_path_factory.mktemp("runner-markers")
    port = free_port()
    vpcs: list[str] = []
    subnets: list[str] = []
    launched: list[str] = []

    def network(vpc_cidr: str, subnet_cidr: str) -> tuple[str, str]:
        vpc = ec2.create_vpc(CidrBlock=vpc_cidr)["Vpc"]["VpcId"]
        vpcs.append(vpc)
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock=subnet_cidr)["Subnet"]["SubnetId"]
        subnets.append(subnet)
        return vpc, subnet

    def launch(subnet: str, role: str, script: str, opted_in: bool) -> Instance:
        tags = {"Name": f"runner-test-{role}", CASE_TAG: f"{nonce}-{role}"}
        if opted_in:
            tags[WORKLOAD_TAG] = role
        found = ec2.run_instances(
            ImageId=IMAGE,
            InstanceType="t3.micro",
            MinCount=1,
            MaxCount=1,
            SubnetId=subnet,
            UserData=script,
            TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}],
        )["Instances"][0]
        launched.append(found["InstanceId"])
        return Instance(found["InstanceId"], found["PrivateIpAddress"], found["VpcId"], tags)

    try:
        # A random /24 in 127.250-254: two runs of this module at once would not share addresses.
        octet, third = random.randint(250, 254), random.randint(1, 254)
        _, loopback = network(f"127.{octet}.0.0/16", f"127.{octet}.{third}.0/24")
        _, remote = network("10.250.0.0/16", f"10.250.{third}.0/24")
        untagged = launch(loopback, "untagged", touch_script(markers / "untagged"), opted_in=False)
        elsewhere = launch(remote, "elsewhere", touch_script(markers / "elsewhere"), opted_in=True)
        exits_once = launch(loopback, "exits-once", EXITS_ONCE_SCRIPT, opted_in=True)
        cycle = launch(loopback, "cycle", server_script(port), opted_in=True)
        server = launch(loopback, "server", server_script(port), opted_in=True)
        yield Fleet(lab_cfg, ec2, nonce, port, markers, server, cycle, exits_once, untagged, elsewhere, vpcs)
    finally:
        if launched:
            ec2.terminate_instances(InstanceIds=launched)
            # Give the runner the chance to stop what it runs for us (best effort; the programs end by themselves).
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and set(launched) & set(listed(lab_cfg)):
                time.sleep(0.2)
        for subnet in subnets:
            ec2.delete_subnet(SubnetId=subnet)
        for vpc in vpcs:
            ec2.delete_vpc(VpcId=vpc)


def booted(fleet: Fleet, inst: Instance) -> None:
    wait_for(f"{inst.id} to answer on {inst.ip}:{fleet.port}", lambda: fleet.answers(inst))


# --- the tests -------------------------------------------------------------------------------------------------


def test_an_opted_in_loopback_instance_runs_its_user_data(fleet: Fleet) -> None:
    server = fleet.server
    reported = fleet.ec2.describe_instances(InstanceIds=[server.id])["Reservations"][0]["Instances"][0]
    ip = reported["PrivateIpAddress"]
    assert ip.startswith("127.")
    wait_for(f"{server.id} to answer on {ip}:{fleet.port}", lambda: answer(ip, fleet.port) == server.id)

    disk = fleet.disk(server)
    env = json.loads((disk / "env.json").read_text())
    assert env["DRCTL_INSTANCE_ID"] == server.id
    assert env["DRCTL_PRIVATE_IP"] == ip
    assert env["DRCTL_REGION"] == REGION
    assert env["DRCTL_VPC_ID"] == reported["VpcId"] == server.vpc
    tags = json.loads(env["DRCTL_INSTANCE_TAGS"])
    assert tags[CASE_TAG] == f"{fleet.nonce}-server"
    assert tags == {t["Key"]: t["Value"] for t in reported["Tags"]} == server.tags
    assert env["DRCTL_INSTANCE_DISK"] == env["HOME"] == str(disk)
    assert Path(env["DRCTL_LAB_PYTHON"]).exists()
    assert env["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:")
    assert (disk / "cwd").read_text().strip() == str(REPO)

    log = fleet.log(server)
    assert log.exists()
    assert f"--- boot {server.id} ({ip}, {REGION})" in log.read_text()

    pid = int((disk / "pid").read_text())
    child = int((disk / "child.pid").read_text())
    assert os.getsid(pid) == pid, "the user data runs in a session of its own"
    assert os.getpgid(child) == pid, "its background child is in that session's process group"
    entry = listed(fleet.cfg)[server.id]
    assert entry == {"pid": pid, "region": REGION, "private_ip": ip, "alive": True}
    assert alive(pid)


def test_stop_kills_the_group_and_keeps_the_disk_start_boots_again_terminate_removes_it(fleet: Fleet) -> None:
    cycle = fleet.cycle
    disk = fleet.disk(cycle)
    booted(fleet, cycle)
    pid, child = int((disk / "pid").read_text()), int((disk / "child.pid").read_text())
    assert alive(pid)
    assert alive(child)

    fleet.ec2.stop_instances(InstanceIds=[cycle.id])
    wait_for(f"{cycle.id}'s listener and background child to die", lambda: not alive(pid) and not alive(child))
    wait_for(f"the runner to drop {cycle.id} from its state", lambda: cycle.id not in listed(fleet.cfg))
    assert fleet.ec2_state(cycle) == "stopped"
    assert answer(cycle.ip, fleet.port) is None
    assert lines(disk / "boots") == ["boot"], "a stopped instance keeps its disk"

    fleet.ec2.start_instances(InstanceIds=[cycle.id])
    booted(fleet, cycle)
    assert lines(disk / "boots") == ["boot", "boot"]
    again, again_child = int((disk / "pid").read_text()), int((disk / "child.pid").read_text())
    assert again != pid
    assert listed(fleet.cfg)[cycle.id]["pid"] == again
    assert fleet.log(cycle).read_text().count(f"--- boot {cycle.id}") == 2

    fleet.ec2.terminate_instances(InstanceIds=[cycle.id])
    wait_for(f"{cycle.id}'s processes to die", lambda: not alive(again) and not alive(again_child))
    wait_for(f"{cycle.id}'s disk to be removed", lambda: not disk.exists())
    assert answer(cycle.ip, fleet.port) is None


def test_instances_not_opted_in_or_not_on_loopback_are_not_run(fleet: Fleet) -> None:
    # Both were launched before the server; once the server has booted, the runner has seen them past the boot
    # delay. A second of polls more leaves time for a program it did start to touch its marker.
    booted(fleet, fleet.server)
    polls_pass(fleet.cfg, 1.0)
    assert sorted(p.name for p in fleet.markers.iterdir()) == [], "their user data ran"
    assert fleet.ec2_state(fleet.untagged) == "running"
    assert fleet.ec2_state(fleet.elsewhere) == "running"
    assert fleet.untagged.ip.startswith("127.")
    assert fleet.elsewhere.ip.startswith("10.250.")
    for inst in (fleet.untagged, fleet.elsewhere):
        assert inst.id not in listed(fleet.cfg)
        assert not fleet.disk(inst).exists()
        assert not fleet.log(inst).exists()


def test_a_program_that_exits_by_itself_is_not_restarted(fleet: Fleet) -> None:
    counter = fleet.disk(fleet.exits_once) / "count"
    booted(fleet, fleet.server)
    wait_for("the exiting program to count its boot", counter.exists)
    wait_for(
        "the runner to note the program exited",
        lambda: listed(fleet.cfg).get(fleet.exits_once.id, {}).get("alive") is False,
    )
    pid = listed(fleet.cfg)[fleet.exits_once.id]["pid"]
    polls_pass(fleet.cfg, 2.5)
    assert lines(counter) == ["boot"]
    assert listed(fleet.cfg)[fleet.exits_once.id] == {
        "pid": pid,
        "region": REGION,
        "private_ip": fleet.exits_once.ip,
        "alive": False,
    }
    assert fleet.ec2_state(fleet.exits_once) == "running", "the instance stays running, unhealthy"


def test_lab_status_lists_the_running_instance(fleet: Fleet, lab_env: dict[str, str]) -> None:
    booted(fleet, fleet.server)
    wait_for(
        "the exiting program to be noted", lambda: listed(fleet.cfg).get(fleet.exits_once.id, {}).get("alive") is False
    )
    result = lab({**os.environ, **lab_env}, "status")
    assert result.returncode == 0, result.stdout + result.stderr
    server_lines = [line for line in result.stdout.splitlines() if fleet.server.id in line]
    assert len(server_lines) == 1, result.stdout
    assert f"{fleet.server.ip} ({REGION})" in server_lines[0]
    assert fleet.exits_once.id not in result.stdout, "an instance whose program exited is not listed as running"


def test_runner_off_is_reported_and_cannot_be_started(tmp_path: Path) -> None:
    lab_dir = tmp_path / "lab"
    env = {
        **os.environ,
        "DRCTL_LAB_DIR": str(lab_dir),
        "DRCTL_LAB_AWS_PORT": str(free_port()),
        "DRCTL_LAB_AZURE_PORT": str(free_port()),
        "DRCTL_LAB_RUNNER": "off",
    }
    overall = lab(env, "status")
    assert overall.returncode == 1  # nothing of this private lab is up
    assert "runner      off (DRCTL_LAB_RUNNER=off): lab instances run nothing" in overall.stdout
    assert "instance " not in overall.stdout

    only_runner = lab(env, "status", "runner")
    assert only_runner.returncode == 2
    assert "the instance runner is off (DRCTL_LAB_RUNNER=off)" in only_runner.stderr

    up = lab(env, "up", "runner")
    assert up.returncode == 2
    assert "the instance runner is off (DRCTL_LAB_RUNNER=off)" in up.stderr
    # Off only means "do not start it": one started earlier is still stopped by `down`.
    down = lab(env, "down", "runner")
    assert down.returncode == 0, down.stderr
    assert not (lab_dir / "run" / "runner.pid").exists()
    assert not (lab_dir / "run" / "runner-state.json").exists()
    assert not (lab_dir / "logs" / "runner.log").exists()
