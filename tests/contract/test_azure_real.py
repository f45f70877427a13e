"""The Azure VM, DNS and Traffic Manager providers against a real subscription.

No emulator exists for Azure compute or DNS (Azurite covers storage only), so these run only when pointed at a
real subscription and resource group; otherwise they skip saying how to run them. They only read, except
that a VM named by DRCTL_AZURE_TEST_VM is started and deallocated again (it is left deallocated).

    AZURE_SUBSCRIPTION_ID            the subscription (required)
    DRCTL_AZURE_TEST_RESOURCE_GROUP  a resource group to list and describe in (required)
    DRCTL_AZURE_TEST_LOCATION        the location ``find`` looks in (default westeurope)
    DRCTL_AZURE_TEST_VM              a disposable VM in that group to start and deallocate (optional)
    DRCTL_AZURE_TEST_DNS_ZONE        an Azure DNS zone in that group to read (optional)
    DRCTL_AZURE_TEST_TM_PROFILE      a Traffic Manager priority profile in that group to read (optional)

Credentials come from ``DefaultAzureCredential`` (``az login``, a managed identity, or AZURE_CLIENT_ID/...).
"""

from __future__ import annotations

import os
import time
import uuid

import pytest

from orchestrator.errors import NotFound
from orchestrator.providers.azure_compute import AzureVmCompute, azure_compute_for
from orchestrator.providers.azure_dns import azure_dns_for
from orchestrator.providers.azure_traffic_manager import traffic_manager_for
from orchestrator.retry import RetryPolicy

SKIP_REASON = (
    "no Azure emulator exists for compute/DNS: set AZURE_SUBSCRIPTION_ID and DRCTL_AZURE_TEST_RESOURCE_GROUP "
    "to run against a real subscription"
)
ENV = dict(os.environ)
GROUP = ENV.get("DRCTL_AZURE_TEST_RESOURCE_GROUP", "")
pytestmark = pytest.mark.skipif(not (ENV.get("AZURE_SUBSCRIPTION_ID") and GROUP), reason=SKIP_REASON)
RETRY = RetryPolicy(attempts=3, initial_wait_s=1.0, max_wait_s=10.0)


def _optional(var: str) -> str:
    value = ENV.get(var, "")
    if not value:
        pytest.skip(f"set {var} to run this check")
    return value


@pytest.fixture(scope="module")
def compute() -> AzureVmCompute:
    return azure_compute_for(ENV, GROUP, ENV.get("DRCTL_AZURE_TEST_LOCATION", "westeurope"), retry=RETRY)


def test_find_with_a_fresh_tag_finds_nothing(compute: AzureVmCompute) -> None:
    assert compute.find({"drctl-contract": uuid.uuid4().hex}) == ()


def test_describe_of_an_unknown_vm_is_not_found(compute: AzureVmCompute) -> None:
    with pytest.raises(NotFound):
        compute.describe([f"drctl-missing-{uuid.uuid4().hex[:8]}"])


def test_the_test_vm_is_described(compute: AzureVmCompute) -> None:
    vm = _optional("DRCTL_AZURE_TEST_VM")
    info = compute.describe([vm])[vm]
    assert info.id == vm
    assert info.state in {"pending", "running", "stopping", "stopped", "shutting-down"}
    assert set(compute.status_ok([vm])) == {vm}


@pytest.mark.timeout(1200)
def test_the_test_vm_starts_and_deallocates(compute: AzureVmCompute) -> None:
    vm = _optional("DRCTL_AZURE_TEST_VM")
    compute.start([vm])
    compute.start([vm])  # idempotent
    assert compute.wait([vm], "running", time.monotonic() + 480).reached
    compute.stop([vm])
    compute.stop([vm])  # idempotent
    assert compute.wait([vm], "stopped", time.monotonic() + 480).reached


def test_dns_zone_apex_has_name_servers() -> None:
    zone = _optional("DRCTL_AZURE_TEST_DNS_ZONE")
    dns = azure_dns_for(ENV, GROUP, retry=RETRY)
    assert dns.zone_id(zone).lower().endswith(f"/dnszones/{zone.rstrip('.').lower()}")
    (ns,) = dns.records(zone, "@", "NS")
    assert ns.values
    assert dns.records(zone, f"drctl-absent-{uuid.uuid4().hex[:8]}", "A") == ()


def test_traffic_manager_profile_has_one_primary() -> None:
    profile = _optional("DRCTL_AZURE_TEST_TM_PROFILE")
    tm = traffic_manager_for(ENV, GROUP, retry=RETRY)
    records = tm.records(profile, profile, "CNAME")
    assert records
    assert [r.failover for r in records].count("PRIMARY") == 1
    assert all(r.name.endswith(".trafficmanager.net.") for r in records)
