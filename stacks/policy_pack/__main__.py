"""The pack Pulumi runs: `pulumi preview --policy-pack stacks/policy_pack`. Serves the policies until killed."""

from policies import PACK_NAME, POLICIES  # type: ignore[import-not-found]  # Pulumi puts this directory on sys.path
from pulumi_policy import EnforcementLevel, PolicyPack

PolicyPack(name=PACK_NAME, policies=list(POLICIES), enforcement_level=EnforcementLevel.MANDATORY)
