"""Calls over many instances go to EC2 in batches of at most 1,000 ids (TerminateInstances' documented limit):
a cleanup of 1,500 copies is two describes and two terminations, not 1,500 of each, and not one request EC2
would refuse. Checked against botocore's Stubber, which validates each request against EC2's API model: a
LocalStack estate of 1,500 instances would take this lab minutes to build."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.stub import Stubber

from orchestrator.providers.aws_ec2 import MAX_IDS_PER_CALL, Ec2Compute, batches
from orchestrator.retry import RetryPolicy

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client

IDS = [f"i-{n:017x}" for n in range(1, 1501)]


@pytest.fixture
def stubbed() -> Iterator[tuple[Ec2Compute, Stubber]]:
    client: EC2Client = boto3.client(
        "ec2", region_name="eu-west-1", aws_access_key_id="k", aws_secret_access_key="s", endpoint_url="http://x"
    )
    with Stubber(client) as stub:
        yield Ec2Compute(client, "eu-west-1", retry=RetryPolicy(attempts=1)), stub
        stub.assert_no_pending_responses()


def described(ids: list[str], state: str) -> dict[str, Any]:
    instances = [{"InstanceId": i, "State": {"Name": state, "Code": 16}} for i in ids]
    return {"Reservations": [{"Instances": instances}]}


def test_batches_split_at_the_limit() -> None:
    assert [len(b) for b in batches(IDS)] == [1000, 500]
    assert [i for b in batches(IDS) for i in b] == IDS
    assert batches([]) == []
    assert MAX_IDS_PER_CALL == 1000


def test_terminating_1500_instances_is_two_describes_and_two_terminations(stubbed: tuple[Ec2Compute, Stubber]) -> None:
    compute, stub = stubbed
    first, rest = IDS[:1000], IDS[1000:]
    stub.add_response("describe_instances", described(first, "running"), {"InstanceIds": first})
    stub.add_response("describe_instances", described(rest, "running"), {"InstanceIds": rest})
    stub.add_response("terminate_instances", {"TerminatingInstances": []}, {"InstanceIds": first})
    stub.add_response("terminate_instances", {"TerminatingInstances": []}, {"InstanceIds": rest})
    compute.terminate(IDS)


def test_starting_a_selection_skips_what_is_running_and_batches_the_rest(stubbed: tuple[Ec2Compute, Stubber]) -> None:
    compute, stub = stubbed
    first, rest = IDS[:1000], IDS[1000:]
    stub.add_response("describe_instances", described(first, "stopped"), {"InstanceIds": first})
    stub.add_response("describe_instances", described(rest, "running"), {"InstanceIds": rest})
    stub.add_response("start_instances", {"StartingInstances": []}, {"InstanceIds": first})
    compute.start(IDS)
