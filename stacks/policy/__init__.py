"""Policy checks as pure functions over the resources a stack registers.

Tests feed them the resources recorded by Pulumi's mocks; every check returns one message per violation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from stacks.policy.iam import check_replication_roles
from stacks.policy.model import Check, RecordedResource
from stacks.policy.network import check_admin_ports, check_drill_isolation
from stacks.policy.storage import check_encryption, check_public_access, check_versioning

CHECKS: Mapping[str, Check] = {
    "versioning": check_versioning,
    "encryption": check_encryption,
    "public_access": check_public_access,
    "admin_ports": check_admin_ports,
    "replication_role": check_replication_roles,
    "drill_isolation": check_drill_isolation,
}


def violations(resources: Sequence[RecordedResource]) -> dict[str, list[str]]:
    """Every check's violations, keyed by check name; only failing checks appear."""
    found = {name: check(resources) for name, check in CHECKS.items()}
    return {name: problems for name, problems in found.items() if problems}


__all__ = ["CHECKS", "Check", "RecordedResource", "violations"]
