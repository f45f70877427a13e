"""Runs Pulumi programs under mocks and records what they register, so tests can assert on it.

Pulumi's runtime is process-global: :func:`run` resets it before every program, so results never depend on
which test ran first. Mock ids and outputs are deterministic, derived from resource names.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import runpy
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pulumi
import yaml
from pulumi.runtime.stack import Stack

from stacks.policy import RecordedResource

PROJECT = "drctl"
ROOT = Path(__file__).resolve().parents[2]
STACKS_DIR = ROOT / "stacks"
STACK_NAMES = ("lab", "aws-to-azure", "azure-to-aws")
ACCOUNT_ID = "123456789012"
SUBSCRIPTION_ID = "00000000-0000-0000-0000-0000000000aa"

# The input that carries each Azure resource's own name; the mock echoes it back as the ``name`` output.
AZURE_NAME_KEYS = {
    "azure-native:resources:ResourceGroup": "resourceGroupName",
    "azure-native:storage:StorageAccount": "accountName",
    "azure-native:storage:BlobContainer": "containerName",
    "azure-native:compute:Gallery": "galleryName",
    "azure-native:compute:GalleryImage": "galleryImageName",
    "azure-native:compute:GalleryImageVersion": "galleryImageVersionName",
    "azure-native:network:VirtualNetwork": "virtualNetworkName",
    "azure-native:network:Subnet": "subnetName",
    "azure-native:network:NetworkSecurityGroup": "networkSecurityGroupName",
    "azure-native:dns:Zone": "zoneName",
    "azure-native:privatedns:PrivateZone": "privateZoneName",
    "azure-native:trafficmanager:Profile": "profileName",
}

INVOKE_ANSWERS: Mapping[str, dict[str, Any]] = {
    "aws:index/getCallerIdentity:getCallerIdentity": {
        "accountId": ACCOUNT_ID,
        "arn": f"arn:aws:iam::{ACCOUNT_ID}:user/test",
        "userId": "AIDATEST",
        "id": ACCOUNT_ID,
    },
    "aws:index/getAvailabilityZones:getAvailabilityZones": {
        "id": "zones",
        "names": ["zone-a", "zone-b", "zone-c"],
        "zoneIds": ["zid-a", "zid-b", "zid-c"],
        "groupNames": [],
    },
    "azure-native:authorization:getClientConfig": {
        "clientId": "client",
        "objectId": "object",
        "subscriptionId": SUBSCRIPTION_ID,
        "tenantId": "tenant",
    },
}


def fake_state(type_: str, name: str, inputs: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """A plausible id and computed outputs for a resource, derived only from its type and name."""
    kind = type_.rsplit(":", 1)[-1]
    if type_.startswith("pulumi:providers:"):
        return f"provider-{name}", {}
    if type_ == "aws:s3/bucket:Bucket":
        bucket = inputs.get("bucket") or f"{name}-a1b2c3"
        return bucket, {"bucket": bucket, "arn": f"arn:aws:s3:::{bucket}"}
    if type_ == "aws:iam/role:Role":
        role = inputs.get("name") or name
        return role, {"name": role, "arn": f"arn:aws:iam::{ACCOUNT_ID}:role/{role}"}
    if type_ == "aws:iam/policy:Policy":
        return f"policy-{name}", {"arn": f"arn:aws:iam::{ACCOUNT_ID}:policy/{name}"}
    if type_ == "aws:kms/key:Key":
        return f"key-{name}", {"arn": f"arn:aws:kms:region:{ACCOUNT_ID}:key/key-{name}", "keyId": f"key-{name}"}
    if type_ == "aws:route53/zone:Zone":
        return f"Z-{name}", {"zoneId": f"Z-{name}"}
    if type_.startswith("aws:"):
        return f"{kind.lower()}-{name}", {"arn": f"arn:aws:mock:region:{ACCOUNT_ID}:{kind.lower()}/{name}"}
    if type_.startswith("azure-native:"):
        own = inputs.get(AZURE_NAME_KEYS.get(type_, "")) or name
        outputs: dict[str, Any] = {"name": own}
        if type_ == "azure-native:storage:StorageAccount":
            outputs["primaryEndpoints"] = {"blob": f"https://{own}.blob.core.windows.net/"}
        provider_type = type_.removeprefix("azure-native:").replace(":", "/")
        return f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/rg/providers/{provider_type}/{own}", outputs
    return f"{kind.lower()}-{name}", {}


class RecordingMocks(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.resources: list[RecordedResource] = []
        self.invokes: list[str] = []
        # The registration being served on this thread (see RecordingMonitor): Pulumi registers resources from
        # a thread pool, and the request carries the options that MockResourceArgs leaves out.
        self.registering = threading.local()

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        id_, computed = fake_state(args.typ, args.name, args.inputs)
        outputs = {**args.inputs, **computed}
        request, urn = getattr(self.registering, "current", (None, None))
        record = RecordedResource(args.typ, args.name, dict(args.inputs), outputs, id_, args.provider or None)
        if request is not None:
            record = dataclasses.replace(
                record,
                urn=urn,
                parent=request.parent or None,
                protect=request.protect,
                retain_on_delete=request.retainOnDelete,
                dependencies=tuple(request.dependencies),
                property_dependencies={key: tuple(deps.urns) for key, deps in request.propertyDependencies.items()},
            )
        # Recorded here, in registration order, as before options were recorded: tests rely on that order.
        self.resources.append(record)
        return id_, outputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        self.invokes.append(args.token)
        if args.token not in INVOKE_ANSWERS:
            # Unanswered invokes would silently return {}; fail loudly instead.
            raise NotImplementedError(f"no mock answer for invoke {args.token}")
        return dict(INVOKE_ANSWERS[args.token]), []


class RecordingMonitor(pulumi.runtime.mocks.MockMonitor):
    """Hands each registration request to :class:`RecordingMocks`, which :class:`pulumi.runtime.Mocks` never sees.

    The request is the one the engine would get, so ``protect`` already includes what a parent passed down.
    """

    def __init__(self, mocks: RecordingMocks) -> None:
        super().__init__(mocks)
        self.recorder = mocks

    def RegisterResource(self, request: Any) -> Any:
        # The URN the base class gives the resource, computed the same way.
        self.recorder.registering.current = (request, self.make_urn(request.parent, request.type, request.name))
        try:
            return super().RegisterResource(request)  # type: ignore[no-untyped-call]  # pulumi's mocks are untyped
        finally:
            del self.recorder.registering.current


@dataclass(frozen=True)
class Run:
    resources: tuple[RecordedResource, ...]
    exports: Mapping[str, Any]
    values: Mapping[str, Any]
    invokes: tuple[str, ...]
    urns: tuple[str, ...]

    def of_type(self, type_: str) -> list[RecordedResource]:
        return [r for r in self.resources if r.type == type_]

    def named(self, type_: str, name: str) -> RecordedResource:
        matches = [r for r in self.of_type(type_) if r.name == name]
        assert len(matches) == 1, f"expected one {type_} named {name}, found {[r.name for r in self.of_type(type_)]}"
        return matches[0]

    def types(self) -> set[str]:
        return {r.type for r in self.resources}

    @staticmethod
    def provider_name(resource: RecordedResource) -> str | None:
        """Logical name of the explicit provider ``resource`` was created with, if any."""
        if resource.provider is None or "::provider-" not in resource.provider:
            return None
        return resource.provider.rsplit("::provider-", 1)[1]


def reset_runtime(stack: str = "test", config: Mapping[str, str] | None = None) -> None:
    pulumi.runtime.reset_options(project=PROJECT, stack=stack)
    pulumi.runtime.set_all_config(dict(config or {}))


Program = Callable[[], Mapping[str, Any] | None]


def run(program: Program, *, stack: str = "test", config: Mapping[str, str] | None = None) -> Run:
    """Run ``program`` against fresh mocks and return what it registered.

    ``exports`` are the resolved stack exports; ``values`` the resolved mapping ``program`` returned (use it
    to read a component's output properties).
    """
    reset_runtime(stack, config)
    mocks = RecordingMocks()
    monitor = RecordingMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=False, monitor=monitor)
    exports: dict[str, Any] = {}
    values: dict[str, Any] = {}

    def collect(both: list[Any]) -> None:
        exports.update(both[0])
        values.update(both[1])

    def body() -> pulumi.Output[None]:
        returned = program() or {}
        root = cast(Stack, pulumi.runtime.get_root_resource())
        return pulumi.Output.all(pulumi.Output.all(**root.outputs), pulumi.Output.all(**returned)).apply(collect)

    try:
        # `test` runs body and waits for every registration and apply it started.
        pulumi.runtime.test(body)()  # type: ignore[no-untyped-call]  # pulumi.runtime.test has no annotations
    finally:
        reset_runtime()
    urns = tuple(monitor.get_registered_resources())
    return Run(tuple(mocks.resources), exports, values, tuple(mocks.invokes), urns)


def stack_config(stack: str) -> dict[str, str]:
    """``stacks/Pulumi.<stack>.yaml`` as the flat string map the Pulumi engine hands a program."""
    document = yaml.safe_load((STACKS_DIR / f"Pulumi.{stack}.yaml").read_text(encoding="utf-8"))
    return {key: value if isinstance(value, str) else json.dumps(value) for key, value in document["config"].items()}


def run_main(stack: str, config: Mapping[str, str] | None = None) -> Run:
    """Run ``stacks/__main__.py`` exactly as Pulumi would, with ``config`` or the stack's YAML."""
    entry = str(STACKS_DIR / "__main__.py")

    def program() -> None:
        runpy.run_path(entry, run_name="__main__")

    return run(
        program,
        stack=stack,
        config=stack_config(stack) if config is None else config,
    )


@functools.cache
def run_stack(stack: str) -> Run:
    """:func:`run_main` for a checked-in stack, computed once per session: the result is immutable."""
    return run_main(stack)
