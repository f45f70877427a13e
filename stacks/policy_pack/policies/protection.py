"""Protection of backups: Pulumi refuses to delete (or replace) a protected resource.

``retain_on_delete`` (keep the cloud resource when Pulumi forgets it) is the other half of keeping backups through
a `pulumi destroy`, but CrossGuard cannot see it: the analyzer's resource options carry ``protect`` and not
``retainOnDelete``. The stack tests read it from the mocks instead (``RecordedResource.retain_on_delete``).
"""

from __future__ import annotations

from pulumi_policy import ReportViolation, ResourceValidationArgs, ResourceValidationPolicy

from ._shared import KMS_KEY, S3_BUCKETS, STORAGE_ACCOUNT, normalise

# Every bucket and storage account of the DR estate holds backups, and a deleted KMS key makes its bucket's
# objects unreadable, so all of them are protected, whatever their tags.
PROTECTED = {**dict.fromkeys(S3_BUCKETS, "S3 bucket"), KMS_KEY: "KMS key", STORAGE_ACCOUNT: "storage account"}


def check_protection(args: ResourceValidationArgs, report: ReportViolation) -> None:
    # Only the option is read, not the stack config that sets it, so the check holds however that is named.
    kind = PROTECTED.get(normalise(args.resource_type))
    if kind is not None and not args.opts.protect:
        report(f"{kind} {args.name} is not protected: a destroy or a replacement would delete it", args.urn)


PROTECTION = ResourceValidationPolicy(
    name="backup-protection",
    description="Backup buckets, their KMS keys and vault storage accounts are protected from deletion by Pulumi.",
    validate=check_protection,
)
