"""The policy pack's rules (``stacks/policy_pack``) as checks over the resources a stack registers.

Tests feed them the resources recorded by Pulumi's mocks. Each check runs one of the pack's policies, exactly as
`pulumi preview --policy-pack stacks/policy_pack` runs it, and returns one message per violation.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

from stacks.policy.adapter import run_policy
from stacks.policy.model import Check, RecordedResource
from stacks.policy_pack.policies import POLICIES


def check(name: str) -> Check:
    """The pack's policy ``name`` as a check over recorded resources."""
    (policy,) = (p for p in POLICIES if p.name == name)
    return functools.partial(run_policy, policy)


CHECKS: Mapping[str, Check] = {policy.name: check(policy.name) for policy in POLICIES}


def violations(
    resources: Sequence[RecordedResource], pack_config: Mapping[str, Any] | None = None
) -> dict[str, list[str]]:
    """Every policy's violations, keyed by policy name; only failing policies appear.

    ``pack_config`` is what `--policy-pack-config` reads: per policy name, an enforcement level, or an object
    with ``enforcementLevel`` and the policy's config properties. A disabled policy does not run.
    """
    found: dict[str, list[str]] = {}
    for policy in POLICIES:
        entry = (pack_config or {}).get(policy.name)
        settings = dict(entry) if isinstance(entry, Mapping) else {"enforcementLevel": entry}
        if settings.pop("enforcementLevel", None) == "disabled":
            continue
        problems = run_policy(policy, resources, settings)
        if problems:
            found[policy.name] = problems
    return found


__all__ = ["CHECKS", "Check", "RecordedResource", "check", "violations"]
