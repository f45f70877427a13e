"""drctl's DR policies, for CrossGuard (``__main__.py``) and for the stack tests (``stacks.policy``) alike.

This module only defines the policies: building a ``PolicyPack`` starts its gRPC server and never returns.
"""

from __future__ import annotations

from pulumi_policy import Policy

from .drill import DRILL_ISOLATION
from .least_privilege import LEAST_PRIVILEGE
from .protection import PROTECTION
from .replication import REPLICATION
from .storage import ENCRYPTION, PUBLIC_ACCESS, VERSIONING

PACK_NAME = "drctl-dr"
POLICIES: tuple[Policy, ...] = (
    VERSIONING,
    ENCRYPTION,
    PUBLIC_ACCESS,
    REPLICATION,
    LEAST_PRIVILEGE,
    DRILL_ISOLATION,
    PROTECTION,
)

__all__ = ["PACK_NAME", "POLICIES"]
