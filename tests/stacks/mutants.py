"""A scripted mutation check of the Pulumi stacks: do the stack tests notice a hurried, breaking edit?

Issue #16: a review made six breaking changes to ``stacks/`` at once and every stack test still passed, because
the tests asserted that resources exist, not how they are wired. Each :class:`Mutant` below is one such edit,
written as an exact text replacement in one file. The project (git's tracked and untracked-but-not-ignored files)
is read once; for each mutant it is written to a temporary directory (never edited in place: other sessions edit
this tree concurrently), the replacement is applied there, and the stack tests run in that copy. A failing run
kills the mutant; a passing one means the tests missed a broken estate. An unmutated copy runs too (the
baseline): if it fails, every "kill" is meaningless.

    .venv/bin/python -m tests.stacks.mutants            # every mutant, 2 at a time
    .venv/bin/python -m tests.stacks.mutants --list     # names only
    .venv/bin/python -m tests.stacks.mutants NAME ...   # just these
    .venv/bin/python -m tests.stacks.mutants --rev HEAD --with tests/stacks/test_new.py   # a commit + a file

Exit status: 0 when every ``must_kill`` mutant is killed, 1 when one survives, 2 when the check itself cannot be
trusted (a mutant's old text is not in its file exactly once, or the unmutated copy fails its own tests).
``tests/stacks/test_mutants_apply.py`` checks the old texts on every test run, so a refactor that invalidates a
mutant fails quickly instead of the mutant silently testing nothing.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# The machine has two cores; each run is one pytest process.
MAX_JOBS = 2
RUN_TIMEOUT = 300.0
# test_mutants_apply checks the unmutated source, so it would "kill" every mutant by itself.
PYTEST_ARGS = (
    "-m",
    "pytest",
    "-q",
    "-x",
    "-p",
    "no:cacheprovider",
    "--ignore=tests/stacks/test_mutants_apply.py",
    "tests/stacks",
)


@dataclass(frozen=True)
class Mutant:
    """Replace ``old`` (which must occur exactly once in ``file``) with ``new``."""

    name: str
    file: str
    old: str
    new: str
    # What the edit breaks in the deployed estate.
    breaks: str
    # The tests must kill it: a realistic edit that breaks DR (issue #16's kind of finding).
    must_kill: bool = True


STORAGE = "stacks/components/storage_aws.py"
VAULT = "stacks/components/storage_azure.py"
DNS = "stacks/components/failover_dns.py"
NETWORK = "stacks/components/failover_network.py"
AWS_NET = "stacks/components/network_aws.py"
AZURE_NET = "stacks/components/network_azure.py"
COMPUTE = "stacks/components/standby_compute.py"
IMAGES = "stacks/components/vm_images.py"
IDENTITY = "stacks/components/orchestrator_identity.py"
PROGRAM = "stacks/program.py"

MUTANTS: tuple[Mutant, ...] = (
    # --- S3 buckets and replication ----------------------------------------------------------------------------
    Mutant(
        "replication-to-source-bucket",
        STORAGE,
        "rules=[_replication_rule(replica)]",
        "rules=[_replication_rule(source)]",
        "the replication rule's destination is the source bucket (and key): nothing reaches the recovery region",
    ),
    Mutant(
        "replication-role-without-replicate-object",
        STORAGE,
        '["s3:ReplicateObject", "s3:ReplicateDelete", "s3:ReplicateTags"]',
        '["s3:ReplicateDelete", "s3:ReplicateTags"]',
        "the replication role cannot write objects into the replica: every replication fails",
    ),
    Mutant(
        "replication-role-without-kms-decrypt",
        STORAGE,
        '"Action": ["kms:Decrypt"]',
        '"Action": ["kms:DescribeKey"]',
        "the replication role cannot read SSE-KMS objects: none of them replicate",
    ),
    Mutant(
        "replication-skips-replica-versioning-dependency",
        STORAGE,
        "depends_on=[source.versioning, replica.versioning]",
        "depends_on=[source.versioning]",
        "the replication config may be created before the replica is versioned: S3 rejects it on first deploy",
    ),
    Mutant(
        "versioning-suspended",
        STORAGE,
        'VersioningConfigurationArgs(status="Enabled")',
        'VersioningConfigurationArgs(status="Suspended")',
        "unversioned buckets: no replication, overwritten backups are lost",
    ),
    Mutant(
        "sse-s3-instead-of-kms",
        STORAGE,
        "sse_algorithm=settings.aws_encryption,",
        'sse_algorithm="AES256",',
        "the backup buckets ignore their KMS keys (SSE-S3) although the stack is configured for aws:kms",
    ),
    Mutant(
        "replica-encrypted-with-source-key",
        STORAGE,
        "replica.key.arn if replica.key else None,",
        "source.key.arn if source.key else None,",
        "the replication role may encrypt only with the source region's key, not the replica's: replication fails",
    ),
    Mutant(
        "kms-rotation-off",
        STORAGE,
        "enable_key_rotation=True,",
        "enable_key_rotation=False,",
        "backup keys are never rotated",
    ),
    Mutant(
        "public-access-block-flag-off",
        STORAGE,
        "restrict_public_buckets=True,",
        "restrict_public_buckets=False,",
        "a public bucket policy would expose the backups",
    ),
    Mutant(
        "replica-bucket-in-primary-region",
        STORAGE,
        'f"{name}-replica", parent, settings, base, recovery',
        'f"{name}-replica", parent, settings, base, primary',
        "the 'replica' (and its key) live in the primary region: a regional outage takes both copies",
    ),
    Mutant(
        "replication-ignores-kms-objects",
        STORAGE,
        "encrypted = replica.key is not None",
        "encrypted = False",
        "no SSE-KMS source selection: S3 silently skips every KMS-encrypted backup",
    ),
    # --- Azure vault ------------------------------------------------------------------------------------------
    Mutant(
        "vault-locally-redundant",
        VAULT,
        "sku=azure_native.storage.SkuArgs(name=settings.azure_sku),",
        'sku=azure_native.storage.SkuArgs(name="Standard_LRS"),',
        "the vault has no copy outside its region",
    ),
    Mutant(
        "vault-container-before-blob-service",
        VAULT,
        "depends_on=[service]",
        "depends_on=[]",
        "the container may exist before versioning and soft delete are on; the first blobs are unprotected",
    ),
    # --- DNS ----------------------------------------------------------------------------------------------------
    Mutant(
        "failover-records-swapped",
        DNS,
        '("PRIMARY", dns.primary_endpoint, check.id),\n        ("SECONDARY", dns.recovery_endpoint, None),',
        '("PRIMARY", dns.recovery_endpoint, check.id),\n        ("SECONDARY", dns.primary_endpoint, None),',
        "users are sent to the recovery site while production is healthy",
    ),
    Mutant(
        "health-check-on-secondary-record",
        DNS,
        '("PRIMARY", dns.primary_endpoint, check.id),\n        ("SECONDARY", dns.recovery_endpoint, None),',
        '("PRIMARY", dns.primary_endpoint, None),\n        ("SECONDARY", dns.recovery_endpoint, check.id),',
        "the PRIMARY record has no health check, so Route 53 never fails over",
    ),
    Mutant(
        "traffic-manager-priorities-swapped",
        DNS,
        '("primary", dns.primary_endpoint, 1),\n                ("recovery", dns.recovery_endpoint, 2),',
        '("primary", dns.primary_endpoint, 2),\n                ("recovery", dns.recovery_endpoint, 1),',
        "Traffic Manager prefers the recovery site",
    ),
    Mutant(
        "drill-zone-on-recovery-vpc",
        NETWORK,
        "cloud.recovery_region, self.drill.network_id",
        "cloud.recovery_region, self.recovery.network_id",
        "the drill zone is private to the recovery VPC: drills cannot resolve it, recovery hosts can",
    ),
    Mutant(
        "azure-drill-zone-linked-to-recovery",
        NETWORK,
        "azure_drill(name, self, target, self.drill.network_id",
        "azure_drill(name, self, target, self.recovery.network_id",
        "the drill zone is linked to the recovery VNet instead of the drill VNet",
    ),
    # --- AWS network -------------------------------------------------------------------------------------------
    Mutant(
        "private-subnets-on-public-route-table",
        AWS_NET,
        "private_cidrs, private_rt,",
        "private_cidrs, public_rt,",
        "standby hosts' subnets route to the internet gateway",
    ),
    Mutant(
        "drill-routed-out",
        AWS_NET,
        'table = aws.ec2.RouteTable(f"{name}-drill", vpc_id=vpc.id,',
        'table = aws.ec2.RouteTable(f"{name}-drill", vpc_id=vpc.id, '
        'routes=[aws.ec2.RouteTableRouteArgs(cidr_block=ANYWHERE, nat_gateway_id="nat-shared")],',
        "drill copies can reach the internet (and production) through a shared NAT",
    ),
    Mutant(
        "drill-subnets-carved-from-recovery-cidr",
        AWS_NET,
        "_, private_cidrs = carve(net.drill_cidr, net.az_count)",
        "_, private_cidrs = carve(net.recovery_cidr, net.az_count)",
        "drill subnets overlap the recovery network (and lie outside their VPC): drill copies collide",
    ),
    Mutant(
        "tier-ingress-from-anywhere",
        AWS_NET,
        "referenced_security_group_id=groups[t.ingress_from].id,",
        "cidr_ipv4=ANYWHERE,",
        "the db (and app) port is open to 0.0.0.0/0 instead of the upstream tier",
    ),
    Mutant(
        "tier-ingress-port-range",
        AWS_NET,
        "to_port=t.port,\n                referenced_security_group_id",
        "to_port=65535,\n                referenced_security_group_id",
        "the upstream tier may reach every port above the tier's own",
    ),
    # --- Azure network ----------------------------------------------------------------------------------------
    Mutant(
        "azure-drill-subnet-outbound",
        AZURE_NET,
        "private_cidrs[0], outbound=False)",
        "private_cidrs[0], outbound=True)",
        "drill VMs get default outbound internet access",
    ),
    Mutant(
        "azure-internal-tiers-from-internet",
        AZURE_NET,
        'source_address_prefix=internet if t.ingress_from == "internet" else internal,',
        "source_address_prefix=internet,",
        "db and app NSGs accept their port from the Internet",
    ),
    # --- standby compute --------------------------------------------------------------------------------------
    Mutant(
        "standby-running",
        COMPUTE,
        'state="stopped"',
        'state="running"',
        "standby instances run (and bill) all the time",
    ),
    Mutant(
        "tier-order-alphabetical",
        COMPUTE,
        "self.tier_order = [t.name for t in args.tiers]",
        "self.tier_order = sorted(t.name for t in args.tiers)",
        "runbooks start app before db",
    ),
    Mutant(
        "standby-instances-without-stack-tag",
        COMPUTE,
        'tags=tags(args.tags, "standby", tier.name),\n                opts=opts,',
        'tags={"drctl:role": "standby", "drctl:tier": tier.name},\n                opts=opts,',
        "standby instances lack drctl:stack, so the orchestrator's tag-conditioned IAM cannot start them",
    ),
    # --- images -------------------------------------------------------------------------------------------------
    Mutant(
        "ami-copy-unencrypted",
        IMAGES,
        "encrypted=True,",
        "encrypted=False,",
        "recovery boots from unencrypted copies of the images",
    ),
    # --- identity ------------------------------------------------------------------------------------------------
    Mutant(
        "lifecycle-without-stack-condition",
        IDENTITY,
        '{"StringEquals": {f"aws:ResourceTag/{STACK_TAG}": stack}}',
        "None",
        "the orchestrator may stop or terminate any instance in the region, production included",
    ),
    # --- program wiring ---------------------------------------------------------------------------------------
    Mutant(
        "amis-copied-into-primary-region",
        PROGRAM,
        "AwsImagesArgs(aws.providers.recovery,",
        "AwsImagesArgs(aws.providers.primary,",
        "recovery images land in the primary region; the recovery region has nothing to boot",
    ),
    Mutant(
        "gallery-in-primary-location",
        PROGRAM,
        "target = azure.recovery\n",
        "target = azure.primary\n",
        "the image gallery lives in (and replicates to) the primary location, not the recovery one",
    ),
    Mutant(
        "standby-in-drill-subnets",
        PROGRAM,
        "subnet_ids=network.recovery.private_subnet_ids,",
        "subnet_ids=network.drill.private_subnet_ids,",
        "standby instances sit in the isolated drill network: a failover starts hosts nobody can reach",
    ),
    Mutant(
        "standby-with-drill-security-groups",
        PROGRAM,
        "security_group_ids=network.recovery.security_group_ids,",
        "security_group_ids=network.drill.security_group_ids,",
        "standby hosts get the drill VPC's groups (wrong VPC, drill-only ingress)",
    ),
    Mutant(
        "azure-standby-in-primary-location",
        PROGRAM,
        "azure.recovery, config.compute.azure_mode",
        "azure.primary, config.compute.azure_mode",
        "Azure standby VMs are created in the primary location",
    ),
    Mutant(
        "stack-tag-is-name-prefix",
        PROGRAM,
        "tags: Tags = {STACK_TAG: config.stack,",
        "tags: Tags = {STACK_TAG: config.name_prefix,",
        "resources are tagged drctl:stack=<prefix> while IAM conditions expect <stack>: runbooks are denied",
    ),
    Mutant(
        "identity-ec2-in-primary-region",
        PROGRAM,
        "recovery_region=aws.config.recovery_region,",
        "recovery_region=aws.config.region,",
        "the orchestrator may manage EC2 only in the primary region, not where the standbys are",
    ),
    Mutant(
        "identity-without-replica-bucket",
        PROGRAM,
        "bucket_arns=[storage.bucket_arn, storage.replica_bucket_arn],",
        "bucket_arns=[storage.bucket_arn],",
        "the orchestrator cannot read the replica, the only copy left after losing the primary region",
    ),
    Mutant(
        "output-drill-subnets-are-recovery",
        PROGRAM,
        '"drill_subnet_ids": network.drill.private_subnet_ids,',
        '"drill_subnet_ids": network.recovery.private_subnet_ids,',
        "drills launch their copies into the recovery network, next to the standbys",
    ),
    # The outside review's own findings (issue #16), each as the edit that would bring it back.
    Mutant(
        "backups-unprotected",
        "stacks/components/protection.py",
        "pulumi.ResourceOptions(protect=protection.protect, retain_on_delete=protection.retain_on_delete)",
        "pulumi.ResourceOptions()",
        "a `pulumi destroy` deletes the backup buckets and schedules their keys for deletion",
    ),
    Mutant(
        "create-tags-without-condition",
        IDENTITY,
        '{"StringEquals": {"ec2:CreateAction": ["RunInstances", "CopyImage"]}},',
        "None,",
        "the role may tag any instance drctl:stack=<stack> and so stop or terminate it",
    ),
    Mutant(
        "vnet-subnets-in-parallel",
        AZURE_NET,
        "depends_on=[after] if after is not None else None",
        "depends_on=None",
        "two subnets of one VNet are created at once, which Azure refuses (pulumi-azure-native#699)",
    ),
    Mutant(
        "root-device-hard-coded",
        COMPUTE,
        "device_name=args.root_device_names[tier.name],",
        'device_name="/dev/xvda",',
        "launch templates map /dev/xvda whatever the AMI's root device is",
    ),
    Mutant(
        "ami-source-region-defaults-to-recovery",
        PROGRAM,
        "images.aws_source_region or aws.config.region",
        "images.aws_source_region or aws.config.recovery_region",
        "without images.aws_source_region the copies are looked up in the recovery region",
        # Every checked-in stack sets aws_source_region, so this only matters for a new stack; the copy then
        # fails loudly at `pulumi up` (AMI not found) rather than producing a subtly broken estate.
        must_kill=False,
    ),
)


@dataclass(frozen=True)
class Outcome:
    name: str
    killed: bool
    detail: str
    seconds: float


class RottedMutant(RuntimeError):
    """A mutant's old text is no longer in its file exactly once: the source changed under it."""


# Relative path -> content. Taken once per run, so every mutant (and the baseline) sees the same tree even while
# other sessions edit the working tree.
Snapshot = dict[str, bytes]


def occurrences(mutant: Mutant, root: Path = ROOT) -> int:
    return (root / mutant.file).read_text(encoding="utf-8").count(mutant.old)


def mutate(mutant: Mutant, text: str) -> str:
    """``text`` with ``mutant`` applied; refuses (never guesses) when the old text is ambiguous or gone."""
    count = text.count(mutant.old)
    if count != 1:
        raise RottedMutant(f"{mutant.name}: old text occurs {count} times in {mutant.file}, expected once")
    return text.replace(mutant.old, mutant.new)


def _git(*args: str) -> bytes:
    return subprocess.run(["git", *args], cwd=ROOT, check=True, capture_output=True).stdout


def _names(listing: bytes) -> list[str]:
    return [n for n in listing.decode().split("\0") if n]


def snapshot(rev: str | None = None, overlay: Sequence[str] = ()) -> Snapshot:
    """The project as it is now: tracked and untracked-but-not-ignored files, uncommitted edits included.

    With ``rev``, the files of that commit instead, plus the working tree's ``overlay`` files (say, a new test
    file): a stable tree to score while other sessions are half-way through an edit of the working tree.
    """
    files: Snapshot = {}
    if rev is None:
        names = _names(_git("ls-files", "--cached", "--others", "--exclude-standard", "-z"))
    else:
        with tarfile.open(fileobj=io.BytesIO(_git("archive", "--format=tar", rev))) as archive:
            for member in archive.getmembers():
                extracted = archive.extractfile(member) if member.isfile() else None
                if extracted is not None:
                    files[member.name] = extracted.read()
        names = list(overlay)
    for name in names:
        path = ROOT / name
        if path.is_file():  # a tracked file deleted in the working tree is simply absent
            files[name] = path.read_bytes()
    return files


def write_tree(files: Snapshot, dest: Path) -> None:
    for name, content in files.items():
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)


def _env(copy: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DRCTL_REQUIRE_LAB", "PYTEST_ADDOPTS")}
    # The copy must shadow the editable install of /work/main, and leave no bytecode behind.
    env["PYTHONPATH"] = str(copy)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _first_failure(output: str) -> str:
    match = re.search(r"^(?:FAILED|ERROR) (\S+)", output, re.MULTILINE)
    if match:
        return match.group(1).removeprefix("tests/stacks/")
    lines = [line for line in output.strip().splitlines() if line.strip()]
    return lines[-1][:80] if lines else "no output"


def _check_imports_come_from(copy: Path) -> None:
    """Prove the copy's tests import the copy: the venv's editable install points at /work/main."""
    where = subprocess.run(
        [sys.executable, "-c", "import stacks, orchestrator, tests; print(stacks.__file__, orchestrator.__file__)"],
        cwd=copy,
        env=_env(copy),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    if not all(Path(w).is_relative_to(copy) for w in where):
        raise RuntimeError(f"the copy's tests would import {where}, not the copy in {copy}")


def run_tests(mutant: Mutant | None, files: Snapshot) -> Outcome:
    """Write ``files`` to a temporary directory, apply ``mutant`` (None: the baseline), run the stack tests."""
    name = mutant.name if mutant else "(baseline)"
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="drctl-mutant-") as tmp:
        copy = Path(tmp)
        if mutant is None:
            write_tree(files, copy)
            _check_imports_come_from(copy)
        else:
            mutated = mutate(mutant, files[mutant.file].decode("utf-8"))
            write_tree({**files, mutant.file: mutated.encode("utf-8")}, copy)
        try:
            done = subprocess.run(
                [sys.executable, *PYTEST_ARGS],
                cwd=copy,
                env=_env(copy),
                capture_output=True,
                text=True,
                timeout=RUN_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return Outcome(name, True, f"timed out after {RUN_TIMEOUT:.0f} s", time.monotonic() - started)
    seconds = time.monotonic() - started
    if done.returncode == 0:
        return Outcome(name, False, "all stack tests passed", seconds)
    return Outcome(name, True, f"exit {done.returncode}: {_first_failure(done.stdout + done.stderr)}", seconds)


def _table(mutants: Sequence[Mutant], outcomes: dict[str, Outcome]) -> str:
    rows = [("mutant", "file", "must", "result", "s", "killed by / what the survivor breaks")]
    for m in mutants:
        o = outcomes[m.name]
        result = "killed" if o.killed else "SURVIVED"
        note = o.detail if o.killed else m.breaks
        rows.append((m.name, Path(m.file).name, "yes" if m.must_kill else "no", result, f"{o.seconds:.0f}", note))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r[:5], widths, strict=True)) + "  " + r[5] for r in rows)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.stacks.mutants", description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", help="run only these mutants")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument("--jobs", type=int, default=MAX_JOBS, help=f"parallel runs (at most {MAX_JOBS})")
    parser.add_argument("--rev", help="score this commit's files instead of the working tree")
    parser.add_argument(
        "--with", dest="overlay", action="append", default=[], metavar="PATH", help="with --rev: this working file"
    )
    parser.add_argument("--no-baseline", action="store_true", help="skip the unmutated run")
    args = parser.parse_args(argv)

    unknown = set(args.names) - {m.name for m in MUTANTS}
    if unknown:
        parser.error(f"unknown mutants: {', '.join(sorted(unknown))}")
    mutants = [m for m in MUTANTS if not args.names or m.name in args.names]
    if args.list:
        for m in mutants:
            print(f"{m.name:48} {m.file:40} must_kill={m.must_kill}")
        return 0
    if args.overlay and not args.rev:
        parser.error("--with needs --rev")
    files = snapshot(args.rev, args.overlay)
    # Checked up front: a rotted mutant must fail the check, never count as killed or survived.
    counts = {m.name: files[m.file].decode("utf-8").count(m.old) if m.file in files else 0 for m in mutants}
    rotted = [f"{m.name} ({m.file}: {counts[m.name]} occurrences)" for m in mutants if counts[m.name] != 1]
    if rotted:
        print("mutants whose old text is not in the source exactly once:\n  " + "\n  ".join(rotted), file=sys.stderr)
        return 2

    jobs = max(1, min(args.jobs, MAX_JOBS))
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        baseline = None if args.no_baseline else pool.submit(run_tests, None, files)
        futures = {m.name: pool.submit(run_tests, m, files) for m in mutants}
        outcomes = {name: f.result() for name, f in futures.items()}
        base = baseline.result() if baseline else None
    elapsed = time.monotonic() - started

    print(_table(mutants, outcomes))
    killed = sum(o.killed for o in outcomes.values())
    source = f"{args.rev}" + "".join(f" + {o}" for o in args.overlay) if args.rev else "the working tree"
    print(f"\nscore: {killed}/{len(mutants)} killed ({source}) in {elapsed:.0f} s with {jobs} workers")
    if base is not None and base.killed:
        print(f"the unmutated copy fails its own tests ({base.detail}): the score means nothing", file=sys.stderr)
        return 2
    escaped = [m.name for m in mutants if m.must_kill and not outcomes[m.name].killed]
    if escaped:
        print(f"must-kill mutants that survived: {', '.join(escaped)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
