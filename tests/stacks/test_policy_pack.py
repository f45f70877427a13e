"""The CrossGuard policy pack in ``stacks/policy_pack``: each policy on arguments built by hand, the pack's wiring,
and the pack served over gRPC as `pulumi preview --policy-pack` would start it.

The stack-level suite (``test_stacks_policy.py``) runs the same policies over the checked-in stacks.
"""

from __future__ import annotations

import ast
import json
import re
import runpy
import selectors
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import grpc  # type: ignore[import-untyped]  # no stubs in the lock; pulumi's generated stubs type the calls
import pulumi_policy
import pytest
import yaml
from google.protobuf import empty_pb2, struct_pb2  # type: ignore[import-untyped]  # as above
from packaging.specifiers import SpecifierSet
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc
from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError, unknown_checking_proxy

from stacks.naming import ROLE_TAG
from stacks.policy import CHECKS
from stacks.policy_pack.policies import PACK_NAME, POLICIES, _shared

ROOT = Path(__file__).resolve().parents[2]
PACK_DIR = ROOT / "stacks" / "policy_pack"
POLICY = {policy.name: policy for policy in POLICIES}

BUCKET = "aws:s3/bucket:Bucket"
VERSIONING = "aws:s3/bucketVersioning:BucketVersioning"
ENCRYPTION = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
REPLICATION = "aws:s3/bucketReplicationConfig:BucketReplicationConfig"
KEY = "aws:kms/key:Key"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
IAM_POLICY = "aws:iam/policy:Policy"
ACCOUNT = "azure-native:storage:StorageAccount"
BLOB_SERVICE = "azure-native:storage:BlobServiceProperties"
CONTAINER = "azure-native:storage:BlobContainer"
VPC = "aws:ec2/vpc:Vpc"
GATEWAY = "aws:ec2/internetGateway:InternetGateway"
SG_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"


# --- arguments as CrossGuard builds them ----------------------------------------------------------------


def _urn(type_: str, name: str) -> str:
    return f"urn:pulumi:test::drctl::{type_}::{name}"


def _options(protect: bool = False) -> PolicyResourceOptions:
    return PolicyResourceOptions(protect, [], None, [], PolicyCustomTimeouts(0, 0, 0), [], None)


def resource(
    type_: str, props: Mapping[str, Any], *, protect: bool = False, config: Mapping[str, Any] | None = None
) -> ResourceValidationArgs:
    """A resource validation's arguments; props go through CrossGuard's proxy, as over gRPC."""
    name = "subject"
    return ResourceValidationArgs(
        type_, unknown_checking_proxy(dict(props)), _urn(type_, name), name, _options(protect), None, config
    )


def node(type_: str, name: str, props: Mapping[str, Any], **made_from: Sequence[PolicyResource]) -> PolicyResource:
    """A stack resource; ``made_from`` are its property dependencies, as the engine records them."""
    return PolicyResource(
        type_,
        unknown_checking_proxy(dict(props)),
        _urn(type_, name),
        name,
        _options(),
        None,
        None,
        [r for rs in made_from.values() for r in rs],
        {key: list(rs) for key, rs in made_from.items()},
    )


def reported(policy: Policy, args: ResourceValidationArgs | StackValidationArgs) -> list[str]:
    found: list[str] = []

    def report(message: str, urn: str | None = None) -> None:
        found.append(message)

    if isinstance(policy, ResourceValidationPolicy):
        assert isinstance(args, ResourceValidationArgs)
        assert policy.validate(args, report) is None
    else:
        assert isinstance(policy, StackValidationPolicy)
        assert isinstance(args, StackValidationArgs)
        assert policy.validate(args, report) is None
    return found


def on_stack(name: str, *resources: PolicyResource) -> list[str]:
    return reported(POLICY[name], StackValidationArgs(list(resources)))


def on_resource(name: str, args: ResourceValidationArgs) -> list[str]:
    return reported(POLICY[name], args)


def bucket(name: str = "backups", **props: Any) -> PolicyResource:
    return node(BUCKET, name, {"bucket": f"{name}-1", "arn": f"arn:aws:s3:::{name}-1", "id": f"{name}-1", **props})


# --- backup-versioning ----------------------------------------------------------------------------------


def _versioning(target: PolicyResource, status: str) -> PolicyResource:
    return node(VERSIONING, target.name, {"versioningConfiguration": {"status": status}}, bucket=[target])


def _blob_service(account: PolicyResource, versioning: bool = True, soft_delete: bool = True) -> PolicyResource:
    props = {"isVersioningEnabled": versioning, "deleteRetentionPolicy": {"enabled": soft_delete, "days": 7}}
    return node(BLOB_SERVICE, f"{account.name}-blobs", props, accountName=[account])


def test_versioning_passes_versioned_buckets_and_accounts() -> None:
    b, account = bucket(), node(ACCOUNT, "vault", {"name": "vault1"})
    assert on_stack("backup-versioning", b, _versioning(b, "Enabled"), account, _blob_service(account)) == []


def test_versioning_fails_a_suspended_bucket_and_an_account_without_soft_delete() -> None:
    b, account = bucket(), node(ACCOUNT, "vault", {"name": "vault1"})
    found = on_stack(
        "backup-versioning", b, _versioning(b, "Suspended"), account, _blob_service(account, soft_delete=False)
    )
    assert found == ["S3 bucket backups is not versioned", "storage account vault has no blob soft delete"]


def test_versioning_of_another_bucket_does_not_count() -> None:
    mine, other = bucket("mine"), bucket("other")
    assert on_stack("backup-versioning", mine, other, _versioning(other, "Enabled")) == [
        "S3 bucket mine is not versioned"
    ]


def test_a_literal_bucket_name_links_by_value() -> None:
    # No property dependency (the program wrote the name out): the link is found by the bucket's own name.
    b = bucket()
    literal = node(VERSIONING, "literal", {"bucket": "backups-1", "versioningConfiguration": {"status": "Enabled"}})
    assert on_stack("backup-versioning", b, literal) == []


def test_an_unknown_value_a_policy_needs_stops_it_as_pulumi_expects() -> None:
    # In a preview, CrossGuard turns this error into "can't run policy during preview" instead of a verdict.
    b = bucket()
    unknown = node(VERSIONING, "v", {"versioningConfiguration": {"status": UNKNOWN_STRING_VALUE}}, bucket=[b])
    with pytest.raises(UnknownValueError):
        on_stack("backup-versioning", b, unknown)


# --- backup-encryption ----------------------------------------------------------------------------------


def _sse(target: PolicyResource, algorithm: str) -> PolicyResource:
    rules = [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": algorithm}}]
    return node(ENCRYPTION, target.name, {"rules": rules}, bucket=[target])


SAFE_ACCOUNT = {
    "encryption": {"keySource": "Microsoft.Storage", "services": {"blob": {"enabled": True}}},
    "enableHttpsTrafficOnly": True,
    "minimumTlsVersion": "TLS1_2",
    "allowBlobPublicAccess": False,
    "sku": {"name": "Standard_GRS"},
}


def test_encryption_passes_kms_buckets_and_hardened_accounts() -> None:
    b = bucket()
    assert on_stack("backup-encryption", b, _sse(b, "aws:kms"), node(ACCOUNT, "vault", SAFE_ACCOUNT)) == []


def test_encryption_fails_an_unencrypted_bucket_and_an_account_on_old_tls() -> None:
    account = node(ACCOUNT, "vault", {**SAFE_ACCOUNT, "minimumTlsVersion": "TLS1_0"})
    assert on_stack("backup-encryption", bucket(), account) == [
        "S3 bucket backups has no default server-side encryption",
        "storage account vault accepts TLS older than 1.2",
    ]


# --- no-public-access -----------------------------------------------------------------------------------


def _block(target: PolicyResource, **flags: bool) -> PolicyResource:
    props = dict.fromkeys(("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"), True)
    return node(ACCESS_BLOCK, target.name, {**props, **flags}, bucket=[target])


def test_public_access_passes_a_blocked_bucket_and_a_private_container() -> None:
    b = bucket()
    container = node(CONTAINER, "backups", {"publicAccess": "None"})
    assert on_stack("no-public-access", b, _block(b), node(ACCOUNT, "vault", SAFE_ACCOUNT), container) == []


def test_public_access_fails_a_half_blocked_bucket_a_public_acl_and_a_public_container() -> None:
    b = bucket()
    acl = node("aws:s3/bucketAclV2:BucketAclV2", "acl", {"acl": "public-read"}, bucket=[b])
    container = node(CONTAINER, "backups", {"publicAccess": "Container"})
    assert on_stack("no-public-access", b, _block(b, ignorePublicAcls=False), acl, container) == [
        "S3 bucket backups lacks a public access block with all four settings on",
        "S3 bucket backups has public ACL public-read",
        "blob container backups is public (Container)",
    ]


def test_an_acl_the_provider_has_yet_to_compute_is_not_public() -> None:
    # A new bucket's inline acl is unknown in a preview; the program did not set one, so nothing is public.
    b = bucket(acl=UNKNOWN_STRING_VALUE)
    assert on_stack("no-public-access", b, _block(b)) == []


# --- replication-wiring ---------------------------------------------------------------------------------

S3_TRUST = json.dumps(
    {"Statement": [{"Effect": "Allow", "Principal": {"Service": "s3.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
)


def _replicated(grant: str | None = None, status: str = "Enabled") -> list[PolicyResource]:
    source, replica = bucket("source"), bucket("replica")
    key = node(KEY, "replica", {"arn": "arn:aws:kms:r:1:key/k"})
    role = node(ROLE, "replication", {"assumeRolePolicy": S3_TRUST, "arn": "arn:aws:iam::1:role/replication"})
    statements = [
        {"Effect": "Allow", "Action": ["s3:GetReplicationConfiguration"], "Resource": ["arn:aws:s3:::source-1"]},
        {"Effect": "Allow", "Action": ["s3:ReplicateObject"], "Resource": ["arn:aws:s3:::replica-1/*"]},
        {"Effect": "Allow", "Action": ["kms:Encrypt"], "Resource": ["arn:aws:kms:r:1:key/k"]},
    ]
    if grant is not None:
        statements.append({"Effect": "Allow", "Action": ["s3:ReplicateObject"], "Resource": [grant]})
    policy = node(ROLE_POLICY, "replication", {"policy": json.dumps({"Statement": statements})}, role=[role])
    config = node(
        REPLICATION,
        "replication",
        {"rules": [{"status": status, "destination": {"bucket": "arn:aws:s3:::replica-1"}}]},
        bucket=[source],
        role=[role],
        rules=[replica, key],
    )
    return [source, replica, key, role, policy, config]


def test_replication_passes_a_pair_wired_through_a_scoped_role() -> None:
    assert on_stack("replication-wiring", *_replicated()) == []


def test_replication_fails_a_role_reaching_other_buckets() -> None:
    assert on_stack("replication-wiring", *_replicated(grant="arn:aws:s3:::someone-elses/*")) == [
        "replication role replication (replication) grants 'arn:aws:s3:::someone-elses/*', "
        "which is not one of this stack's backup buckets or keys"
    ]


def test_replication_fails_a_disabled_rule_and_a_bucket_outside_any_replication() -> None:
    found = on_stack("replication-wiring", *_replicated(status="Disabled"), bucket("stray"))
    assert found == [
        "replication configuration replication has no rules or a disabled one",
        "S3 bucket stray is neither replicated nor a replica",
    ]


def test_replication_fails_an_account_kept_in_one_region() -> None:
    account = node(ACCOUNT, "vault", {**SAFE_ACCOUNT, "sku": {"name": "Standard_LRS"}})
    assert on_stack("replication-wiring", account) == [
        "storage account vault (Standard_LRS) does not replicate to a second region"
    ]


# --- least-privilege ------------------------------------------------------------------------------------


def _rule(cidr: str, low: int = 22, high: int = 22) -> ResourceValidationArgs:
    props = {"type": "ingress", "protocol": "tcp", "fromPort": low, "toPort": high, "cidrBlocks": [cidr]}
    return resource(SG_RULE, props)


def _iam(*statements: Mapping[str, Any], config: Mapping[str, Any] | None = None) -> ResourceValidationArgs:
    return resource(IAM_POLICY, {"policy": json.dumps({"Statement": list(statements)})}, config=config)


DESCRIBE = {"Effect": "Allow", "Action": ["ec2:DescribeInstances", "EC2:DescribeImages"], "Resource": "*"}
FIND_ZONE = {"Effect": "Allow", "Action": "route53:ListHostedZonesByName", "Resource": "*"}
READ_ANY = {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": ["*"]}


def test_least_privilege_passes_ssh_from_a_private_range_and_describe_on_any_resource() -> None:
    assert on_resource("least-privilege", _rule("10.0.0.0/8")) == []
    assert on_resource("least-privilege", _iam(DESCRIBE, FIND_ZONE)) == []


def test_least_privilege_fails_ssh_from_anywhere() -> None:
    assert on_resource("least-privilege", _rule("0.0.0.0/0", 0, 1024)) == [
        "security group rule subject opens SSH/RDP to the internet"
    ]


def test_least_privilege_fails_wildcards_and_scopable_actions_on_any_resource() -> None:
    wildcard = {"Effect": "Allow", "Action": "s3:Get*", "Resource": "arn:aws:s3:::b/*"}
    everything_but = {"Effect": "Allow", "NotAction": "iam:*", "Resource": "arn:aws:s3:::b"}
    assert on_resource("least-privilege", _iam(READ_ANY, wildcard, everything_but)) == [
        "IAM policy subject grants Resource '*' to s3:GetObject, which AWS can limit to named resources",
        "IAM policy subject allows the wildcard action 's3:Get*'",
        "IAM policy subject allows every action but those in NotAction",
    ]


def test_least_privilege_ignores_denials() -> None:
    assert on_resource("least-privilege", _iam({"Effect": "Deny", "Action": "*", "Resource": "*"})) == []


def test_least_privilege_reads_the_unscopable_actions_from_the_pack_config() -> None:
    assert on_resource("least-privilege", _iam(READ_ANY, config={"unscopableActions": ["s3:GetObject"]})) == []
    assert on_resource("least-privilege", _iam(DESCRIBE, config={"unscopableActions": []})) != []


# --- drill-isolation ------------------------------------------------------------------------------------


def _drill_vpc() -> PolicyResource:
    return node(VPC, "drill", {"id": "vpc-1", "tags": {ROLE_TAG: "drill"}})


def test_drill_isolation_passes_a_closed_drill_vpc() -> None:
    assert on_stack("drill-isolation", _drill_vpc(), node(VPC, "recovery", {"id": "vpc-2"})) == []


def test_drill_isolation_fails_a_gateway_on_the_drill_vpc() -> None:
    vpc = _drill_vpc()
    assert on_stack("drill-isolation", vpc, node(GATEWAY, "leak", {"vpcId": "vpc-1"}, vpcId=[vpc])) == [
        "drill VPC drill has an internet gateway (leak)"
    ]


def test_drill_isolation_fails_a_stack_without_a_drill_network() -> None:
    assert on_stack("drill-isolation", node(VPC, "recovery", {"id": "vpc-2"})) == [
        "no drill network (a VPC or VNet tagged drctl:role=drill) is defined"
    ]


# --- backup-protection ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("type_", "kind"),
    [
        (BUCKET, "S3 bucket"),
        ("aws:s3/bucketV2:BucketV2", "S3 bucket"),
        (KEY, "KMS key"),
        (ACCOUNT, "storage account"),
        ("azure-native:storage/v20230501:StorageAccount", "storage account"),
    ],
)
def test_protection_requires_protect_on_what_holds_or_unlocks_backups(type_: str, kind: str) -> None:
    assert on_resource("backup-protection", resource(type_, {}, protect=True)) == []
    assert on_resource("backup-protection", resource(type_, {}, protect=False)) == [
        f"{kind} subject is not protected: a destroy or a replacement would delete it"
    ]


def test_protection_leaves_other_resources_alone() -> None:
    assert on_resource("backup-protection", resource(VERSIONING, {}, protect=False)) == []


# --- the pack itself ------------------------------------------------------------------------------------


def test_the_mocks_suite_runs_exactly_the_pack_policies() -> None:
    assert len({p.name for p in POLICIES}) == len(POLICIES)
    assert list(CHECKS) == [p.name for p in POLICIES]


def _describe(policies: Sequence[Policy]) -> list[tuple[str, str, str, EnforcementLevel | None]]:
    return [(type(p).__name__, p.name, p.description, p.enforcement_level) for p in policies]


def test_main_serves_the_policy_list_as_one_mandatory_pack(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[dict[str, Any]] = []
    monkeypatch.setattr(pulumi_policy, "PolicyPack", lambda **kwargs: built.append(kwargs))
    modules = set(sys.modules)
    try:
        # As Pulumi runs it: the directory as the program, which puts the directory on sys.path.
        runpy.run_path(str(PACK_DIR), run_name="__main__")
    finally:
        # That import of `policies` is a second copy of stacks.policy_pack.policies; drop it.
        for name in set(sys.modules) - modules:
            del sys.modules[name]
    (pack,) = built
    assert pack["name"] == PACK_NAME
    assert pack["enforcement_level"] is EnforcementLevel.MANDATORY
    assert isinstance(pack["policies"], list)
    assert _describe(pack["policies"]) == _describe(POLICIES)


def test_pulumi_policy_yaml_names_a_python_pack() -> None:
    document = yaml.safe_load((PACK_DIR / "PulumiPolicy.yaml").read_text(encoding="utf-8"))
    assert document["runtime"]["name"] == "python"
    assert re.fullmatch(r"\d+\.\d+\.\d+", str(document["version"]))
    assert document["description"].strip()


def _pinned(text: str, package: str) -> str:
    versions: list[str] = re.findall(rf"^{re.escape(package)}==([^\s\\;]+)", text, re.MULTILINE)
    (version,) = versions
    return version


def test_requirements_pin_the_locked_pulumi_policy_and_admit_the_locked_pulumi() -> None:
    lock = (ROOT / "requirements.lock").read_text(encoding="utf-8")
    requirements = (PACK_DIR / "requirements.txt").read_text(encoding="utf-8")
    assert _pinned(requirements, "pulumi-policy") == _pinned(lock, "pulumi-policy")
    (pulumi_range,) = re.findall(r"^pulumi([<>=!~][^\s;]*)$", requirements, re.MULTILINE)
    assert _pinned(lock, "pulumi") in SpecifierSet(pulumi_range)


def _absolute_imports(path: Path) -> Iterator[str]:
    for statement in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(statement, ast.Import):
            yield from (alias.name.split(".")[0] for alias in statement.names)
        elif isinstance(statement, ast.ImportFrom) and statement.level == 0 and statement.module:
            yield statement.module.split(".")[0]


def test_the_pack_imports_nothing_from_outside_its_directory() -> None:
    # `pulumi policy publish` uploads the directory alone, and the pack's virtualenv has only requirements.txt.
    imported = {name for path in (PACK_DIR / "policies").glob("*.py") for name in _absolute_imports(path)}
    assert imported - sys.stdlib_module_names == {"pulumi_policy"}


def test_the_pack_tags_roles_as_the_stacks_do() -> None:
    assert _shared.ROLE_TAG == ROLE_TAG


# --- the pack over gRPC, as the Pulumi CLI talks to it --------------------------------------------------

START_TIMEOUT = 60.0
CALL_TIMEOUT = 30.0


@pytest.fixture(scope="module")
def analyzer() -> Iterator[analyzer_pb2_grpc.AnalyzerStub]:
    """The pack started the way Pulumi's Python host starts it (``python -m pulumi.policy ENGINE PROGRAM``,
    in the pack's directory); ready once it prints its port, which is the handshake the CLI waits for."""
    process = subprocess.Popen(
        # The engine address is unused by pulumi.policy itself; the pack never calls back.
        [sys.executable, "-u", "-m", "pulumi.policy", "127.0.0.1:1", "."],
        cwd=PACK_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            ready = selector.select(timeout=START_TIMEOUT)
        line = process.stdout.readline() if ready else b""
        if not line.strip().isdigit():
            process.kill()
            _, err = process.communicate(timeout=CALL_TIMEOUT)
            pytest.fail(f"the pack printed no port ({line!r}); stderr:\n{err.decode(errors='replace')}")
        with grpc.insecure_channel(f"127.0.0.1:{int(line)}") as channel:
            yield analyzer_pb2_grpc.AnalyzerStub(channel)
    finally:
        process.kill()
        process.wait(timeout=CALL_TIMEOUT)


def _struct(props: Mapping[str, Any]) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update(dict(props))
    return message


def _analyze(stub: analyzer_pb2_grpc.AnalyzerStub, type_: str, props: Mapping[str, Any], protect: bool) -> Any:
    request = analyzer_pb2.AnalyzeRequest(
        type=type_,
        properties=_struct(props),
        urn=_urn(type_, "subject"),
        name="subject",
        options=analyzer_pb2.AnalyzerResourceOptions(protect=protect),
    )
    return stub.Analyze(request, timeout=CALL_TIMEOUT)


def test_the_served_pack_lists_every_policy_as_mandatory(analyzer: analyzer_pb2_grpc.AnalyzerStub) -> None:
    info = analyzer.GetAnalyzerInfo(empty_pb2.Empty(), timeout=CALL_TIMEOUT)
    assert info.name == PACK_NAME
    assert [p.name for p in info.policies] == [p.name for p in POLICIES]
    assert {p.enforcementLevel for p in info.policies} == {analyzer_pb2.MANDATORY}
    (least,) = (p for p in info.policies if p.name == "least-privilege")
    assert "unscopableActions" in least.configSchema.properties


def test_the_served_pack_flags_an_unprotected_bucket(analyzer: analyzer_pb2_grpc.AnalyzerStub) -> None:
    assert list(_analyze(analyzer, BUCKET, {"bucket": "b"}, protect=True).diagnostics) == []
    (diagnostic,) = _analyze(analyzer, BUCKET, {"bucket": "b"}, protect=False).diagnostics
    assert diagnostic.policyName == "backup-protection"
    assert diagnostic.enforcementLevel == analyzer_pb2.MANDATORY
    assert "S3 bucket subject is not protected" in diagnostic.message


def test_the_served_pack_reads_lists_through_its_proxies(analyzer: analyzer_pb2_grpc.AnalyzerStub) -> None:
    props = {"type": "ingress", "protocol": "tcp", "fromPort": 3389, "toPort": 3389, "cidrBlocks": ["::/0", "*"]}
    (diagnostic,) = _analyze(analyzer, SG_RULE, props, protect=False).diagnostics
    assert diagnostic.policyName == "least-privilege"


def test_the_served_pack_checks_the_whole_stack(analyzer: analyzer_pb2_grpc.AnalyzerStub) -> None:
    b = analyzer_pb2.AnalyzerResource(
        type=BUCKET, urn=_urn(BUCKET, "b"), name="b", properties=_struct({"bucket": "b-1", "arn": "arn:aws:s3:::b-1"})
    )
    response = analyzer.AnalyzeStack(analyzer_pb2.AnalyzeStackRequest(resources=[b]), timeout=CALL_TIMEOUT)
    found = {(d.policyName, d.urn) for d in response.diagnostics}
    assert ("backup-versioning", b.urn) in found
    assert ("no-public-access", b.urn) in found
    assert ("drill-isolation", "") in found


def test_the_served_pack_takes_policy_config(analyzer: analyzer_pb2_grpc.AnalyzerStub) -> None:
    # What `--policy-pack-config` sends: per policy, an enforcement level and the schema's properties.
    policy = {"policy": json.dumps({"Statement": [READ_ANY]})}
    assert [d.policyName for d in _analyze(analyzer, IAM_POLICY, policy, protect=False).diagnostics] == [
        "least-privilege"
    ]
    config = analyzer_pb2.PolicyConfig(
        enforcementLevel=analyzer_pb2.MANDATORY, properties=_struct({"unscopableActions": ["s3:GetObject"]})
    )
    try:
        analyzer.Configure(
            analyzer_pb2.ConfigureAnalyzerRequest(policyConfig={"least-privilege": config}), timeout=CALL_TIMEOUT
        )
        assert list(_analyze(analyzer, IAM_POLICY, policy, protect=False).diagnostics) == []
    finally:
        analyzer.Configure(analyzer_pb2.ConfigureAnalyzerRequest(), timeout=CALL_TIMEOUT)
