"""Azure DNS zones (azure-mgmt-dns) as a ``Dns``: read record sets, ``point`` one at new values, ``remove``
one (a drill's cleanup). Plain Azure DNS has no failover routing (no PRIMARY/SECONDARY records, no health
checks), so ``promote`` is refused with a pointer to Traffic Manager
(:mod:`orchestrator.providers.azure_traffic_manager`).

Zones are named by their DNS name within the provider's resource group (``example.com``), or by their ARM
resource id; record names may be given in full (``app.example.com``), relative (``app``) or as ``@``.

Changes are synchronous: when the PUT returns, Azure DNS has committed the record set and spreads it to its
name servers within about a minute, and no API reports that spread (there is no GetChange as on Route53).
A change is therefore reported INSYNC at once; ``change_id`` names the new etag of the record set.
Writes carry the etag read (If-Match, or If-None-Match for a new set), so a concurrent edit is noticed
(412) and the whole read-compare-write is retried rather than overwriting it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from azure.core.credentials import TokenCredential
from azure.core.exceptions import AzureError, ResourceNotFoundError
from azure.mgmt.dns import DnsManagementClient
from azure.mgmt.dns.models import AaaaRecord, ARecord, CnameRecord, MxRecord, NsRecord, PtrRecord, TxtRecord
from azure.mgmt.dns.models import RecordSet as AzureRecordSet

from orchestrator.errors import NotFound, Permanent
from orchestrator.providers.azure_mgmt import AzureTransport, error_code, mgmt_client, translate_azure_mgmt_error
from orchestrator.providers.dns import ChangeResult, ChangeStatus, RecordSet, fqdn
from orchestrator.retry import RetryPolicy

T = TypeVar("T")

CHANGE_PREFIX = "azure-dns:"
_SERVICE = "Azure DNS"
_ZONE_ID = re.compile(
    r"/subscriptions/[^/]+/resourceGroups/([^/]+)/providers/Microsoft\.Network/dnszones/([^/]+)\Z", re.I
)
_HOST_TYPES = {"CNAME", "NS", "PTR", "MX"}  # values are host names: compared without case or trailing dot


class AzureDns:
    """The DNS zones of one resource group, through one ``DnsManagementClient`` with SDK retries off."""

    def __init__(self, client: DnsManagementClient, resource_group: str, *, retry: RetryPolicy | None = None) -> None:
        self._client = client
        self._group = resource_group
        self._retry = retry or RetryPolicy()
        self._zone_ids: dict[str, str] = {}

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        return self._retry.call_translating(
            fn, (AzureError,), lambda exc: translate_azure_mgmt_error(exc, what, service=_SERVICE)
        )

    # -- Dns ----------------------------------------------------------------------------------------------------

    def zone_id(self, zone: str) -> str:
        name = self._zone_name(zone)
        if name not in self._zone_ids:
            found = self._call(f"zone {name}", lambda: self._client.zones.get(self._group, name))
            self._zone_ids[name] = str(found.id or name)
        return self._zone_ids[name]

    def records(self, zone: str, name: str, type: str) -> tuple[RecordSet, ...]:
        zone_name, relative = self._locate(zone, name)
        current = self._call(f"{type} {name} in zone {zone_name}", lambda: self._get(zone_name, relative, type))
        return () if current is None else (_record(current, type),)

    def promote(self, zone: str, name: str, type: str, set_identifier: str) -> ChangeResult:
        raise Permanent(
            f"Azure DNS has no failover routing, so {type} {name} in zone {zone} cannot promote {set_identifier!r}; "
            "use a Traffic Manager priority profile (traffic_manager_for) or point the record at the endpoint"
        )

    def point(self, zone: str, name: str, type: str, values: tuple[str, ...], ttl: int) -> ChangeResult:
        if not values:
            raise ValueError("point needs at least one value")
        zone_name, relative = self._locate(zone, name)
        what = f"{type} {fqdn(name)} in zone {zone_name}"
        wanted = _records_of(type, values, what)

        def attempt() -> ChangeResult:
            # Read, compare and write as one retried unit: a 412 (someone else changed the set since we read
            # it) is Transient, and the retry must read again rather than resend the stale etag.
            current = self._get(zone_name, relative, type)
            if current is not None and current.target_resource is not None and current.target_resource.id:
                raise Permanent(
                    f"{what} is an alias record set (of {current.target_resource.id}); "
                    "change its target resource instead of its values"
                )
            before = _record(current, type) if current is not None else None
            previous = before.describe() if before else ""
            target = RecordSet(fqdn(f"{relative}.{zone_name}" if relative != "@" else zone_name), type, ttl, values)
            if before and _same(type, before.values, values) and before.ttl == ttl:
                return ChangeResult(False, None, previous, previous)
            body = AzureRecordSet(ttl=ttl, metadata=current.metadata if current else None, **wanted)
            written = self._client.record_sets.create_or_update(
                self._group,
                zone_name,
                relative,
                type,
                body,
                if_match=current.etag if current is not None else None,
                if_none_match=None if current is not None else "*",
            )
            return ChangeResult(True, f"{CHANGE_PREFIX}{written.etag or ''}", previous, target.describe())

        return self._call(what, attempt)

    def remove(self, zone: str, name: str, type: str) -> ChangeResult:
        zone_name, relative = self._locate(zone, name)
        what = f"{type} {fqdn(name)} in zone {zone_name}"

        def attempt() -> ChangeResult:
            current = self._get(zone_name, relative, type)
            if current is None:
                return ChangeResult(False, None, "", "")
            if current.target_resource is not None and current.target_resource.id:
                raise Permanent(f"{what} is an alias record set; a drill never removes those")
            # If-Match: a set changed since it was read is not deleted blind (412, retried after a new read).
            self._client.record_sets.delete(self._group, zone_name, relative, type, if_match=current.etag)
            return ChangeResult(
                True, f"{CHANGE_PREFIX}deleted-{current.etag or ''}", _record(current, type).describe(), ""
            )

        return self._call(what, attempt)

    def change_status(self, change_id: str) -> ChangeStatus:
        if not change_id.startswith(CHANGE_PREFIX):
            raise NotFound(f"change {change_id} was not made by Azure DNS (its ids start with {CHANGE_PREFIX!r})")
        return "INSYNC"

    # -- plumbing -----------------------------------------------------------------------------------------------

    def _zone_name(self, zone: str) -> str:
        match = _ZONE_ID.match(zone)
        if match is None:
            return zone.rstrip(".").lower()
        if match.group(1).lower() != self._group.lower():
            raise Permanent(f"zone {zone} is in resource group {match.group(1)}, not {self._group}; fix either")
        return match.group(2).lower()

    def _locate(self, zone: str, name: str) -> tuple[str, str]:
        """The zone's name and ``name`` relative to it, after checking the zone exists."""
        zone_name = self._zone_name(zone)
        self.zone_id(zone)
        return zone_name, relative_name(name, zone_name)

    def _get(self, zone_name: str, relative: str, type: str) -> AzureRecordSet | None:
        try:
            return self._client.record_sets.get(self._group, zone_name, relative, type)
        except ResourceNotFoundError as exc:
            if error_code(exc) in ("ParentResourceNotFound", "ResourceGroupNotFound"):
                raise
            return None


def relative_name(name: str, zone_name: str) -> str:
    """``app.example.com`` in ``example.com`` is ``app``; the apex is ``@``; a name without dots is taken as
    relative already. A name outside the zone is refused."""
    wanted = name.rstrip(".").lower()
    zone_name = zone_name.rstrip(".").lower()
    if wanted in ("@", zone_name):
        return "@"
    if wanted.endswith("." + zone_name):
        return wanted[: -len(zone_name) - 1]
    if "." not in wanted:
        return wanted
    raise Permanent(f"{name} is not in zone {zone_name}; give a name inside the zone (or relative to it)")


def _values(rs: AzureRecordSet, type: str) -> tuple[str, ...]:
    if type == "A":
        return tuple(str(r.ipv4_address) for r in rs.a_records or [])
    if type == "AAAA":
        return tuple(str(r.ipv6_address) for r in rs.aaaa_records or [])
    if type == "CNAME":
        return (str(rs.cname_record.cname),) if rs.cname_record and rs.cname_record.cname else ()
    if type == "TXT":
        return tuple("".join(r.value or []) for r in rs.txt_records or [])
    if type == "MX":
        return tuple(f"{r.preference} {r.exchange}" for r in rs.mx_records or [])
    if type == "NS":
        return tuple(str(r.nsdname) for r in rs.ns_records or [])
    if type == "PTR":
        return tuple(str(r.ptrdname) for r in rs.ptr_records or [])
    return ()


def _record(rs: AzureRecordSet, type: str) -> RecordSet:
    return RecordSet(name=fqdn(rs.fqdn or rs.name or ""), type=type, ttl=rs.ttl, values=_values(rs, type))


def _records_of(type: str, values: tuple[str, ...], what: str) -> dict[str, Any]:
    """The ``RecordSet`` keyword holding ``values`` for ``type``."""
    if type == "A":
        return {"a_records": [ARecord(ipv4_address=v) for v in values]}
    if type == "AAAA":
        return {"aaaa_records": [AaaaRecord(ipv6_address=v) for v in values]}
    if type == "CNAME":
        if len(values) != 1:
            raise Permanent(f"{what}: a CNAME holds exactly one value, got {len(values)}")
        return {"cname_record": CnameRecord(cname=values[0])}
    if type == "TXT":
        return {"txt_records": [TxtRecord(value=[v]) for v in values]}
    if type == "NS":
        return {"ns_records": [NsRecord(nsdname=v) for v in values]}
    if type == "PTR":
        return {"ptr_records": [PtrRecord(ptrdname=v) for v in values]}
    if type == "MX":
        records = []
        for v in values:
            preference, _, exchange = v.partition(" ")
            if not preference.isdigit() or not exchange:
                raise Permanent(f"{what}: an MX value is 'PREFERENCE HOST', got {v!r}")
            records.append(MxRecord(preference=int(preference), exchange=exchange.strip()))
        return {"mx_records": records}
    raise Permanent(
        f"{what}: pointing {type} records is not supported on Azure DNS; use A, AAAA, CNAME, TXT, MX, NS or PTR"
    )


def _same(type: str, have: tuple[str, ...], want: tuple[str, ...]) -> bool:
    """Whether two value lists hold the same records (order aside; host names without case or final dot)."""

    def norm(v: str) -> str:
        return v.rstrip(".").lower() if type in _HOST_TYPES else v

    return sorted(map(norm, have)) == sorted(map(norm, want))


def azure_dns_for(
    env: Mapping[str, str],
    resource_group: str,
    *,
    credential: TokenCredential | None = None,
    transport: AzureTransport | None = None,
    retry: RetryPolicy | None = None,
) -> AzureDns:
    """The ``Dns`` for the Azure DNS zones of ``resource_group``, subscription from ``AZURE_SUBSCRIPTION_ID``;
    ``credential`` and ``transport`` are for tests."""
    client = mgmt_client(DnsManagementClient, env, credential=credential, transport=transport)
    return AzureDns(client, resource_group, retry=retry)
