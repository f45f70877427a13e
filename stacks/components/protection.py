"""Resource options that keep backup data, and the keys that decrypt it, out of reach of `pulumi destroy`."""

from __future__ import annotations

import pulumi

from stacks.config import ProtectionConfig


def guarded(opts: pulumi.ResourceOptions, protection: ProtectionConfig) -> pulumi.ResourceOptions:
    """``opts`` plus ``protect`` and ``retain_on_delete`` as ``protection`` says.

    Applied to whatever holds or guards backups: losing one of them to a mistyped `pulumi destroy`, or to a
    change that forces a replacement, loses the data a disaster recovery exists to restore.
    """
    return pulumi.ResourceOptions.merge(
        opts,
        pulumi.ResourceOptions(protect=protection.protect, retain_on_delete=protection.retain_on_delete),
    )
