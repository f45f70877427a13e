"""``Compute`` on Azure virtual machines (azure-mgmt-compute), for one resource group in one location.

Choices, and why:

- Ids are VM *names* in the resource group, not full resource ids: they are what the portal, ``az vm`` and the
  Pulumi outputs show, and the resource group is fixed per provider anyway. A value with a ``/`` in it is
  refused as ``NotFound`` naming the mistake.
- ``stop`` deallocates (``begin_deallocate``). A VM that is only powered off (``PowerState/stopped``) keeps its
  host reserved and is still billed for compute; a deallocated one is billed for its disks only, which is the
  point of a stopped standby. ``stop`` therefore also deallocates VMs found merely powered off.
- Long-running operations are started with ``polling=False``: the request is sent and checked, and no poller
  thread keeps polling Azure in the background. Waiting is ``Compute.wait``'s job (bounded, cancellable),
  exactly as for EC2, whose calls return at once too.
- ``launch`` creates each VM with a PUT under a name chosen up front, so it is safe to retry (a repeat PUT of
  the same name converges instead of launching a second VM), unlike EC2's ``run_instances``. The NIC is
  declared inside the VM (``network_interface_configurations``, Microsoft.Network API 2022-11-01), because
  drctl does not depend on azure-mgmt-network; NIC and OS disk are deleted with the VM.
- ARM forgets a deleted VM, where EC2 shows it ``terminated`` for a while. So ``terminate`` treats a VM that
  no longer exists as already terminated (a repeat after success must not fail), and ``wait(..., "terminated")``
  counts a vanished VM as terminated. ``describe`` still raises ``NotFound`` for a missing VM.
- Private and public IPs live on the NIC (Microsoft.Network), so ``InstanceInfo.private_ip``/``public_ip`` are
  None here.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from azure.core.credentials import TokenCredential
from azure.core.exceptions import AzureError, ResourceNotFoundError
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.compute.models import (
    HardwareProfile,
    ImageReference,
    LinuxConfiguration,
    NetworkProfile,
    OSDisk,
    OSProfile,
    SshConfiguration,
    SshPublicKey,
    StorageProfile,
    SubResource,
    VirtualMachine,
    VirtualMachineNetworkInterfaceConfiguration,
    VirtualMachineNetworkInterfaceConfigurationProperties,
    VirtualMachineNetworkInterfaceIPConfiguration,
    VirtualMachineNetworkInterfaceIPConfigurationProperties,
    VirtualMachineProperties,
)

from orchestrator.errors import DrError, NotFound, Permanent
from orchestrator.providers.azure_mgmt import AzureTransport, error_code, mgmt_client, translate_azure_mgmt_error
from orchestrator.providers.compute import InstanceInfo, LaunchSpec, WaitResult, wait_for_state
from orchestrator.retry import RetryPolicy

T = TypeVar("T")

LIST_FROM = 2
"""Describing this many VMs or more lists the group once instead of one GET per VM."""
BEGIN_THREADS = 16
"""Start, deallocate or delete requests in flight at once (each is one short POST or DELETE)."""

NETWORK_API_VERSION = "2022-11-01"
_SERVICE = "Azure Compute"
# PowerState codes of the instance view, in the protocol's (EC2's) words.
_POWER_STATES = {
    "running": "running",
    "starting": "pending",
    "stopping": "stopping",
    "deallocating": "stopping",
    "stopped": "stopped",
    "deallocated": "stopped",
}


@dataclass(frozen=True)
class _Vm:
    """What one VM's model and instance view say, beyond ``InstanceInfo``."""

    info: InstanceInfo
    power: str  # the raw PowerState (``deallocated``, ``stopped``...) or '' before the VM has one
    provisioned: bool  # ProvisioningState succeeded
    agent_ready: bool


def _names(ids: Sequence[str]) -> str:
    shown = ", ".join(ids[:5])
    return f"VM(s) {shown}" + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")


def _check_name(name: str, group: str) -> None:
    if "/" in name or not name:
        raise NotFound(f"{name!r} is not a VM name; give the name of a VM in resource group {group}")


def _location(value: str | None) -> str:
    """``East US`` and ``eastus`` are the same location; ARM answers the latter."""
    return (value or "").replace(" ", "").lower()


class AzureVmCompute:
    """VMs of one resource group and location. ``client`` must be built with SDK retries off
    (:func:`azure_compute_for` does). ``admin_username``/``ssh_public_key`` are needed only to launch from a
    *generalized* image (Azure then requires an OS profile); specialized images, the usual DR case, need none.
    ``require_agent`` makes ``status_ok`` also wait for the Azure VM agent to report Ready."""

    def __init__(
        self,
        client: ComputeManagementClient,
        resource_group: str,
        location: str,
        *,
        retry: RetryPolicy | None = None,
        admin_username: str | None = None,
        ssh_public_key: str | None = None,
        name_prefix: str = "drctl",
        require_agent: bool = True,
    ) -> None:
        if (admin_username is None) != (ssh_public_key is None):
            raise ValueError("give admin_username and ssh_public_key together, or neither")
        self._client = client
        self._group = resource_group
        self._location = _location(location)
        self._retry = retry or RetryPolicy()
        self._admin = admin_username
        self._ssh_key = ssh_public_key
        self._prefix = name_prefix
        self._require_agent = require_agent

    @property
    def region(self) -> str:
        return self._location

    @property
    def resource_group(self) -> str:
        return self._group

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        return self._retry.call_translating(
            fn, (AzureError,), lambda exc: translate_azure_mgmt_error(exc, what, service=_SERVICE)
        )

    # -- reading ------------------------------------------------------------------------------------------------

    def _get(self, name: str) -> VirtualMachine | None:
        """The VM with its instance view, or None if the resource group has no VM of that name."""
        _check_name(name, self._group)
        vms = self._client.virtual_machines

        def fetch() -> VirtualMachine | None:
            try:
                return vms.get(self._group, name, expand="instanceView")
            except ResourceNotFoundError as exc:
                if error_code(exc) in ("ResourceGroupNotFound", "SubscriptionNotFound"):
                    raise  # the whole group is wrong: translated with the fix, not "VM missing"
                return None

        return self._call(f"VM {name} in resource group {self._group}", fetch)

    def _describe(self, ids: Sequence[str]) -> tuple[dict[str, _Vm], list[str]]:
        """The VMs found and the names missing. One VM is one GET; a tier is one listing of the group with
        every VM's instance view (paged by ARM), not a GET per VM: a wait over fifty VMs polls once, not fifty
        times, within ARM's read limits."""
        wanted = list(dict.fromkeys(ids))
        if len(wanted) >= LIST_FROM:
            for name in wanted:
                _check_name(name, self._group)
            listed = self._listed(f"{_names(wanted)} in resource group {self._group}")
            views = {name: _view(name, listed[name]) for name in wanted if name in listed}
            return views, [name for name in wanted if name not in listed]
        found: dict[str, _Vm] = {}
        missing: list[str] = []
        for name in wanted:
            vm = self._get(name)
            if vm is None:
                missing.append(name)
            else:
                found[name] = _view(name, vm)
        return found, missing

    def _listed(self, what: str) -> dict[str, VirtualMachine]:
        """Every VM of the resource group with its instance view, by name, from one paginated listing."""
        vms: dict[str, VirtualMachine] = {}

        def fetch() -> None:
            vms.clear()  # a retry lists again from the top
            for vm in self._client.virtual_machines.list(self._group, expand="instanceView"):
                if vm.name:
                    vms[vm.name] = vm

        self._call(what, fetch)
        return vms

    def describe(self, ids: Sequence[str]) -> dict[str, InstanceInfo]:
        found, missing = self._describe(ids)
        if missing:
            raise NotFound(f"{_names(missing)} does not exist in resource group {self._group}")
        return {name: vm.info for name, vm in found.items()}

    def _describe_gone_as_terminated(self, ids: Sequence[str]) -> dict[str, InstanceInfo]:
        # A deleted VM vanishes from ARM: waiting for termination, that is what terminated looks like.
        found, missing = self._describe(ids)
        infos = {name: vm.info for name, vm in found.items()}
        infos.update({name: InstanceInfo(id=name, state="terminated") for name in missing})
        return infos

    def find(self, tags: Mapping[str, str]) -> tuple[str, ...]:
        return tuple(sorted(self.find_described(tags)))

    def find_described(self, tags: Mapping[str, str]) -> dict[str, InstanceInfo]:
        if not tags:
            raise ValueError("find needs at least one tag; an empty filter would select every VM")
        wanted = dict(tags)
        # ARM cannot filter VMs by tag server-side, so the group is listed (with the instance views, which hold
        # the power states) and filtered here: one listing describes the whole selection.
        listed = self._listed(f"VMs tagged {wanted} in resource group {self._group}")
        found: dict[str, InstanceInfo] = {}
        for name, vm in sorted(listed.items()):
            props = vm.properties
            deleting = props is not None and (props.provisioning_state or "").lower() == "deleting"
            vm_tags = vm.tags or {}
            if (
                not deleting
                and _location(vm.location) == self._location
                and all(vm_tags.get(k) == v for k, v in wanted.items())
            ):
                found[name] = _view(name, vm).info
        return found

    def status_ok(self, ids: Sequence[str]) -> dict[str, bool]:
        found, _missing = self._describe(ids)
        ok = dict.fromkeys(ids, False)
        for name, vm in found.items():
            agent_ok = vm.agent_ready or not self._require_agent
            ok[name] = vm.info.state == "running" and vm.provisioned and agent_ok
        return ok

    def wait(
        self, ids: Sequence[str], state: str, deadline: float, sleep: Callable[[float], bool] | None = None
    ) -> WaitResult:
        describe = self._describe_gone_as_terminated if state == "terminated" else self.describe
        return wait_for_state(self, ids, state, deadline, sleep=sleep, describe=describe)

    # -- changing -----------------------------------------------------------------------------------------------

    def start(self, ids: Sequence[str]) -> None:
        vms = self._strict(ids)
        gone = [n for n, vm in vms.items() if vm.info.state == "shutting-down"]
        if gone:
            raise Permanent(f"{_names(gone)} is being deleted and cannot be started; launch a replacement")
        todo = [n for n, vm in vms.items() if vm.info.state in ("stopped", "stopping")]
        self._begin_each(todo, "start", self._client.virtual_machines.begin_start)

    def stop(self, ids: Sequence[str]) -> None:
        vms = self._strict(ids)
        gone = [n for n, vm in vms.items() if vm.info.state == "shutting-down"]
        if gone:
            raise Permanent(f"{_names(gone)} is being deleted and cannot be stopped")
        # Powered off but not deallocated still bills compute: deallocate those too.
        todo = [n for n, vm in vms.items() if vm.info.state in ("pending", "running") or vm.power == "stopped"]
        self._begin_each(todo, "deallocation", self._client.virtual_machines.begin_deallocate)

    def terminate(self, ids: Sequence[str]) -> None:
        found, _already_gone = self._describe(ids)
        todo = [n for n, vm in found.items() if vm.info.state != "shutting-down"]
        self._begin_each(todo, "deletion", self._client.virtual_machines.begin_delete)

    def launch(self, spec: LaunchSpec) -> tuple[str, ...]:
        if spec.template is not None:
            raise Permanent(
                "Azure has no launch templates; give 'image' (a gallery image version or managed image id), "
                "'instance_type' and 'subnet' instead of 'template'"
            )
        if spec.image is None or spec.subnet is None or spec.instance_type is None:
            raise Permanent(
                "an Azure launch needs 'image' (image resource id), 'instance_type' (VM size such as "
                "Standard_B2s) and 'subnet' (subnet resource id)"
            )
        if len(spec.security_groups) > 1:
            raise Permanent("an Azure NIC takes one network security group; give at most one in 'security_groups'")
        names = [f"{self._prefix}-{secrets.token_hex(4)}" for _ in range(spec.count)]

        def create(name: str) -> None:
            # Retried: the PUT names its VM, so a repeat converges on the same VM instead of adding one.
            self._begin(
                f"launch of VM {name} from {spec.image}",
                self._client.virtual_machines.begin_create_or_update,
                name,
                self._vm_body(name, spec),
            )

        # One PUT per VM (ARM creates VMs one by one outside a scale set), all in flight together.
        with ThreadPoolExecutor(max_workers=min(BEGIN_THREADS, len(names)), thread_name_prefix="azure-vm") as pool:
            outcomes = list(zip(names, [pool.submit(create, name) for name in names], strict=True))
        created = [name for name, future in outcomes if future.exception() is None]
        failed = next((future.exception() for _, future in outcomes if future.exception() is not None), None)
        if failed is None:
            return tuple(created)
        if not created or not isinstance(failed, DrError):
            raise failed
        raise type(failed)(f"{failed} (already created: {', '.join(created)}; find them by their tags)") from failed

    # -- plumbing -----------------------------------------------------------------------------------------------

    def _begin(self, what: str, operation: Callable[..., object], *args: object) -> None:
        """Send a long-running operation's first request and return: ``polling=False`` checks the answer and
        leaves no poller thread behind; ``wait`` observes the outcome."""
        self._call(what, lambda: operation(self._group, *args, polling=False))

    def _begin_each(self, names: Sequence[str], verb: str, operation: Callable[..., object]) -> None:
        """``operation`` on each VM, the requests in flight together: ARM has no batch start, deallocate or
        delete for VMs outside a scale set, so a tier is one request per VM, sent at once rather than in turn.
        Every request is sent even when one fails; the first failure is raised after."""
        if not names:
            return
        with ThreadPoolExecutor(max_workers=min(BEGIN_THREADS, len(names)), thread_name_prefix="azure-vm") as pool:
            futures = [pool.submit(self._begin, f"{verb} of VM {name}", operation, name) for name in names]
        for future in futures:
            error = future.exception()
            if error is not None:
                raise error

    def _strict(self, ids: Sequence[str]) -> dict[str, _Vm]:
        found, missing = self._describe(ids)
        if missing:
            raise NotFound(f"{_names(missing)} does not exist in resource group {self._group}")
        return found

    def _vm_body(self, name: str, spec: LaunchSpec) -> VirtualMachine:
        assert spec.image is not None  # checked by launch
        assert spec.subnet is not None
        ip_config = VirtualMachineNetworkInterfaceIPConfiguration(
            name="ipconfig1",
            properties=VirtualMachineNetworkInterfaceIPConfigurationProperties(
                subnet=SubResource(id=spec.subnet), primary=True
            ),
        )
        nsg = SubResource(id=spec.security_groups[0]) if spec.security_groups else None
        nic = VirtualMachineNetworkInterfaceConfiguration(
            name=f"{name}-nic",
            properties=VirtualMachineNetworkInterfaceConfigurationProperties(
                primary=True, delete_option="Delete", network_security_group=nsg, ip_configurations=[ip_config]
            ),
        )
        os_profile = None
        if self._admin is not None and self._ssh_key is not None:
            key = SshPublicKey(path=f"/home/{self._admin}/.ssh/authorized_keys", key_data=self._ssh_key)
            os_profile = OSProfile(
                computer_name=name,
                admin_username=self._admin,
                linux_configuration=LinuxConfiguration(
                    disable_password_authentication=True, ssh=SshConfiguration(public_keys=[key])
                ),
            )
        properties = VirtualMachineProperties(
            hardware_profile=HardwareProfile(vm_size=spec.instance_type),
            storage_profile=StorageProfile(
                image_reference=_image_reference(spec.image),
                os_disk=OSDisk(create_option="FromImage", delete_option="Delete"),
            ),
            os_profile=os_profile,
            network_profile=NetworkProfile(
                network_api_version=NETWORK_API_VERSION, network_interface_configurations=[nic]
            ),
        )
        return VirtualMachine(location=self._location, tags=dict(spec.tags), properties=properties)


def _image_reference(image: str) -> ImageReference:
    """Gallery images shared directly or to the community have ids of their own kinds; any other id (a gallery
    image version in this tenant, a managed image) goes in ``id``."""
    lowered = image.lower()
    if lowered.startswith("/sharedgalleries/"):
        return ImageReference(shared_gallery_image_id=image)
    if lowered.startswith("/communitygalleries/"):
        return ImageReference(community_gallery_image_id=image)
    return ImageReference(id=image)


def _view(name: str, vm: VirtualMachine) -> _Vm:
    props = vm.properties
    provisioning = ((props.provisioning_state if props else None) or "").lower()
    view = props.instance_view if props else None
    codes = [s.code or "" for s in (view.statuses or [])] if view else []
    power = next((c.split("/", 1)[1].lower() for c in codes if c.startswith("PowerState/")), "")
    # No PowerState yet (being created) reads as pending, like a fresh EC2 instance.
    state = "shutting-down" if provisioning == "deleting" else _POWER_STATES.get(power, "pending")
    agent = view.vm_agent if view else None
    agent_codes = [s.code or "" for s in (agent.statuses or [])] if agent else []
    image_ref = props.storage_profile.image_reference if props and props.storage_profile else None
    info = InstanceInfo(
        id=name,
        state=state,
        image=_image_id(image_ref),
        subnet=_subnet(vm),
        tags=dict(vm.tags or {}),
    )
    return _Vm(
        info=info,
        power=power,
        provisioned=provisioning == "succeeded",
        agent_ready="ProvisioningState/succeeded" in agent_codes,
    )


def _image_id(ref: ImageReference | None) -> str | None:
    if ref is None:
        return None
    return ref.id or ref.shared_gallery_image_id or ref.community_gallery_image_id


def _subnet(vm: VirtualMachine) -> str | None:
    network = vm.properties.network_profile if vm.properties else None
    for nic in (network.network_interface_configurations or []) if network else []:
        for ip in (nic.properties.ip_configurations or []) if nic.properties else []:
            if ip.properties and ip.properties.subnet:
                return ip.properties.subnet.id
    return None


def azure_compute_for(
    env: Mapping[str, str],
    resource_group: str,
    location: str,
    *,
    credential: TokenCredential | None = None,
    transport: AzureTransport | None = None,
    retry: RetryPolicy | None = None,
    admin_username: str | None = None,
    ssh_public_key: str | None = None,
    require_agent: bool = True,
) -> AzureVmCompute:
    """The ``Compute`` for VMs of ``resource_group`` in ``location``, subscription from
    ``AZURE_SUBSCRIPTION_ID``; ``credential`` and ``transport`` are for tests."""
    client = mgmt_client(ComputeManagementClient, env, credential=credential, transport=transport)
    return AzureVmCompute(
        client,
        resource_group,
        location,
        retry=retry,
        admin_username=admin_username,
        ssh_public_key=ssh_public_key,
        require_agent=require_agent,
    )
