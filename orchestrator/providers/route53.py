"""Amazon Route53 (and LocalStack's emulation of it) as a ``Dns``. The boto3 client is passed in; its own
retries must be off (``route53_client`` builds one so), our ``RetryPolicy`` is the only retry layer."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, PartialCredentialsError
from botocore.exceptions import ConnectionError as BotoConnectionError

from orchestrator.errors import AuthError, NotFound, Permanent, PermissionDenied, ProviderError, Transient
from orchestrator.permissions import Grant, Scope
from orchestrator.providers.aws_clients import aws_client, malformed_credential
from orchestrator.providers.dns import ChangeResult, ChangeStatus, FailoverRole, RecordSet, fqdn
from orchestrator.retry import RetryPolicy

if TYPE_CHECKING:
    from mypy_boto3_route53 import Route53Client
    from mypy_boto3_route53.type_defs import ChangeTypeDef, ResourceRecordSetOutputTypeDef, ResourceRecordSetTypeDef

T = TypeVar("T")

# Hosted-zone ids are upper-case letters and digits, e.g. Z0123456789ABCDEFGHIJ; a zone name has a dot.
_ZONE_ID = re.compile(r"(?:/hostedzone/)?([A-Z0-9]+)\Z")
_AUTH_CODES = {"InvalidClientTokenId", "SignatureDoesNotMatch", "ExpiredToken", "UnrecognizedClientException"}
_TRANSIENT_CODES = {"Throttling", "ThrottlingException", "PriorRequestNotComplete", "ServiceUnavailable"}

IAM_GRANTS = (
    Grant(
        Scope.HOSTED_ZONE,
        ("route53:ChangeResourceRecordSets", "route53:GetHostedZone", "route53:ListResourceRecordSets"),
        ("route53:ChangeResourceRecordSets", "route53:GetHostedZone", "route53:ListResourceRecordSets"),
    ),
    Grant(Scope.DNS_CHANGE, ("route53:GetChange",), ("route53:GetChange",)),
    Grant(Scope.DNS_LOOKUP, ("route53:ListHostedZonesByName",), ("route53:ListHostedZonesByName",)),
)
"""What the Route53 provider calls (see ``orchestrator.permissions``)."""


def translate_route53_error(exc: Exception, what: str) -> ProviderError:
    """Map a botocore error to the project's tree; ``what`` names the zone, record or change."""
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return AuthError(f"no usable AWS credentials for {what}; set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY")
    if isinstance(exc, BotoConnectionError):
        return Transient(f"cannot reach Route53 for {what}; check AWS_ENDPOINT_URL and the network")
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
        if code == "NoSuchHostedZone":
            return NotFound(f"hosted zone of {what} does not exist; fix the zone id or name")
        if code in ("NoSuchChange", "NoSuchHealthCheck"):
            return NotFound(f"{what} does not exist")
        if code in ("InvalidChangeBatch", "InvalidInput"):
            detail = str(error.get("Message", "")).strip()
            return Permanent(f"Route53 refused the change to {what} ({code}: {detail})")
        if code in _AUTH_CODES:
            return AuthError(f"AWS rejected the credentials for {what} ({code}); check the access key and secret")
        if code in ("AccessDenied", "AccessDeniedException") or status == 403:
            return PermissionDenied(f"access denied to {what}; grant the Route53 permission to the caller")
        if code in _TRANSIENT_CODES or status >= 500 or status == 429:
            return Transient(f"Route53 is unavailable for {what} ({code or status}); retry later")
        return Permanent(f"Route53 refused the request for {what} ({code or status})")
    if isinstance(exc, BotoCoreError):
        return malformed_credential(exc, "Route53") or Transient(
            f"Route53 request for {what} failed ({type(exc).__name__}); retry later"
        )
    raise TypeError(f"not a botocore error: {type(exc).__name__}") from exc


def route53_client(env: Mapping[str, str]) -> Route53Client:
    """A Route53 client from the conventional AWS variables (``AWS_ENDPOINT_URL`` for the lab), SDK retries off."""
    client: Route53Client = aws_client(env, "route53")
    return client


def _record(rrs: ResourceRecordSetOutputTypeDef) -> RecordSet:
    failover = rrs.get("Failover")
    return RecordSet(
        name=rrs["Name"],
        type=rrs["Type"],
        ttl=rrs.get("TTL"),
        values=tuple(r["Value"] for r in rrs.get("ResourceRecords", [])),
        set_identifier=rrs.get("SetIdentifier"),
        failover=failover or None,
        health_check_id=rrs.get("HealthCheckId"),
    )


class Route53Dns:
    """Route53 hosted zones through one boto3 client."""

    def __init__(self, client: Route53Client, *, retry: RetryPolicy | None = None) -> None:
        self._client = client
        self._retry = retry or RetryPolicy()
        self._zone_ids: dict[str, str] = {}

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        return self._retry.call_translating(
            fn, (ClientError, BotoCoreError), lambda exc: translate_route53_error(exc, what)
        )

    # -- Dns ----------------------------------------------------------------------------------------------------

    def zone_id(self, zone: str) -> str:
        if zone in self._zone_ids:
            return self._zone_ids[zone]
        match = _ZONE_ID.match(zone)
        if match:
            zid = match.group(1)
            self._call(f"zone {zone}", lambda: self._client.get_hosted_zone(Id=zid))
        else:
            name = fqdn(zone)
            page = self._call(
                f"zone {name}", lambda: self._client.list_hosted_zones_by_name(DNSName=name, MaxItems="10")
            )
            ids = [z["Id"].rsplit("/", 1)[-1] for z in page["HostedZones"] if z["Name"].lower() == name]
            if not ids:
                raise NotFound(f"no hosted zone named {name}; fix the zone name or give its id")
            if len(ids) > 1:
                raise Permanent(f"{len(ids)} hosted zones are named {name} ({', '.join(ids)}); give the zone id")
            zid = ids[0]
        self._zone_ids[zone] = zid
        return zid

    def records(self, zone: str, name: str, type: str) -> tuple[RecordSet, ...]:
        zid = self.zone_id(zone)
        wanted = fqdn(name)
        found: list[RecordSet] = []
        kwargs: dict[str, Any] = {"HostedZoneId": zid, "StartRecordName": wanted, "StartRecordType": type}
        while True:
            page = self._call(
                f"{type} {wanted} in zone {zone}",
                lambda kw=dict(kwargs): self._client.list_resource_record_sets(**kw),  # type: ignore[misc]
            )
            for rrs in page["ResourceRecordSets"]:
                if rrs["Name"].lower() != wanted or rrs["Type"] != type:
                    return tuple(found)  # listings are ordered by name then type: past ours, nothing more
                found.append(_record(rrs))
            if not page.get("IsTruncated"):
                return tuple(found)
            kwargs["StartRecordName"] = page["NextRecordName"]
            kwargs["StartRecordType"] = page["NextRecordType"]
            if page.get("NextRecordIdentifier"):
                kwargs["StartRecordIdentifier"] = page["NextRecordIdentifier"]

    def promote(self, zone: str, name: str, type: str, set_identifier: str) -> ChangeResult:
        what = f"{type} {fqdn(name)} in zone {zone}"
        current = self.records(zone, name, type)
        failover = [r for r in current if r.failover is not None]
        if not failover:
            raise NotFound(f"{what} has no failover records; create PRIMARY and SECONDARY records first")
        if set_identifier not in {r.set_identifier for r in failover}:
            names = ", ".join(sorted(str(r.set_identifier) for r in failover))
            raise NotFound(f"{what} has no failover record {set_identifier!r} (it has {names})")
        previous = _describe(failover)
        wanted: dict[str | None, FailoverRole] = {
            r.set_identifier: "PRIMARY" if r.set_identifier == set_identifier else "SECONDARY" for r in failover
        }
        if all(r.failover == wanted[r.set_identifier] for r in failover):
            return ChangeResult(False, None, previous, previous)
        changes: list[ChangeTypeDef] = [
            {"Action": "UPSERT", "ResourceRecordSet": _rrs(r, failover=wanted[r.set_identifier])}
            for r in failover
            if r.failover != wanted[r.set_identifier]
        ]
        change_id = self._submit(zone, what, changes, f"make {set_identifier!r} PRIMARY")
        new = _describe([_with_role(r, wanted[r.set_identifier]) for r in failover])
        return ChangeResult(True, change_id, previous, new)

    def point(self, zone: str, name: str, type: str, values: tuple[str, ...], ttl: int) -> ChangeResult:
        what = f"{type} {fqdn(name)} in zone {zone}"
        if not values:
            raise ValueError("point needs at least one value")
        current = self.records(zone, name, type)
        if any(r.set_identifier is not None for r in current):
            raise Permanent(f"{what} uses routing policies (set identifiers); switch it with promote, not point")
        target = RecordSet(fqdn(name), type, ttl, tuple(values))
        previous = current[0].describe() if current else ""
        if current and current[0].values == target.values and current[0].ttl == ttl:
            return ChangeResult(False, None, previous, previous)
        change_id = self._submit(zone, what, [{"Action": "UPSERT", "ResourceRecordSet": _rrs(target)}], "UPSERT")
        return ChangeResult(True, change_id, previous, target.describe())

    def remove(self, zone: str, name: str, type: str) -> ChangeResult:
        what = f"{type} {fqdn(name)} in zone {zone}"
        current = self.records(zone, name, type)
        if not current:
            return ChangeResult(False, None, "", "")
        if any(r.set_identifier is not None for r in current):
            raise Permanent(f"{what} uses routing policies (set identifiers); a drill never removes those")
        change_id = self._submit(zone, what, [{"Action": "DELETE", "ResourceRecordSet": _rrs(current[0])}], "DELETE")
        return ChangeResult(True, change_id, current[0].describe(), "")

    def change_status(self, change_id: str) -> ChangeStatus:
        cid = change_id.rsplit("/", 1)[-1]
        resp = self._call(f"change {cid}", lambda: self._client.get_change(Id=cid))
        return "INSYNC" if resp["ChangeInfo"]["Status"] == "INSYNC" else "PENDING"

    # -- plumbing -----------------------------------------------------------------------------------------------

    def _submit(self, zone: str, what: str, changes: list[ChangeTypeDef], comment: str) -> str:
        zid = self.zone_id(zone)
        resp = self._call(
            what,
            lambda: self._client.change_resource_record_sets(
                HostedZoneId=zid, ChangeBatch={"Comment": f"drctl: {comment}", "Changes": changes}
            ),
        )
        return resp["ChangeInfo"]["Id"].rsplit("/", 1)[-1]


def _with_role(r: RecordSet, role: FailoverRole) -> RecordSet:
    return RecordSet(r.name, r.type, r.ttl, r.values, r.set_identifier, role, r.health_check_id)


def _describe(records: list[RecordSet]) -> str:
    """Failover records as ``PRIMARY=a(1.2.3.4) SECONDARY=b(5.6.7.8)``, PRIMARY first."""
    return " ".join(r.describe() for r in sorted(records, key=lambda r: (r.failover != "PRIMARY", r.set_identifier)))


def _rrs(r: RecordSet, *, failover: FailoverRole | None = None) -> ResourceRecordSetTypeDef:
    out: ResourceRecordSetTypeDef = {
        "Name": r.name,
        "Type": r.type,  # type: ignore[typeddict-item]
        "ResourceRecords": [{"Value": v} for v in r.values],
    }
    if r.ttl is not None:
        out["TTL"] = r.ttl
    if r.set_identifier is not None:
        out["SetIdentifier"] = r.set_identifier
    role = failover or r.failover
    if role is not None:
        out["Failover"] = role
    if r.health_check_id is not None:
        out["HealthCheckId"] = r.health_check_id
    return out
