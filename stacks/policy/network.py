"""The pack's network policies as checks, for tests about one concern."""

from __future__ import annotations

from stacks.policy import check

check_admin_ports = check("least-privilege")
check_drill_isolation = check("drill-isolation")
