"""The pack's IAM policies as checks, for tests about one concern."""

from __future__ import annotations

from stacks.policy import check

check_replication_roles = check("replication-wiring")
check_least_privilege = check("least-privilege")
