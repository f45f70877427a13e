"""The AWS permissions drctl needs, as the code that calls AWS declares them.

Each provider module declares, next to its calls, an ``IAM_GRANTS`` tuple: which IAM actions it needs, on
what kind of resource (a ``Scope``), and which SDK operations those actions authorise. This module gathers
them, so the orchestrator's identity (``stacks/components/orchestrator_identity.py``) is built from what the
code calls rather than from a list kept by hand. Two tests hold the declaration to the code: a static one
(every AWS operation named in ``orchestrator/`` is declared, and every declared one is still named), and a
lab one that runs a drill and a failover under exactly the generated policy on an IAM-enforcing emulator.

Only AWS: Azure's access is built-in roles assigned at a resource group or account, not per-call actions.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Scope(StrEnum):
    """What a grant's actions may touch; the stack turns each scope into resource ARNs (and conditions)."""

    BACKUP_BUCKET = "BackupBuckets"
    """The backup buckets themselves (listing, notifications)."""
    BACKUP_OBJECT = "BackupObjects"
    """Objects in the backup buckets (``<bucket>/*``)."""
    BACKUP_KEY = "BackupKeys"
    """The buckets' KMS keys, which S3 uses on drctl's behalf for SSE-KMS reads and writes."""
    HOSTED_ZONE = "FailoverRecords"
    """The failover hosted zones' records."""
    DNS_CHANGE = "FailoverChanges"
    """Route53 change ids, minted per request, so they cannot be named in advance."""
    DNS_LOOKUP = "FindZones"
    """Finding a zone by name: Route53's list actions take no resource."""
    STACK_INSTANCE = "StandbyLifecycle"
    """Instances tagged with this stack (the standbys and their drill copies), by an ``aws:ResourceTag``
    condition."""
    LAUNCH = "LaunchRecovery"
    """What RunInstances touches: the new instance and its disks and interfaces, the subnet, the security
    groups, the image and the launch template."""
    TAG_ON_CREATE = "TagOnCreate"
    """Tags given in the call that creates the resource (``TagSpecifications``), and only then."""
    DRILL_IMAGE_TAGS = "TagDrillImages"
    """Tags added to an image after its copy, limited to the drill's own tag keys."""
    DRILL_IMAGE = "RemoveDrillImages"
    """Images carrying a drill's run tag, which a drill's cleanup deregisters."""
    IMAGE_COPY = "CopyImages"
    """Copying recovery images into the recovery region."""
    EC2_READ = "Describe"
    """EC2's Describe calls, which support no resource-level permissions."""
    EVENT_QUEUE = "ChangeQueues"
    """``drctl protect``'s SQS queues, named ``drctl-*``."""


@dataclass(frozen=True)
class Grant:
    scope: Scope
    actions: tuple[str, ...]
    """IAM actions, ``service:Action``."""
    calls: tuple[str, ...]
    """The SDK operations (``service:OperationName``, botocore's names) these actions authorise."""
    ec2_only: bool = False
    """Needed only where the orchestrator drives EC2 (the recovery site is on AWS)."""


DRILL_TAG_PREFIX = "drctl:drill-"
"""Every tag a drill adds to what it makes starts with this (see ``orchestrator.drill.scope``)."""
EVENT_QUEUE_PREFIX = "drctl-"
"""``drctl protect --sqs-queue`` names must start with this for the generated policy to cover them."""


def all_grants() -> tuple[Grant, ...]:
    """Every grant drctl's AWS code declares. Imported late: the providers pull in boto3."""
    from orchestrator.engine import s3_lease
    from orchestrator.protect import changes
    from orchestrator.providers import aws_ec2, route53, s3

    return (*s3.IAM_GRANTS, *s3_lease.IAM_GRANTS, *changes.IAM_GRANTS, *route53.IAM_GRANTS, *aws_ec2.IAM_GRANTS)


def actions_by_scope(*, ec2: bool) -> dict[Scope, tuple[str, ...]]:
    """The actions of every grant, by scope, in declaration order without repeats; EC2's only if ``ec2``."""
    found: dict[Scope, list[str]] = {}
    for grant in all_grants():
        if grant.ec2_only and not ec2:
            continue
        actions = found.setdefault(grant.scope, [])
        actions += [a for a in grant.actions if a not in actions]
    return {scope: tuple(actions) for scope, actions in found.items()}


def declared_calls() -> frozenset[str]:
    """Every SDK operation some grant authorises."""
    return frozenset(call for grant in all_grants() for call in grant.calls)
