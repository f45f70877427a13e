"""The user data that makes a lab instance run its tier of the demo shop (``localstack.workload``).

Instances carrying :data:`WORKLOAD_TAG` opt in to the lab's instance runner, which runs this user data as a
local process listening on the instance's private (loopback) address.
"""

from __future__ import annotations

import base64
from typing import Literal

from stacks.config import StackConfig

WORKLOAD_TAG = "drctl-lab:workload"
DUMP_KEY = "db/shop.dump"
DUMP_EVERY_S = 10
WRITER_RATE = 4
"""Orders a second the production writer commits."""

Role = Literal["production", "standby"]


def command(config: StackConfig, tier: str, role: Role, dump_bucket: str) -> str:
    """The ``localstack.workload`` arguments of one tier; production's db dumps, production's app writes."""
    ports = {t.name: t.port for t in config.tiers}
    if tier == "db":
        extra = f" --primary --dump-to s3://{dump_bucket}/{DUMP_KEY} --dump-every {DUMP_EVERY_S}"
        return "db" + (extra if role == "production" else "")
    if tier == "app":
        return f"app --port {ports['app']}" + (f" --writer-rate {WRITER_RATE}" if role == "production" else "")
    return f"web --port {ports['web']} --app-port {ports['app']}"


def user_data(config: StackConfig, tier: str, role: Role, dump_bucket: str) -> str:
    """A shell script, as cloud-init would run it (boto3's RunInstances base64-encodes it itself)."""
    return (
        "#!/bin/sh\n"
        f"# drctl lab: the {tier} tier of the demo shop ({role}); the lab's instance runner executes this.\n"
        f'exec "$DRCTL_LAB_PYTHON" -m localstack.workload {command(config, tier, role, dump_bucket)}\n'
    )


def template_user_data(config: StackConfig, tier: str, role: Role, dump_bucket: str) -> str:
    """The same script base64-encoded, as a launch template's ``UserData`` must be (boto3 leaves it as given)."""
    return base64.b64encode(user_data(config, tier, role, dump_bucket).encode()).decode()
