"""``make failover``: a real failover of the lab's shop and its failback, end to end, with real drctl commands.

Run inside ``lab.py run`` with the project's venv Python, like ``lab_drill``:

1. ``python -m localstack.seed``: the estate (idempotent), production running and writing orders;
2. the disaster: production's instances in the primary region are stopped (their processes die with them);
3. ``drctl run runbooks/failover-aws-to-azure.yaml --disaster-at <then>``: the standby tiers come up in the
   recovery region with the database restored from the vault, DNS moves; the shop then answers from the
   standby web tier, and this script shows what it serves;
4. ``drctl run runbooks/failback.yaml``: production comes back with the orders the recovery site took, DNS
   moves back, the standby tiers stop; the shop answers from production again.

Exit code: 0 when both runs succeeded and the shop answered from the right side after each.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from localstack.lab_drill import drctl, stage
from localstack.seed.clients import SEED_TAG
from localstack.seed.config import load_lab_config
from localstack.seed.workload import WORKLOAD_TAG

REPO = Path(__file__).resolve().parent.parent
FAILOVER = "runbooks/failover-aws-to-azure.yaml"
FAILBACK = "runbooks/failback.yaml"
ANSWER_WAIT_S = 60.0


def tier_instances(ec2: Any, role: str, prefix: str) -> dict[str, dict[str, Any]]:
    """The estate's live instances of ``role`` (production or standby) by tier, from an EC2 client of their
    region; never a drill's copy."""
    filters = [  # the state first: LocalStack then skips ended instances before any (costly) tag filter
        {"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]},
        {"Name": "tag:drctl:role", "Values": [role]},
        {"Name": f"tag:{SEED_TAG}", "Values": [prefix]},
        {"Name": "tag-key", "Values": [WORKLOAD_TAG]},
    ]
    found: dict[str, dict[str, Any]] = {}
    for reservation in ec2.describe_instances(Filters=filters)["Reservations"]:
        for inst in reservation["Instances"]:
            tags = {t["Key"]: t["Value"] for t in inst.get("Tags", [])}
            if "drctl:drill-run" not in tags:
                found[tags.get("drctl:tier", "?")] = inst
    return found


def _shop_summary(address: str, port: int) -> dict[str, Any] | None:
    """What the shop at ``address`` serves, waiting a bounded time for it to answer."""
    deadline = time.monotonic() + ANSWER_WAIT_S
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://{address}:{port}/api/summary", timeout=3) as answer:
                document: dict[str, Any] = json.loads(answer.read())
                return document
        except (OSError, ValueError):
            time.sleep(0.5)
    return None


def _run_id(stdout: str) -> str | None:
    """The run id from ``drctl run --json``'s outcome; None when there is none (the run did not start)."""
    try:
        outcome = json.loads(stdout or "{}")
    except ValueError:
        return None
    run_id = outcome.get("run_id") if isinstance(outcome, dict) else None
    return str(run_id) if run_id else None


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _until(done: Callable[[], bool], timeout_s: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if done():
            return True
        time.sleep(0.1)
    return done()


def _say_shop(where: str, address: str, port: int) -> bool:
    summary = _shop_summary(address, port)
    if summary is None:
        print(f"make failover: the shop at {address}:{port} ({where}) did not answer", file=sys.stderr)
        return False
    orders = summary.get("orders", {})
    print(
        f"the shop answers from {where} ({address}:{port}, database {summary.get('db')}): "
        f"{orders.get('count')} orders, the newest committed at {orders.get('latest_committed_at')}"
    )
    return True


def main(argv: Sequence[str]) -> int:
    try:
        return failover_and_back(argv)
    except (BotoCoreError, ClientError) as err:
        print(
            f"make failover: the lab's EC2 did not answer ({' '.join(str(err).split())}); is the lab up?",
            file=sys.stderr,
        )
        return 6
    except KeyError as err:
        print(f"make failover: the estate has no {err} tier instance; run the seeder again", file=sys.stderr)
        return 1


def failover_and_back(argv: Sequence[str]) -> int:
    lab_dir = Path(os.environ.get("DRCTL_LAB_DIR", str(REPO / ".lab"))).resolve()
    env = dict(os.environ)
    env.setdefault("DRCTL_STATE_DIR", str(lab_dir / "state"))
    outputs = lab_dir / "stack-outputs.json"
    config = load_lab_config()
    aws = config.aws
    assert aws is not None  # load_lab_config refuses a config without AWS
    web_port = next(t.port for t in config.tiers if t.name == "web")

    stage("seed the lab estate (idempotent): production runs in the primary region")
    if subprocess.run(
        [sys.executable, "-m", "localstack.seed", "--out", str(outputs)], cwd=REPO, check=False
    ).returncode:
        print("make failover: seeding the lab failed (see above)", file=sys.stderr)
        return 1
    production = tier_instances(boto3.client("ec2", region_name=aws.region), "production", config.name_prefix)
    if "web" in production and not _say_shop("production", production["web"]["PrivateIpAddress"], web_port):
        return 1

    stage(f"the disaster: production's instances in {aws.region} stop")
    ec2: Any = boto3.client("ec2", region_name=aws.region)
    ec2.stop_instances(InstanceIds=[i["InstanceId"] for i in production.values()])
    # The disaster is the moment the database stopped answering (the runner stops its process within about a
    # second of the API call), not the API call: a dump taken in between would make the RPO look better.
    db = production["db"]["PrivateIpAddress"]
    if not _until(lambda: not _port_open(db, 5432)):
        print(f"make failover: production's database at {db} still answers after it was stopped", file=sys.stderr)
        return 1
    disaster = datetime.now(UTC).isoformat()
    print(f"production stopped at {disaster}: {', '.join(sorted(production))}")

    stage(f"fail over: drctl run {FAILOVER}")
    failover = drctl(
        [
            "run",
            FAILOVER,
            "--stack-outputs",
            str(outputs),
            "--approve",
            "switch-dns",
            "--disaster-at",
            disaster,
            "--json",
            *argv,
        ],
        env,
        capture=True,
    )
    run_id = _run_id(failover.stdout)
    if failover.returncode != 0 or not run_id:
        print(f"make failover: the failover failed (exit {failover.returncode}; see above)", file=sys.stderr)
        return failover.returncode or 1
    drctl(["report", run_id, "--format", "markdown"], env)
    standby = tier_instances(boto3.client("ec2", region_name=aws.recovery_region), "standby", config.name_prefix)
    if not _say_shop("the standby", standby["web"]["PrivateIpAddress"], web_port):
        return 1

    stage(f"fail back: drctl run {FAILBACK}")
    vault = f"az://{config.name_prefix}-vault/"
    back = drctl(
        [
            "run",
            FAILBACK,
            "--stack-outputs",
            str(outputs),
            "--approve",
            "switch-dns-back",
            "--json",
            "-p",
            f"recovered={vault}restores/{run_id}/",
            "-p",
            f"vault={vault}",
        ],
        env,
        capture=True,
    )
    back_id = _run_id(back.stdout)
    if back.returncode != 0 or not back_id:
        print(f"make failover: the failback failed (exit {back.returncode}; see above)", file=sys.stderr)
        return back.returncode or 1
    production = tier_instances(boto3.client("ec2", region_name=aws.region), "production", config.name_prefix)
    if not _say_shop("production, home again", production["web"]["PrivateIpAddress"], web_port):
        return 1
    print(f"\nmake failover: failover {run_id} and failback {back_id} succeeded; journal in {env['DRCTL_STATE_DIR']}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
