"""``AzureVmCompute`` through the real azure-mgmt-compute client and azure-core pipeline, with only the HTTP
exchange faked: no emulator exists for Azure compute. ``FakeArm`` records every request (method, path,
api-version, body) and answers from canned JSON per (method, path), so these tests check what the SDK really
sends and how real error answers are translated. ``test_azure_dns`` reuses ``FakeArm``."""

from __future__ import annotations

import io
import json
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
import urllib3
from azure.core.credentials import AccessToken
from azure.core.pipeline.transport import RequestsTransport
from azure.identity import CredentialUnavailableError
from requests.adapters import BaseAdapter, HTTPAdapter

from orchestrator.errors import AuthError, InvalidInput, NotFound, Permanent, PermissionDenied, Transient
from orchestrator.providers.azure_compute import NETWORK_API_VERSION, AzureVmCompute, azure_compute_for
from orchestrator.providers.compute import Compute, LaunchSpec
from orchestrator.retry import RetryPolicy

SUB = "00000000-1111-2222-3333-444444444444"
ENV = {"AZURE_SUBSCRIPTION_ID": SUB}
RG = "dr-rg"
TOKEN = "static-test-token-do-not-print"
VMS = f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Compute/virtualMachines"
SUBNET = f"/subscriptions/{SUB}/resourceGroups/net/providers/Microsoft.Network/virtualNetworks/dr/subnets/app"
NSG = f"/subscriptions/{SUB}/resourceGroups/net/providers/Microsoft.Network/networkSecurityGroups/app"
IMAGE = f"/subscriptions/{SUB}/resourceGroups/img/providers/Microsoft.Compute/galleries/g/images/web/versions/1.0.0"
CONNECTION_ERROR = object()
"""An answer that is not one: the adapter raises a connection error instead."""


# -- the fake HTTP layer ----------------------------------------------------------------------------------------


class StaticCredential:
    """A ``TokenCredential`` that never talks to Entra ID."""

    def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        return AccessToken(TOKEN, int(time.time()) + 3600)


class UnavailableCredential(StaticCredential):
    """A credential with nothing to offer, as ``DefaultAzureCredential`` on a machine without ``az login``."""

    def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        raise CredentialUnavailableError(message="no credential in this environment")


@dataclass(frozen=True)
class Call:
    """One request as it went on the wire."""

    method: str
    path: str
    query: dict[str, str]
    headers: Mapping[str, str]
    body: Any

    @property
    def api_version(self) -> str:
        return self.query.get("api-version", "")


@dataclass
class Answer:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


def arm_error(status: int, code: str, message: str = "refused") -> Answer:
    return Answer(status, {"error": {"code": code, "message": message}})


class _Adapter(BaseAdapter):
    def __init__(self, arm: FakeArm) -> None:
        super().__init__()
        self._arm = arm

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        return self._arm.answer(request)

    def close(self) -> None:
        pass


Reply = Answer | Callable[[Call], Answer] | object
"""An ``Answer``, a function of the request giving one, or ``CONNECTION_ERROR``."""


class FakeArm(RequestsTransport):  # type: ignore[misc]  # azure-core exports it lazily: mypy sees Any
    """azure-core's own ``RequestsTransport`` (an ``HttpTransport``) over an in-memory ``requests`` adapter:
    every request is recorded in ``calls``; answers come from ``route(method, path, ...)``, one per call in
    order, the last one repeating, or from ``route_under(method, prefix, reply)`` for paths not known in
    advance (VM names chosen at launch). A request with no route fails the test with its method and path."""

    def __init__(self) -> None:
        session = requests.Session()
        session.mount("https://", _Adapter(self))
        super().__init__(session=session, session_owner=False)
        self.calls: list[Call] = []
        self._routes: dict[tuple[str, str], deque[Reply]] = {}
        self._prefixes: list[tuple[str, str, Reply]] = []

    def route(self, method: str, path: str, *answers: Reply) -> None:
        self._routes[(method.upper(), path.lower())] = deque(answers)

    def route_under(self, method: str, prefix: str, reply: Reply) -> None:
        self._prefixes.append((method.upper(), prefix.lower(), reply))

    def _reply(self, method: str, path: str) -> Reply:
        queue = self._routes.get((method, path.lower()))
        if queue:
            return queue.popleft() if len(queue) > 1 else queue[0]
        for m, prefix, reply in self._prefixes:
            if m == method and path.lower().startswith(prefix):
                return reply
        raise AssertionError(f"unexpected request {method} {path}")

    def answer(self, request: requests.PreparedRequest) -> requests.Response:
        url = urlsplit(str(request.url))
        raw = request.body
        raw_body = raw.decode() if isinstance(raw, bytes) else raw if isinstance(raw, str) else ""
        call = Call(
            method=str(request.method),
            path=url.path,
            query=dict(parse_qsl(url.query)),
            headers={k: str(v) for k, v in request.headers.items()},
            body=json.loads(raw_body) if raw_body else None,
        )
        self.calls.append(call)
        answer = self._reply(call.method, call.path)
        if answer is CONNECTION_ERROR:
            raise requests.exceptions.ConnectionError("connection refused (fake)")
        if callable(answer):
            answer = answer(call)
        assert isinstance(answer, Answer)
        payload = b"" if answer.body is None else json.dumps(answer.body).encode()
        raw = urllib3.HTTPResponse(
            body=io.BytesIO(payload),
            headers={"Content-Type": "application/json", **answer.headers},
            status=answer.status,
            preload_content=False,
        )
        return HTTPAdapter().build_response(request, raw)

    def made(self, method: str, path_end: str = "") -> list[Call]:
        return [c for c in self.calls if c.method == method and c.path.lower().endswith(path_end.lower())]


def fast_retry(attempts: int = 3) -> RetryPolicy:
    return RetryPolicy(attempts=attempts, initial_wait_s=0, max_wait_s=0, sleep=lambda _: None)


# -- canned VMs -------------------------------------------------------------------------------------------------


def vm_json(
    name: str,
    power: str | None = "running",
    *,
    provisioning: str = "Succeeded",
    agent: str | None = "ProvisioningState/succeeded",
    tags: dict[str, str] | None = None,
    location: str = "westeurope",
) -> dict[str, Any]:
    statuses = [{"code": f"ProvisioningState/{provisioning.lower()}"}]
    if power is not None:
        statuses.append({"code": f"PowerState/{power}"})
    view: dict[str, Any] = {"statuses": statuses}
    if agent is not None:
        view["vmAgent"] = {"statuses": [{"code": agent, "displayStatus": "Ready"}]}
    nic = {
        "name": f"{name}-nic",
        "properties": {"ipConfigurations": [{"name": "ipconfig1", "properties": {"subnet": {"id": SUBNET}}}]},
    }
    return {
        "id": f"{VMS}/{name}",
        "name": name,
        "type": "Microsoft.Compute/virtualMachines",
        "location": location,
        "tags": tags or {},
        "properties": {
            "provisioningState": provisioning,
            "instanceView": view,
            "storageProfile": {"imageReference": {"id": IMAGE}},
            "networkProfile": {"networkInterfaceConfigurations": [nic]},
        },
    }


@dataclass
class Rig:
    """The fake ARM with VMs in a resource group: ``vm(name, answers...)`` answers a GET of that VM and its
    place in a listing of the group (a 404 leaves it out of the listing, another error fails the listing),
    each answer in turn, so a test reads the same whether drctl GETs one VM or lists a tier."""

    arm: FakeArm
    compute: AzureVmCompute
    vms: dict[str, deque[Answer | object]] = field(default_factory=dict)

    def vm(self, name: str, *answers: Answer | object) -> None:
        self.arm.route("GET", f"{VMS}/{name}", *answers)
        self.vms[name] = deque(answers)
        self.arm.route("GET", VMS, self._listing)

    def _listing(self, call: Call) -> Answer:
        del call
        value = []
        for queue in self.vms.values():
            answer = queue.popleft() if len(queue) > 1 else queue[0]
            assert isinstance(answer, Answer), "a listing cannot fail to connect for one VM"
            if answer.status == 404:
                continue
            if answer.status >= 400:
                return answer
            value.append(answer.body)
        return ok({"value": value})


@pytest.fixture
def rig() -> Rig:
    arm = FakeArm()
    compute = azure_compute_for(
        ENV, RG, "West Europe", credential=StaticCredential(), transport=arm, retry=fast_retry()
    )
    return Rig(arm, compute)


def ok(body: Any = None, status: int = 200) -> Answer:
    return Answer(status, body)


# -- reading ----------------------------------------------------------------------------------------------------


def test_implements_the_compute_protocol(rig: Rig) -> None:
    assert isinstance(rig.compute, Compute)
    assert rig.compute.region == "westeurope"


@pytest.mark.parametrize(
    ("power", "provisioning", "state"),
    [
        ("running", "Succeeded", "running"),
        ("starting", "Updating", "pending"),
        ("stopping", "Updating", "stopping"),
        ("deallocating", "Updating", "stopping"),
        ("stopped", "Succeeded", "stopped"),
        ("deallocated", "Succeeded", "stopped"),
        (None, "Creating", "pending"),
        ("running", "Deleting", "shutting-down"),
    ],
)
def test_describe_maps_power_states(rig: Rig, power: str | None, provisioning: str, state: str) -> None:
    rig.vm("web-1", ok(vm_json("web-1", power, provisioning=provisioning, tags={"tier": "web"})))
    info = rig.compute.describe(["web-1"])["web-1"]
    assert (info.id, info.state, info.image, info.subnet) == ("web-1", state, IMAGE, SUBNET)
    assert info.tags == {"tier": "web"}
    (call,) = rig.arm.calls
    assert call.method == "GET"
    assert call.path == f"{VMS}/web-1"
    assert call.query["$expand"] == "instanceView"
    assert call.api_version  # whatever the SDK pins, it sends one
    assert call.headers["Authorization"] == f"Bearer {TOKEN}"


def test_describe_missing_vm_is_not_found(rig: Rig) -> None:
    rig.vm("web-1", ok(vm_json("web-1")))
    rig.vm("ghost", arm_error(404, "ResourceNotFound"))
    with pytest.raises(NotFound, match="ghost"):
        rig.compute.describe(["web-1", "ghost"])
    with pytest.raises(NotFound, match="ghost"):
        rig.compute.describe(["ghost"])


def test_a_tier_is_described_by_one_listing_not_a_get_per_vm(rig: Rig) -> None:
    names = [f"web-{n:02d}" for n in range(50)]
    for name in names:
        rig.vm(name, ok(vm_json(name, "deallocated")))
    rig.vm("unrelated", ok(vm_json("unrelated")))
    described = rig.compute.describe(names)
    assert sorted(described) == names
    assert {info.state for info in described.values()} == {"stopped"}
    (listing,) = rig.arm.calls
    assert listing.path == VMS
    assert listing.query["$expand"] == "instanceView", "the power states are in the instance views"


def test_a_selection_is_found_and_described_by_one_listing(rig: Rig) -> None:
    for n in range(20):
        rig.vm(f"db-{n:02d}", ok(vm_json(f"db-{n:02d}", "deallocated", tags={"tier": "db"})))
    rig.vm("web-00", ok(vm_json("web-00", tags={"tier": "web"})))
    found = rig.compute.find_described({"tier": "db"})
    assert sorted(found) == [f"db-{n:02d}" for n in range(20)]
    assert all(info.state == "stopped" and info.tags == {"tier": "db"} for info in found.values())
    assert [(c.method, c.path) for c in rig.arm.calls] == [("GET", VMS)]


def test_starting_a_tier_sends_every_start_at_once_after_one_listing(rig: Rig) -> None:
    """ARM has no batch start for VMs outside a scale set: one POST per VM, all in flight together. Each POST
    waits at a barrier only the whole tier can pass; sent one after another, the first would wait alone."""
    names = [f"app-{n}" for n in range(6)]
    barrier = threading.Barrier(len(names), timeout=10)

    def started(call: Call) -> Answer:
        del call
        barrier.wait()
        return ok(status=202)

    for name in names:
        rig.vm(name, ok(vm_json(name, "deallocated")))
        rig.arm.route("POST", f"{VMS}/{name}/start", started)
    rig.compute.start(names)
    assert sorted(c.path for c in rig.arm.made("POST")) == sorted(f"{VMS}/{n}/start" for n in names)
    assert len(rig.arm.made("GET")) == 1


def test_one_failed_start_still_sends_the_others_and_is_raised(rig: Rig) -> None:
    for name in ("a", "b", "c"):
        rig.vm(name, ok(vm_json(name, "deallocated")))
        rig.arm.route("POST", f"{VMS}/{name}/start", ok(status=202))
    rig.arm.route("POST", f"{VMS}/b/start", arm_error(409, "OperationNotAllowed", "quota"))
    with pytest.raises(Permanent, match="OperationNotAllowed"):
        rig.compute.start(["a", "b", "c"])
    assert sorted(c.path for c in rig.arm.made("POST")) == [f"{VMS}/{n}/start" for n in ("a", "b", "c")]


def test_missing_resource_group_says_so(rig: Rig) -> None:
    rig.vm("web-1", arm_error(404, "ResourceGroupNotFound"))
    with pytest.raises(NotFound, match="resource group"):
        rig.compute.describe(["web-1"])


def test_resource_ids_are_refused_as_ids(rig: Rig) -> None:
    with pytest.raises(NotFound, match="not a VM name"):
        rig.compute.describe([f"{VMS}/web-1"])
    assert rig.arm.calls == []


def test_find_filters_tags_location_and_deleting_across_pages(rig: Rig) -> None:
    tags = {"drctl-step": "restore-web", "tier": "web"}
    page1 = {
        "value": [
            vm_json("b-web", tags=tags),
            vm_json("other", tags={"drctl-step": "restore-db", "tier": "web"}),
            vm_json("elsewhere", tags=tags, location="northeurope"),
        ],
        "nextLink": f"https://management.azure.com{VMS}?api-version=2026-04-01&$skiptoken=2",
    }
    page2 = {"value": [vm_json("a-web", tags=tags), vm_json("dying", tags=tags, provisioning="Deleting")]}
    rig.arm.route("GET", VMS, ok(page1), ok(page2))
    assert rig.compute.find({"drctl-step": "restore-web"}) == ("a-web", "b-web")
    assert [c.path for c in rig.arm.calls] == [VMS, VMS]
    assert rig.arm.calls[1].query.get("$skiptoken") == "2"


def test_find_needs_tags(rig: Rig) -> None:
    with pytest.raises(ValueError, match="at least one tag"):
        rig.compute.find({})


def test_status_ok_needs_running_provisioned_and_agent_ready(rig: Rig) -> None:
    rig.vm("ready", ok(vm_json("ready")))
    rig.vm("no-agent", ok(vm_json("no-agent", agent="ProvisioningState/Unavailable")))
    rig.vm("off", ok(vm_json("off", "deallocated")))
    assert rig.compute.status_ok(["ready", "no-agent", "off"]) == {"ready": True, "no-agent": False, "off": False}


def test_status_ok_without_agent_requirement(rig: Rig) -> None:
    arm = FakeArm()
    compute = azure_compute_for(
        ENV, RG, "westeurope", credential=StaticCredential(), transport=arm, require_agent=False
    )
    arm.route("GET", f"{VMS}/bare", ok(vm_json("bare", agent=None)))
    assert compute.status_ok(["bare"]) == {"bare": True}


def test_wait_for_running_polls_until_reached(rig: Rig) -> None:
    rig.vm("web-1", ok(vm_json("web-1", "starting")), ok(vm_json("web-1", "running")))
    naps: list[float] = []

    def nap(seconds: float) -> bool:
        naps.append(seconds)
        return True

    result = rig.compute.wait(["web-1"], "running", time.monotonic() + 60, sleep=nap)
    assert result.reached
    assert result.states == {"web-1": "running"}
    assert len(naps) == 1


def test_wait_for_terminated_counts_a_vanished_vm(rig: Rig) -> None:
    rig.vm("web-1", ok(vm_json("web-1", provisioning="Deleting")), arm_error(404, "ResourceNotFound"))
    result = rig.compute.wait(["web-1"], "terminated", time.monotonic() + 60, sleep=lambda _: True)
    assert result.reached
    assert result.states == {"web-1": "terminated"}
    with pytest.raises(NotFound):  # describe itself stays strict
        rig.compute.describe(["web-1"])


# -- changing ---------------------------------------------------------------------------------------------------


def test_start_starts_only_stopped_vms(rig: Rig) -> None:
    rig.vm("off", ok(vm_json("off", "deallocated")))
    rig.vm("on", ok(vm_json("on", "running")))
    rig.arm.route("POST", f"{VMS}/off/start", ok(status=202))
    rig.compute.start(["off", "on"])
    posts = rig.arm.made("POST")
    assert [c.path for c in posts] == [f"{VMS}/off/start"]
    assert posts[0].body is None
    assert posts[0].api_version
    # Not waited on: no poll of an Azure-AsyncOperation or Location URL follows the POST.
    assert rig.arm.calls[-1].method == "POST"


def test_start_of_a_vm_being_deleted_is_permanent(rig: Rig) -> None:
    rig.vm("dying", ok(vm_json("dying", provisioning="Deleting")))
    with pytest.raises(Permanent, match="being deleted"):
        rig.compute.start(["dying"])
    assert rig.arm.made("POST") == []


def test_stop_deallocates_running_and_merely_stopped_vms(rig: Rig) -> None:
    rig.vm("on", ok(vm_json("on", "running")))
    rig.vm("halted", ok(vm_json("halted", "stopped")))
    rig.vm("done", ok(vm_json("done", "deallocated")))
    rig.arm.route("POST", f"{VMS}/on/deallocate", ok(status=202))
    rig.arm.route("POST", f"{VMS}/halted/deallocate", ok(status=202))
    rig.compute.stop(["on", "halted", "done"])
    assert sorted(c.path for c in rig.arm.made("POST")) == [f"{VMS}/halted/deallocate", f"{VMS}/on/deallocate"]


def test_stop_of_a_missing_vm_is_not_found(rig: Rig) -> None:
    rig.vm("ghost", arm_error(404, "ResourceNotFound"))
    with pytest.raises(NotFound, match="ghost"):
        rig.compute.stop(["ghost"])


def test_terminate_deletes_and_a_vanished_vm_is_already_terminated(rig: Rig) -> None:
    rig.vm("web-1", ok(vm_json("web-1")))
    rig.vm("gone", arm_error(404, "ResourceNotFound"))
    rig.vm("dying", ok(vm_json("dying", provisioning="Deleting")))
    rig.arm.route("DELETE", f"{VMS}/web-1", ok(status=202))
    rig.compute.terminate(["web-1", "gone", "dying"])
    deletes = rig.arm.made("DELETE")
    assert [c.path for c in deletes] == [f"{VMS}/web-1"]


def _created(call: Call) -> Answer:
    """ARM's answer to a VM PUT: the VM, being created."""
    return ok(vm_json(call.path.rsplit("/", 1)[-1], None, provisioning="Creating"), 201)


def test_launch_sends_image_size_subnet_nsg_and_tags(rig: Rig) -> None:
    rig.arm.route_under("PUT", f"{VMS}/", _created)
    tags = {"drctl-step": "restore-web", "tier": "web"}
    spec = LaunchSpec(
        image=IMAGE, instance_type="Standard_B2s", subnet=SUBNET, security_groups=(NSG,), count=2, tags=tags
    )
    ids = rig.compute.launch(spec)
    assert len(ids) == 2
    assert len(set(ids)) == 2
    # The PUTs go out together (d00b507), so they reach ARM in either order: matched by path, not position.
    puts = sorted(rig.arm.made("PUT"), key=lambda c: c.path)
    assert [c.path for c in puts] == sorted(f"{VMS}/{i}" for i in ids)
    for name, call in zip(sorted(ids), puts, strict=True):
        assert name.startswith("drctl-")
        body = call.body
        assert call.api_version
        assert body["location"] == "westeurope"
        assert body["tags"] == tags
        props = body["properties"]
        assert props["hardwareProfile"] == {"vmSize": "Standard_B2s"}
        assert props["storageProfile"]["imageReference"] == {"id": IMAGE}
        assert props["storageProfile"]["osDisk"] == {"createOption": "FromImage", "deleteOption": "Delete"}
        assert "osProfile" not in props  # a specialized image carries its own OS profile
        network = props["networkProfile"]
        assert network["networkApiVersion"] == NETWORK_API_VERSION
        (nic,) = network["networkInterfaceConfigurations"]
        assert nic["name"] == f"{name}-nic"
        assert nic["properties"]["primary"] is True
        assert nic["properties"]["deleteOption"] == "Delete"
        assert nic["properties"]["networkSecurityGroup"] == {"id": NSG}
        (ip,) = nic["properties"]["ipConfigurations"]
        assert ip["properties"]["subnet"] == {"id": SUBNET}
    # Not waited on: only the two PUTs went out.
    assert [c.method for c in rig.arm.calls] == ["PUT", "PUT"]


def test_launch_from_a_generalized_image_sends_an_ssh_only_os_profile() -> None:
    arm = FakeArm()
    arm.route_under("PUT", f"{VMS}/", _created)
    compute = azure_compute_for(
        ENV,
        RG,
        "westeurope",
        credential=StaticCredential(),
        transport=arm,
        admin_username="drops",
        ssh_public_key="ssh-ed25519 AAAAC3Nza test",
    )
    (name,) = compute.launch(LaunchSpec(image=IMAGE, instance_type="Standard_B2s", subnet=SUBNET, tags={"a": "b"}))
    (put,) = arm.made("PUT")
    os_profile = put.body["properties"]["osProfile"]
    assert os_profile["computerName"] == name
    assert os_profile["adminUsername"] == "drops"
    assert "adminPassword" not in os_profile
    linux = os_profile["linuxConfiguration"]
    assert linux["disablePasswordAuthentication"] is True
    assert linux["ssh"]["publicKeys"] == [
        {"path": "/home/drops/.ssh/authorized_keys", "keyData": "ssh-ed25519 AAAAC3Nza test"}
    ]
    (nic,) = put.body["properties"]["networkProfile"]["networkInterfaceConfigurations"]
    assert "networkSecurityGroup" not in nic["properties"]


def test_launch_from_a_shared_gallery_uses_its_id_field(rig: Rig) -> None:
    rig.arm.route_under("PUT", f"{VMS}/", _created)
    shared = "/SharedGalleries/abc-def/Images/web/Versions/latest"
    rig.compute.launch(LaunchSpec(image=shared, instance_type="Standard_B2s", subnet=SUBNET, tags={"a": "b"}))
    (put,) = rig.arm.made("PUT")
    assert put.body["properties"]["storageProfile"]["imageReference"] == {"sharedGalleryImageId": shared}


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        (LaunchSpec(template="lt-web", subnet=SUBNET, instance_type="Standard_B2s"), "no launch templates"),
        (LaunchSpec(image=IMAGE, instance_type="Standard_B2s"), "subnet"),
        (LaunchSpec(image=IMAGE, subnet=SUBNET), "instance_type"),
        (
            LaunchSpec(image=IMAGE, subnet=SUBNET, instance_type="Standard_B2s", security_groups=(NSG, NSG + "2")),
            "one network security group",
        ),
    ],
)
def test_launch_refuses_what_azure_cannot_do(rig: Rig, spec: LaunchSpec, match: str) -> None:
    with pytest.raises(Permanent, match=match):
        rig.compute.launch(spec)
    assert rig.arm.calls == []


def test_launch_failure_after_a_first_vm_names_it(rig: Rig) -> None:
    served: list[str] = []
    lock = threading.Lock()

    def first_fits_then_quota(call: Call) -> Answer:
        with lock:  # the PUTs arrive together: the first one served is the one that fits
            served.append(call.path)
            fits = len(served) == 1
        if fits:
            return _created(call)
        return arm_error(409, "OperationNotAllowed", "Operation results in exceeding quota limits")

    rig.arm.route_under("PUT", f"{VMS}/", first_fits_then_quota)
    spec = LaunchSpec(image=IMAGE, instance_type="Standard_B2s", subnet=SUBNET, count=2, tags={"a": "b"})
    with pytest.raises(Permanent, match="quota") as err:
        rig.compute.launch(spec)
    first = served[0].rsplit("/", 1)[-1]
    assert f"already created: {first}" in str(err.value)


def test_a_launch_of_several_sends_every_put_at_once(rig: Rig) -> None:
    count = 5
    barrier = threading.Barrier(count, timeout=10)

    def created_together(call: Call) -> Answer:
        barrier.wait()  # passed only when all five PUTs are in flight
        return _created(call)

    rig.arm.route_under("PUT", f"{VMS}/", created_together)
    spec = LaunchSpec(image=IMAGE, instance_type="Standard_B2s", subnet=SUBNET, count=count, tags={"a": "b"})
    names = rig.compute.launch(spec)
    assert len(set(names)) == count
    assert sorted(c.path.rsplit("/", 1)[-1] for c in rig.arm.made("PUT")) == sorted(names)


# -- errors -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "kind", "attempts"),
    [
        (arm_error(401, "InvalidAuthenticationToken"), AuthError, 1),
        (arm_error(403, "AuthorizationFailed", "The client does not have authorization"), PermissionDenied, 1),
        (arm_error(409, "OperationNotAllowed", "Operation 'start' is not allowed"), Permanent, 1),
        (arm_error(409, "AnotherOperationInProgress"), Transient, 3),
        (arm_error(409, "AllocationFailed"), Transient, 3),
        (arm_error(412, "PreconditionFailed"), Transient, 3),
        (arm_error(400, "InvalidParameter", "The value of parameter vmSize is invalid.\nTry again."), Permanent, 1),
        (arm_error(429, "TooManyRequests"), Transient, 3),
        (arm_error(500, "InternalServerError"), Transient, 3),
        (arm_error(503, "ServiceUnavailable"), Transient, 3),
        (CONNECTION_ERROR, Transient, 3),
    ],
)
def test_errors_are_translated_and_only_transient_ones_retried(
    rig: Rig, answer: Answer | object, kind: type[Exception], attempts: int
) -> None:
    rig.vm("off", ok(vm_json("off", "deallocated")))
    rig.arm.route("POST", f"{VMS}/off/start", answer)
    with pytest.raises(kind) as err:
        rig.compute.start(["off"])
    assert type(err.value) is kind
    message = str(err.value)
    assert "\n" not in message
    assert TOKEN not in message
    assert "off" in message
    # Our RetryPolicy made every attempt; the SDK's own retry policy made none of its own.
    assert len(rig.arm.made("POST", "/start")) == attempts


def test_permanent_errors_carry_azures_reason_on_one_line(rig: Rig) -> None:
    rig.vm("off", ok(vm_json("off", "deallocated")))
    rig.arm.route("POST", f"{VMS}/off/start", arm_error(400, "InvalidParameter", "Bad vmSize.\nUse another."))
    with pytest.raises(Permanent, match=r"InvalidParameter: Bad vmSize\. Use another\."):
        rig.compute.start(["off"])


def test_sdk_retries_are_off() -> None:
    arm = FakeArm()
    compute = azure_compute_for(
        ENV, RG, "westeurope", credential=StaticCredential(), transport=arm, retry=fast_retry(attempts=1)
    )
    arm.route("GET", f"{VMS}/web-1", arm_error(503, "ServiceUnavailable"))
    with pytest.raises(Transient):
        compute.describe(["web-1"])
    assert len(arm.calls) == 1


def test_unavailable_credential_is_an_auth_error_naming_the_fixes() -> None:
    arm = FakeArm()
    compute = azure_compute_for(ENV, RG, "westeurope", credential=UnavailableCredential(), transport=arm)
    with pytest.raises(AuthError, match="az login") as err:
        compute.describe(["web-1"])
    assert "AZURE_CLIENT_ID" in str(err.value)
    assert arm.calls == []  # nothing reached Azure Resource Manager


@pytest.mark.parametrize("value", [None, "", "not-a-uuid"])
def test_subscription_id_is_required(value: str | None) -> None:
    env = {} if value is None else {"AZURE_SUBSCRIPTION_ID": value}
    with pytest.raises(InvalidInput, match="AZURE_SUBSCRIPTION_ID"):
        azure_compute_for(env, RG, "westeurope", credential=StaticCredential(), transport=FakeArm())


@pytest.fixture(autouse=True)
def _no_real_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Belt and braces: a request that escaped the fake transport would fail instead of reaching Azure."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a real HTTP connection was attempted")

    monkeypatch.setattr(HTTPAdapter, "send", refuse)


# -- recorded ARM answers ------------------------------------------------------------------------------------------

SPEC_EXAMPLE = Path(__file__).parent / "data" / "arm" / "VirtualMachine_Get_InstanceView.json"
"""The response of Azure's own example ``VirtualMachine_Get_InstanceView.json`` (Azure/azure-rest-api-specs,
specification/compute/resource-manager/Microsoft.Compute/ComputeRP/stable/2024-07-01/examples/
virtualMachineExamples/, commit ba16d1ab3479ee43b0db0da3dbc19cc2306a221e), with the patch-status and
boot-diagnostics sections left out: a real instance view as the API documents it."""


def test_a_documented_instance_view_reads_as_running_with_its_agent_ready(rig: Rig) -> None:
    view = json.loads(SPEC_EXAMPLE.read_text())["responses"]["200"]["body"]
    body = vm_json("myVM", None, agent=None)
    body["properties"]["instanceView"] = view
    rig.vm("myVM", ok(body))
    assert rig.compute.describe(["myVM"])["myVM"].state == "running"
    assert rig.compute.status_ok(["myVM"]) == {"myVM": True}
    # The same view with the VM deallocated, as the Deallocate example leaves it, is a stopped standby.
    stopped = json.loads(json.dumps(view).replace("PowerState/running", "PowerState/deallocated"))
    body["properties"]["instanceView"] = stopped
    rig.vm("myVM", ok(body))
    assert rig.compute.describe(["myVM"])["myVM"].state == "stopped"


def test_documented_instance_views_in_a_listing_read_as_they_do_one_by_one(rig: Rig) -> None:
    """A listing with ``$expand=instanceView`` carries each VM's view where a GET with the same expand does
    (``properties.instanceView``): the spec example's view, in a listing of two VMs."""
    view = json.loads(SPEC_EXAMPLE.read_text())["responses"]["200"]["body"]
    for name, power in (("on", "running"), ("off", "deallocated")):
        body = vm_json(name, None, agent=None)
        powered = json.dumps(view).replace("PowerState/running", f"PowerState/{power}")
        body["properties"]["instanceView"] = json.loads(powered)
        rig.vm(name, ok(body))
    assert {n: i.state for n, i in rig.compute.describe(["on", "off"]).items()} == {"on": "running", "off": "stopped"}
    assert rig.compute.status_ok(["on", "off"]) == {"on": True, "off": False}
