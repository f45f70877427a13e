"""The AWS permissions drctl declares (``orchestrator.permissions``) against the AWS calls its code makes.

The stack builds the orchestrator's IAM policy from the declaration, so a call the declaration misses is an
AccessDenied on the day of a failover. This test reads the code: every SDK operation of the services drctl
uses that ``orchestrator/`` names (``client.start_instances(...)``, ``client.start_instances`` handed on, or
``get_paginator("list_objects_v2")``) must be authorised by a declared grant, and every declared operation
must still be named somewhere (a stale grant is a permission nobody needs). The lab test
``tests/integration/test_identity_enforced.py`` checks the same at run time, under an IAM-enforcing emulator.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import botocore.session
from botocore import xform_name

from orchestrator.permissions import Scope, all_grants, declared_calls

ORCHESTRATOR = Path(__file__).resolve().parents[2] / "orchestrator"
SERVICES = {"s3": "s3", "ec2": "ec2", "route53": "route53", "sqs": "sqs"}
"""botocore's service name -> the IAM prefix of its actions: the AWS services drctl calls."""


@cache
def _operations() -> dict[str, str]:
    """``snake_name`` -> ``prefix:OperationName`` for every operation of ``SERVICES``."""
    session = botocore.session.get_session()
    found: dict[str, str] = {}
    for service, prefix in SERVICES.items():
        for name in session.get_service_model(service).operation_names:
            found.setdefault(xform_name(name), f"{prefix}:{name}")
    return found


def _named_in(source: str) -> set[str]:
    ops = _operations()
    attributes = set(re.findall(r"\.([a-z][a-z0-9_]*)\b", source))
    paginated = set(re.findall(r'get_paginator\("([a-z0-9_]+)"\)', source))
    return {ops[name] for name in attributes | paginated if name in ops}


def _called() -> dict[str, set[str]]:
    """Operation -> the modules naming it."""
    found: dict[str, set[str]] = {}
    for path in sorted(ORCHESTRATOR.rglob("*.py")):
        for op in _named_in(path.read_text(encoding="utf-8")):
            found.setdefault(op, set()).add(str(path.relative_to(ORCHESTRATOR.parent)))
    return found


def test_every_aws_call_in_the_code_is_declared() -> None:
    undeclared = {op: sorted(where) for op, where in _called().items() if op not in declared_calls()}
    assert undeclared == {}, "declare these in the calling module's IAM_GRANTS (orchestrator/permissions.py)"


def test_every_declared_call_is_still_made() -> None:
    called = set(_called())
    assert declared_calls() - called == set(), "drop the grants for calls the code no longer makes"


def test_the_scan_sees_calls_made_through_a_method_reference() -> None:
    # Start/Stop/Terminate go to EC2 as ``self._client.start_instances`` handed to a batching helper.
    assert {"ec2:StartInstances", "ec2:StopInstances", "ec2:TerminateInstances"} <= set(_called())
    assert _named_in('pages = client.get_paginator("list_object_versions")') == {"s3:ListObjectVersions"}


def test_every_grant_names_actions_of_its_services() -> None:
    prefixes = {*SERVICES.values(), "kms"}
    for grant in all_grants():
        assert grant.actions
        assert grant.calls
        assert all(a.split(":", 1)[0] in prefixes and ":" in a for a in grant.actions), grant
        assert isinstance(grant.scope, Scope)
