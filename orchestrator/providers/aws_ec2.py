"""``Compute`` on Amazon EC2 with boto3. The client is passed in (one per region); its own retries are off and
:class:`~orchestrator.retry.RetryPolicy` retries only ``Transient`` errors. SDK errors are translated here."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, PartialCredentialsError
from botocore.exceptions import ConnectionError as BotoConnectionError

from orchestrator.errors import (
    AuthError,
    NotFound,
    Permanent,
    PermissionDenied,
    ProviderError,
    ShortOfCapacity,
    Throttled,
    Transient,
)
from orchestrator.permissions import Grant, Scope
from orchestrator.providers.aws_clients import aws_client, malformed_credential
from orchestrator.providers.compute import InstanceInfo, LaunchSpec, WaitResult, wait_for_state
from orchestrator.retry import RetryPolicy

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client

T = TypeVar("T")

_NOT_FOUND_CODES = {
    "InvalidInstanceID.NotFound",
    "InvalidInstanceID.Malformed",
    "InvalidAMIID.NotFound",
    "InvalidAMIID.Malformed",
    # A deregistered AMI: what a second deregister gets after a cleanup was killed before it noted the first.
    "InvalidAMIID.Unavailable",
    "InvalidSubnetID.NotFound",
    "InvalidGroup.NotFound",
    "InvalidLaunchTemplateName.NotFoundException",
    "InvalidLaunchTemplateId.NotFound",
}
_AUTH_CODES = {"AuthFailure", "InvalidClientTokenId", "SignatureDoesNotMatch", "ExpiredToken", "RequestExpired"}
_THROTTLE_CODES = {"RequestLimitExceeded", "Throttling", "ThrottlingException"}
_TRANSIENT_CODES = {
    "InternalError",
    "ServiceUnavailable",
    "Unavailable",
}
_GONE = ("shutting-down", "terminated")


def translate_ec2_error(exc: Exception, what: str) -> ProviderError:
    """Map a botocore error to the project's tree; ``what`` names instances or images, never a secret."""
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return AuthError(f"no usable AWS credentials for {what}; set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY")
    if isinstance(exc, BotoConnectionError):
        return Transient(f"cannot reach EC2 for {what}; check AWS_ENDPOINT_URL and the network")
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
        if code in _NOT_FOUND_CODES:
            return NotFound(f"{what}: does not exist or is not a valid id ({code})")
        if code in _AUTH_CODES:
            return AuthError(f"AWS rejected the credentials for {what} ({code}); check the access key and secret")
        if code == "UnauthorizedOperation" or code == "AccessDenied":
            return PermissionDenied(f"not allowed to act on {what} ({code}); grant the EC2 permission to the caller")
        if code == "IncorrectInstanceState":
            return Permanent(f"{what} is in a state that does not allow this (e.g. terminated); check its state")
        if code == "InsufficientInstanceCapacity":
            return ShortOfCapacity(f"EC2 has too little capacity for {what} ({code}); retry later or elsewhere")
        if code in _THROTTLE_CODES:
            return Throttled(f"EC2 is throttling requests for {what} ({code}); retry later, or ask AWS for more")
        if code in _TRANSIENT_CODES or status >= 500 or status == 429:
            return Transient(f"EC2 is unavailable for {what} ({code or status}); retry later")
        return Permanent(f"EC2 refused the request for {what} ({code or status})")
    if isinstance(exc, BotoCoreError):
        return malformed_credential(exc, "EC2") or Transient(
            f"EC2 request for {what} failed ({type(exc).__name__}); retry later"
        )
    raise TypeError(f"not a botocore error: {type(exc).__name__}") from exc


EC2_RETRY = RetryPolicy(max_wait_s=10.0, throttled_attempts=12)
"""A down endpoint fails after the usual 5 attempts; throttling (RequestLimitExceeded) gets 12, with waits up
to 10 s, within the same 120 s budget: EC2's buckets refill in seconds, and a launch of a whole tier is one
request worth waiting for."""

MAX_IDS_PER_CALL = 1000
"""Instance ids per Start/Stop/Terminate/DescribeInstances call: EC2 documents up to 1,000 ids for a
TerminateInstances request, and the same bound keeps the others' requests within size limits."""


def batches(ids: Sequence[str]) -> list[list[str]]:
    """``ids`` in calls of at most ``MAX_IDS_PER_CALL``."""
    return [list(ids[i : i + MAX_IDS_PER_CALL]) for i in range(0, len(ids), MAX_IDS_PER_CALL)]


IAM_GRANTS = (
    Grant(
        Scope.EC2_READ,
        ("ec2:DescribeInstances", "ec2:DescribeInstanceStatus", "ec2:DescribeImages"),
        ("ec2:DescribeInstances", "ec2:DescribeInstanceStatus", "ec2:DescribeImages"),
        ec2_only=True,
    ),
    Grant(
        Scope.STACK_INSTANCE,
        ("ec2:StartInstances", "ec2:StopInstances", "ec2:TerminateInstances"),
        ("ec2:StartInstances", "ec2:StopInstances", "ec2:TerminateInstances"),
        ec2_only=True,
    ),
    Grant(Scope.LAUNCH, ("ec2:RunInstances",), ("ec2:RunInstances",), ec2_only=True),
    # Launches and image copies tag what they make in the same call (TagSpecifications), which EC2 authorises as
    # CreateTags with ec2:CreateAction set; the stack allows it only then.
    Grant(Scope.TAG_ON_CREATE, ("ec2:CreateTags",), ("ec2:RunInstances", "ec2:CopyImage"), ec2_only=True),
    Grant(Scope.IMAGE_COPY, ("ec2:CopyImage",), ("ec2:CopyImage",), ec2_only=True),
    # A drill tags its image copy again after the copy (``tag_resources``), with its own tag keys only.
    Grant(Scope.DRILL_IMAGE_TAGS, ("ec2:CreateTags",), ("ec2:CreateTags",), ec2_only=True),
    Grant(Scope.DRILL_IMAGE, ("ec2:DeregisterImage",), ("ec2:DeregisterImage",), ec2_only=True),
)
"""What the EC2 provider calls (see ``orchestrator.permissions``)."""


def _names(ids: Sequence[str]) -> str:
    shown = ", ".join(ids[:5])
    return f"instance(s) {shown}" + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")


class Ec2Compute:
    """Instances of one EC2 region. ``client`` must be an EC2 client of ``region`` with SDK retries off."""

    def __init__(self, client: EC2Client, region: str, *, retry: RetryPolicy | None = None) -> None:
        self._client = client
        self._region = region
        self._retry = retry or EC2_RETRY

    @property
    def region(self) -> str:
        return self._region

    @property
    def client(self) -> EC2Client:
        return self._client

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        return self._retry.call_translating(
            fn, (ClientError, BotoCoreError), lambda exc: translate_ec2_error(exc, what)
        )

    def _each_batch(self, ids: Sequence[str], call: Callable[..., object]) -> None:
        """``call(InstanceIds=...)`` over ``ids`` in batches of ``MAX_IDS_PER_CALL``: one call for any tier."""
        for batch in batches(ids):
            self._call(_names(batch), partial(call, InstanceIds=batch))

    def describe(self, ids: Sequence[str]) -> dict[str, InstanceInfo]:
        if not ids:
            return {}
        found: dict[str, InstanceInfo] = {}
        paginator = self._client.get_paginator("describe_instances")
        for batch in batches(ids):

            def fetch(batch: list[str] = batch) -> None:
                for page in paginator.paginate(InstanceIds=batch):
                    for reservation in page.get("Reservations", []):
                        for inst in reservation.get("Instances", []):
                            info = _info(inst)
                            found[info.id] = info

            self._call(_names(batch), fetch)
        missing = [i for i in ids if i not in found]
        if missing:
            raise NotFound(f"{_names(missing)}: does not exist")
        return found

    def start(self, ids: Sequence[str]) -> None:
        states = self.describe(ids)
        gone = [i for i, info in states.items() if info.state in _GONE]
        if gone:
            raise Permanent(f"{_names(gone)} is terminated and cannot be started; launch a replacement")
        todo = [i for i, info in states.items() if info.state in ("stopped", "stopping")]
        if todo:
            self._each_batch(todo, self._client.start_instances)

    def stop(self, ids: Sequence[str]) -> None:
        states = self.describe(ids)
        gone = [i for i, info in states.items() if info.state in _GONE]
        if gone:
            raise Permanent(f"{_names(gone)} is terminated and cannot be stopped")
        todo = [i for i, info in states.items() if info.state in ("pending", "running")]
        if todo:
            self._each_batch(todo, self._client.stop_instances)

    def terminate(self, ids: Sequence[str]) -> None:
        states = self.describe(ids)
        todo = [i for i, info in states.items() if info.state not in _GONE]
        if todo:
            self._each_batch(todo, self._client.terminate_instances)

    def launch(self, spec: LaunchSpec) -> tuple[str, ...]:
        kwargs: dict[str, Any] = {"MinCount": spec.minimum, "MaxCount": spec.count}
        if spec.client_token is not None:
            kwargs["ClientToken"] = spec.client_token
        if spec.template is not None:
            key = "LaunchTemplateId" if spec.template.startswith("lt-") else "LaunchTemplateName"
            kwargs["LaunchTemplate"] = {key: spec.template}
        if spec.image is not None:
            kwargs["ImageId"] = spec.image
        if spec.instance_type is not None:
            kwargs["InstanceType"] = spec.instance_type
        if spec.subnet is not None:
            kwargs["SubnetId"] = spec.subnet
        if spec.security_groups:
            kwargs["SecurityGroupIds"] = list(spec.security_groups)
        if spec.tags:
            kwargs["TagSpecifications"] = [{"ResourceType": "instance", "Tags": _tag_list(spec.tags)}]
        what = f"a launch of {spec.count} from {spec.image or spec.template}"
        if spec.client_token is not None:
            # Retried (throttling, 5xx, a lost answer): EC2 answers a repeated token with the instances the first
            # request launched, so a retry after EC2 accepted the launch starts nothing more.
            answer = self._call(what, lambda: self._client.run_instances(**kwargs))
        else:
            # No retry without a token: a launch that failed after EC2 accepted it would start a second set.
            try:
                answer = self._client.run_instances(**kwargs)
            except (ClientError, BotoCoreError) as exc:
                raise translate_ec2_error(exc, what) from exc
        return tuple(str(inst["InstanceId"]) for inst in answer.get("Instances", []))

    def find(self, tags: Mapping[str, str]) -> tuple[str, ...]:
        return tuple(sorted(self.find_described(tags)))

    def find_described(self, tags: Mapping[str, str]) -> dict[str, InstanceInfo]:
        if not tags:
            raise ValueError("find needs at least one tag; an empty filter would select every instance")
        filters: list[Any] = [{"Name": f"tag:{k}", "Values": [v]} for k, v in tags.items()]
        return self._live(f"instances tagged {dict(tags)}", filters)

    def tagged(self, key: str) -> dict[str, InstanceInfo]:
        """Every live instance carrying tag ``key`` whatever its value, described: how the orphan sweep finds
        the leftovers of drills whose run ids it does not know."""
        return self._live(f"instances tagged {key}", [{"Name": "tag-key", "Values": [key]}])

    def _live(self, what: str, filters: list[Any]) -> dict[str, InstanceInfo]:
        """The instances matching ``filters`` that are not terminated or being terminated, described.

        The state filter goes first. EC2 ANDs filters in any order, but an emulator that tests them in the order
        given (moto, under LocalStack) then drops a terminated instance on a field it holds, before a tag filter
        that costs it a pass over every tag in the region. A region keeps terminated instances listed for about
        an hour, and drills leave many, so on the lab this cut one tier's selection from 5.1 s to 1.6 s at
        1,000 instances."""
        live: Any = {"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]}
        found: dict[str, InstanceInfo] = {}
        paginator = self._client.get_paginator("describe_instances")

        def fetch() -> None:
            found.clear()  # a retry lists again from the top
            for page in paginator.paginate(Filters=[live, *filters]):
                for reservation in page.get("Reservations", []):
                    for inst in reservation.get("Instances", []):
                        info = _info(inst)
                        found[info.id] = info

        self._call(what, fetch)
        return found

    def status_ok(self, ids: Sequence[str]) -> dict[str, bool]:
        if not ids:
            return {}
        what = _names(ids)
        answer = self._call(
            what, lambda: self._client.describe_instance_status(InstanceIds=list(ids), IncludeAllInstances=True)
        )
        ok = dict.fromkeys(ids, False)
        for status in answer.get("InstanceStatuses", []):
            running = status.get("InstanceState", {}).get("Name") == "running"
            checks = (status.get("InstanceStatus", {}).get("Status"), status.get("SystemStatus", {}).get("Status"))
            ok[str(status.get("InstanceId"))] = running and all(c in ("ok", "not-applicable") for c in checks)
        return ok

    def wait(
        self, ids: Sequence[str], state: str, deadline: float, sleep: Callable[[float], bool] | None = None
    ) -> WaitResult:
        return wait_for_state(self, ids, state, deadline, sleep=sleep)

    def image_exists(self, image: str) -> bool:
        """Whether ``image`` (an AMI id) is visible in this region."""
        try:
            answer = self._call(f"image {image}", lambda: self._client.describe_images(ImageIds=[image]))
        except NotFound:
            return False
        return any(img.get("ImageId") == image for img in answer.get("Images", []))

    def find_image(self, name: str) -> str | None:
        """The id of this account's image called ``name`` in this region, if there is one."""
        answer = self._call(
            f"image named {name}",
            lambda: self._client.describe_images(Owners=["self"], Filters=[{"Name": "name", "Values": [name]}]),
        )
        images = answer.get("Images", [])
        return str(images[0]["ImageId"]) if images else None

    def copy_image(
        self, source_image: str, source_region: str, name: str, tags: Mapping[str, str] | None = None
    ) -> str:
        """Start copying ``source_image`` from ``source_region`` into this region as ``name``; returns the new id.

        ``tags`` go on the copy in the same call (TagSpecifications), so a process killed before it hears back
        still leaves a copy its tags find. LocalStack ignores them; callers tag again once the call returns."""
        extra: Any = {"TagSpecifications": [{"ResourceType": "image", "Tags": _tag_list(tags)}]} if tags else {}
        answer = self._call(
            f"image {source_image} from {source_region}",
            lambda: self._client.copy_image(SourceImageId=source_image, SourceRegion=source_region, Name=name, **extra),
        )
        return str(answer["ImageId"])

    def images_named(self, pattern: str) -> dict[str, str]:
        """This account's images whose name matches ``pattern`` (EC2's ``*`` and ``?`` wildcards): id -> name."""
        answer = self._call(
            f"images named {pattern}",
            lambda: self._client.describe_images(Owners=["self"], Filters=[{"Name": "name", "Values": [pattern]}]),
        )
        return {str(img["ImageId"]): str(img.get("Name", "")) for img in answer.get("Images", [])}

    def tagged_images(self, key: str, value: str | None = None) -> dict[str, dict[str, str]]:
        """This account's images carrying tag ``key`` (with ``value``, or any), with their tags: how a sweep finds
        a drill's image copies that no ledger holds. The service filters, so one run's sweep lists only its own."""
        wanted: Any = [
            {"Name": "tag-key", "Values": [key]} if value is None else {"Name": f"tag:{key}", "Values": [value]}
        ]
        answer = self._call(
            f"images tagged {key}" + (f"={value}" if value is not None else ""),
            lambda: self._client.describe_images(Owners=["self"], Filters=wanted),
        )
        return {
            str(img["ImageId"]): {str(t["Key"]): str(t.get("Value", "")) for t in img.get("Tags", [])}
            for img in answer.get("Images", [])
        }

    def tag_resources(self, ids: Sequence[str], tags: Mapping[str, str]) -> None:
        """Add ``tags`` to EC2 resources (images, instances) by id."""
        pairs = _tag_list(tags)
        self._call(f"tags of {', '.join(ids)}", lambda: self._client.create_tags(Resources=list(ids), Tags=pairs))

    def deregister_image(self, image: str) -> bool:
        """Deregister ``image``; False when it is already gone."""
        try:
            self._call(f"image {image}", lambda: self._client.deregister_image(ImageId=image))
        except NotFound:
            return False
        return True

    def image_state(self, image: str) -> str:
        """The image's state (``pending``, ``available``, ``failed``...). Raises ``NotFound``."""
        answer = self._call(f"image {image}", lambda: self._client.describe_images(ImageIds=[image]))
        images = answer.get("Images", [])
        if not images:
            raise NotFound(f"image {image} does not exist in {self._region}")
        return str(images[0].get("State", "available"))


def _tag_list(tags: Mapping[str, str]) -> Any:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def _info(inst: Mapping[str, Any]) -> InstanceInfo:
    return InstanceInfo(
        id=str(inst["InstanceId"]),
        state=str(inst.get("State", {}).get("Name", "unknown")),
        image=inst.get("ImageId"),
        subnet=inst.get("SubnetId"),
        private_ip=inst.get("PrivateIpAddress"),
        public_ip=inst.get("PublicIpAddress"),
        tags={str(t["Key"]): str(t.get("Value", "")) for t in inst.get("Tags", [])},
        instance_type=inst.get("InstanceType"),
    )


_CLIENT_VARS = ("AWS_ENDPOINT_URL_EC2", "AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
_CLIENT_VARS_MORE = ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION")
_clients: dict[tuple[str | None, ...], EC2Client] = {}
_clients_lock = threading.Lock()


def ec2_client(env: Mapping[str, str], region: str | None = None) -> EC2Client:
    """An EC2 client for ``region`` from the conventional AWS variables in ``env``, SDK retries off. Clients
    are shared per settings and region (building one takes a few hundred milliseconds; they are thread-safe)."""
    key = (region, *(env.get(v) for v in (*_CLIENT_VARS, *_CLIENT_VARS_MORE)))
    with _clients_lock:
        if key not in _clients:
            _clients[key] = aws_client(env, "ec2", region)
        return _clients[key]


def compute_for(env: Mapping[str, str], region: str | None = None) -> Ec2Compute:
    """The ``Compute`` the compute actions use; tests replace this function to hand in a fake."""
    client = ec2_client(env, region)
    return Ec2Compute(client, client.meta.region_name)
