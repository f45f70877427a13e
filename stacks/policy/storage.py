"""The pack's storage policies as checks, for tests about one concern."""

from __future__ import annotations

from stacks.policy import check

check_versioning = check("backup-versioning")
check_encryption = check("backup-encryption")
check_public_access = check("no-public-access")
check_protection = check("backup-protection")
