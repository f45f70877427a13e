"""Azure Traffic Manager priority profiles as a ``Dns``: the Azure counterpart of Route53 failover records.

A profile with the *Priority* routing method answers its DNS name with the enabled, healthy endpoint of the
lowest priority number. In the ``Dns`` vocabulary:

- ``zone`` is the profile's name (or ARM id) in the provider's resource group;
- each endpoint is one record set: ``set_identifier`` is the endpoint's name, its value the endpoint's target,
  and the endpoint with the lowest priority is PRIMARY, every other one SECONDARY;
- ``name`` and ``type`` label the records (the profile has one DNS name, ``<relative>.trafficmanager.net``,
  which custom domains CNAME to), so they are reported back but not used to look anything up.

``promote`` gives the named endpoint priority 1 and the others 2, 3... in their current order, in one PUT of
the whole profile: priorities must be unique within a profile, so moving endpoints one by one would collide
(or pass through a state with the wrong endpoint first). A profile has no etag to guard that read-modify-write;
the window is one GET to one PUT.

Traffic Manager applies a profile change synchronously; resolvers see it once their cached answer expires
(the profile's TTL), which no API reports. So a change is reported INSYNC at once.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from enum import Enum
from typing import TypeVar

from azure.core.credentials import TokenCredential
from azure.core.exceptions import AzureError
from azure.mgmt.trafficmanager import TrafficManagerManagementClient
from azure.mgmt.trafficmanager.models import Endpoint, Profile

from orchestrator.errors import NotFound, Permanent
from orchestrator.providers.azure_mgmt import AzureTransport, mgmt_client, translate_azure_mgmt_error
from orchestrator.providers.dns import ChangeResult, ChangeStatus, RecordSet, fqdn
from orchestrator.retry import RetryPolicy

T = TypeVar("T")

CHANGE_PREFIX = "azure-tm:"
_SERVICE = "Azure Traffic Manager"
_PROFILE_ID = re.compile(
    r"/subscriptions/[^/]+/resourceGroups/([^/]+)/providers/Microsoft\.Network/trafficManagerProfiles/([^/]+)\Z",
    re.I,
)


class TrafficManagerDns:
    """Traffic Manager profiles of one resource group, through one client with SDK retries off."""

    def __init__(
        self, client: TrafficManagerManagementClient, resource_group: str, *, retry: RetryPolicy | None = None
    ) -> None:
        self._client = client
        self._group = resource_group
        self._retry = retry or RetryPolicy()

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        return self._retry.call_translating(
            fn, (AzureError,), lambda exc: translate_azure_mgmt_error(exc, what, service=_SERVICE)
        )

    def _profile(self, zone: str) -> tuple[str, Profile]:
        name = self._profile_name(zone)
        return name, self._call(f"Traffic Manager profile {name}", lambda: self._client.profiles.get(self._group, name))

    # -- Dns ----------------------------------------------------------------------------------------------------

    def zone_id(self, zone: str) -> str:
        name, profile = self._profile(zone)
        return str(profile.id or name)

    def records(self, zone: str, name: str, type: str) -> tuple[RecordSet, ...]:
        _, profile = self._profile(zone)
        return _records(profile, type)

    def promote(self, zone: str, name: str, type: str, set_identifier: str) -> ChangeResult:
        profile_name = self._profile_name(zone)
        what = f"Traffic Manager profile {profile_name}"

        def attempt() -> ChangeResult:
            # One retried unit: a retry after a lost answer reads the profile again and finds the change made.
            profile = self._client.profiles.get(self._group, profile_name)
            props = profile.properties
            method = _text(props.traffic_routing_method) if props else ""
            if method.lower() != "priority":
                raise Permanent(
                    f"{what} routes by {method or 'an unknown method'}, not Priority; promote needs a Priority profile"
                )
            endpoints = list(props.endpoints or []) if props else []
            target = next((e for e in endpoints if (e.name or "").lower() == set_identifier.lower()), None)
            if target is None:
                names = ", ".join(sorted(str(e.name) for e in endpoints)) or "none"
                raise NotFound(f"{what} has no endpoint {set_identifier!r} (it has {names})")
            if _text(_props(target, "endpoint_status")).lower() == "disabled":
                raise Permanent(f"endpoint {set_identifier!r} of {what} is disabled; enable it before promoting it")
            previous = _describe(_records(profile, type))
            ordered = sorted(endpoints, key=_priority)
            if ordered[0] is target and all(_priority(e) > _priority(target) for e in ordered[1:]):
                return ChangeResult(False, None, previous, previous)
            for number, endpoint in enumerate([target, *(e for e in ordered if e is not target)], start=1):
                endpoint.priority = number  # flattened into properties.priority by the model
            written = self._client.profiles.create_or_update(self._group, profile_name, profile)
            return ChangeResult(True, f"{CHANGE_PREFIX}{uuid.uuid4()}", previous, _describe(_records(written, type)))

        return self._call(what, attempt)

    def point(self, zone: str, name: str, type: str, values: tuple[str, ...], ttl: int) -> ChangeResult:
        raise Permanent(
            f"Traffic Manager profile {zone} serves its endpoints, not record values; promote an endpoint, "
            f"or point {type} {name} with Azure DNS"
        )

    def remove(self, zone: str, name: str, type: str) -> ChangeResult:
        raise Permanent(
            f"Traffic Manager profile {zone} holds endpoints, not records; a drill never removes those "
            f"(remove {type} {name} with Azure DNS)"
        )

    def change_status(self, change_id: str) -> ChangeStatus:
        if not change_id.startswith(CHANGE_PREFIX):
            raise NotFound(f"change {change_id} was not made by Traffic Manager (ids start with {CHANGE_PREFIX!r})")
        return "INSYNC"

    # -- plumbing -----------------------------------------------------------------------------------------------

    def _profile_name(self, zone: str) -> str:
        match = _PROFILE_ID.match(zone)
        if match is None:
            return zone
        if match.group(1).lower() != self._group.lower():
            raise Permanent(f"profile {zone} is in resource group {match.group(1)}, not {self._group}; fix either")
        return match.group(2)


def _text(value: object) -> str:
    """An enum member (the SDK's ``TrafficRoutingMethod.PRIORITY``) or a plain string, as the wire text."""
    return str(value.value) if isinstance(value, Enum) else str(value or "")


def _props(endpoint: Endpoint, field: str) -> object:
    return getattr(endpoint.properties, field, None) if endpoint.properties else None


def _priority(endpoint: Endpoint) -> float:
    value = _props(endpoint, "priority")
    return float(value) if isinstance(value, int) else math.inf


def _records(profile: Profile, type: str) -> tuple[RecordSet, ...]:
    """One record per endpoint, lowest priority (PRIMARY) first."""
    props = profile.properties
    dns = props.dns_config if props else None
    name = fqdn(dns.fqdn or f"{dns.relative_name}.trafficmanager.net") if dns else fqdn(profile.name or "")
    endpoints = sorted(props.endpoints or [], key=lambda e: (_priority(e), e.name or "")) if props else []
    out: list[RecordSet] = []
    for index, endpoint in enumerate(endpoints):
        target = _props(endpoint, "target") or _props(endpoint, "target_resource_id") or ""
        out.append(
            RecordSet(
                name=name,
                type=type,
                ttl=dns.ttl if dns else None,
                values=(str(target),),
                set_identifier=endpoint.name,
                failover="PRIMARY" if index == 0 else "SECONDARY",
            )
        )
    return tuple(out)


def _describe(records: Sequence[RecordSet]) -> str:
    return " ".join(r.describe() for r in records)


def traffic_manager_for(
    env: Mapping[str, str],
    resource_group: str,
    *,
    credential: TokenCredential | None = None,
    transport: AzureTransport | None = None,
    retry: RetryPolicy | None = None,
) -> TrafficManagerDns:
    """The ``Dns`` for the Traffic Manager profiles of ``resource_group``, subscription from
    ``AZURE_SUBSCRIPTION_ID``; ``credential`` and ``transport`` are for tests."""
    client = mgmt_client(TrafficManagerManagementClient, env, credential=credential, transport=transport)
    return TrafficManagerDns(client, resource_group, retry=retry)
