"""How the lab's instance runner finds opted-in instances (``Runner.opted_in``), with a stand-in EC2 client: the
lab tests (``tests/integration/test_lab_runner.py``) run the real thing against LocalStack, but cannot make EC2
forget an instance whose tags it still lists, nor fail one call on demand."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from localstack.runner import WORKLOAD_TAG, Runner


def client_error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code}}, "DescribeInstances")


class Pages:
    def __init__(self, answer: Any) -> None:
        self.answer = answer

    def paginate(self, **kwargs: Any) -> Iterator[Mapping[str, Any]]:
        yield self.answer(**kwargs)


class Ec2:
    """Tags of every instance ever tagged; ``known`` the instances DescribeInstances still answers for."""

    def __init__(self, tagged: list[str], known: Mapping[str, str], failing: str | None = None) -> None:
        self.tagged, self.known, self.failing = tagged, dict(known), failing
        self.described: list[list[str]] = []

    def get_paginator(self, name: str) -> Pages:
        return Pages(self._tags if name == "describe_tags" else self._instances)

    def _tags(self, Filters: Any) -> Mapping[str, Any]:
        assert {"Name": "key", "Values": [WORKLOAD_TAG]} in Filters
        return {"Tags": [{"ResourceId": i, "Key": WORKLOAD_TAG, "Value": "x"} for i in self.tagged]}

    def _instances(self, InstanceIds: list[str]) -> Mapping[str, Any]:
        self.described.append(list(InstanceIds))
        if self.failing is not None:
            raise client_error(self.failing)
        unknown = [i for i in InstanceIds if i not in self.known]
        if unknown:
            raise client_error("InvalidInstanceID.NotFound")
        found = [{"InstanceId": i, "State": {"Name": self.known[i]}} for i in InstanceIds]
        return {"Reservations": [{"Instances": found}]}


def runner(ec2: Ec2, tmp_path: Path) -> Runner:
    made = Runner(tmp_path, ("us-west-2",), 0.0, {})
    made.clients["us-west-2"] = ec2
    return made


def test_an_id_ec2_no_longer_knows_is_left_out_and_the_others_are_still_found(tmp_path: Path) -> None:
    ec2 = Ec2(["i-a", "i-gone", "i-b"], {"i-a": "running", "i-b": "stopped"})
    found = runner(ec2, tmp_path).opted_in("us-west-2")
    assert {i: v["State"]["Name"] for i, v in found.items()} == {"i-a": "running", "i-b": "stopped"}


def test_any_other_error_fails_the_poll_rather_than_report_instances_as_gone(tmp_path: Path) -> None:
    ec2 = Ec2(["i-a"], {"i-a": "running"}, failing="RequestLimitExceeded")
    with pytest.raises(ClientError, match="RequestLimitExceeded"):
        runner(ec2, tmp_path).opted_in("us-west-2")


def test_an_instance_seen_terminated_is_not_described_again(tmp_path: Path) -> None:
    ec2 = Ec2(["i-a", "i-done"], {"i-a": "running", "i-done": "terminated"})
    lab = runner(ec2, tmp_path)
    lab.poll()
    ec2.described.clear()
    lab.poll()
    assert ec2.described == [["i-a"]]
