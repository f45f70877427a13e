"""Resource names and tags shared by every component."""

from __future__ import annotations

import re
from collections.abc import Mapping

Tags = Mapping[str, str]

# Policies and runbooks find resources by these tags, never by name.
STACK_TAG = "drctl:stack"
ROLE_TAG = "drctl:role"
TIER_TAG = "drctl:tier"


def tags(base: Tags, role: str, tier: str | None = None) -> dict[str, str]:
    out = {**base, ROLE_TAG: role}
    if tier is not None:
        out[TIER_TAG] = tier
    return out


def compact(name: str, limit: int) -> str:
    """Lower-case alphanumerics only, for Azure names that reject dashes (storage accounts, galleries)."""
    return re.sub(r"[^a-z0-9]", "", name.lower())[:limit]
