"""What the Azure management-plane providers (VMs, DNS, Traffic Manager) share: the credential, the
subscription, clients built with the SDK's own retries off, and one translation of azure-core errors.

Every Azure Resource Manager client is built by :func:`mgmt_client`, so all of them get the same bounded
timeouts and ``RetryPolicy.no_retries()``: :class:`~orchestrator.retry.RetryPolicy` is the only retry layer
(azure-core's default of 3 retries under our 5 attempts would multiply into minutes of waiting). Errors are
translated here, once, into :mod:`orchestrator.errors`; messages name the resource and the fix and are built
from resource names only, never from a token, secret or header.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping
from typing import Any, TypeAlias, TypeVar

from azure.core.credentials import TokenCredential
from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.core.pipeline import policies
from azure.core.pipeline.transport import HttpTransport

from orchestrator.errors import AuthError, InvalidInput, NotFound, Permanent, PermissionDenied, ProviderError, Transient
from orchestrator.providers.base import CONNECT_TIMEOUT_S, READ_TIMEOUT_S

C = TypeVar("C")
AzureTransport: TypeAlias = "HttpTransport[Any, Any]"
"""An azure-core HTTP transport; tests hand in one that records requests and answers them."""

SUBSCRIPTION_VAR = "AZURE_SUBSCRIPTION_ID"
_SP_VARS = ("AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET")
_UUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}\Z")
_LOGIN_FIX = "run `az login`, use a managed identity, or set AZURE_TENANT_ID/AZURE_CLIENT_ID/AZURE_CLIENT_SECRET"

# 409/412 answers that mean "another operation got there first": once it is done, the same call succeeds.
_TRANSIENT_CONFLICTS = {
    "AnotherOperationInProgress",
    "OperationPreempted",
    "RetryableError",
    "ConcurrentOperationConflict",
    "PreconditionFailed",  # an If-Match etag went stale: a retry reads the record again
    "AllocationFailed",  # no capacity for the size right now, as EC2's InsufficientInstanceCapacity
    "ZonalAllocationFailed",
}
_AUTH_CODES = {"InvalidAuthenticationToken", "ExpiredAuthenticationToken", "InvalidAuthenticationTokenTenant"}

_default_credential: TokenCredential | None = None
_credential_lock = threading.Lock()


def subscription_id(env: Mapping[str, str]) -> str:
    """The subscription the resources live in, from ``AZURE_SUBSCRIPTION_ID``; a one-line error if unusable."""
    value = env.get(SUBSCRIPTION_VAR, "").strip()
    if not value:
        raise InvalidInput(
            f"{SUBSCRIPTION_VAR} is not set; set it to the subscription holding the DR resources "
            "(`az account show --query id -o tsv`)"
        )
    if not _UUID.match(value):
        raise InvalidInput(f"{SUBSCRIPTION_VAR} is not a subscription id (a UUID); fix the variable")
    return value


def credential_for(env: Mapping[str, str], credential: TokenCredential | None = None) -> TokenCredential:
    """``credential`` if given (tests inject a static one); a service principal when ``env`` holds all of
    AZURE_TENANT_ID/AZURE_CLIENT_ID/AZURE_CLIENT_SECRET; otherwise one shared ``DefaultAzureCredential``
    (`az login`, managed identity, workload identity...), shared so its token cache serves every client."""
    if credential is not None:
        return credential
    # Imported here: azure-identity is slow to import and only the Azure providers need it.
    from azure.identity import ClientSecretCredential, DefaultAzureCredential

    if all(env.get(v) for v in _SP_VARS):
        return ClientSecretCredential(env["AZURE_TENANT_ID"], env["AZURE_CLIENT_ID"], env["AZURE_CLIENT_SECRET"])
    global _default_credential
    with _credential_lock:
        if _default_credential is None:
            _default_credential = DefaultAzureCredential()
        return _default_credential


def mgmt_client(
    factory: Callable[..., C],
    env: Mapping[str, str],
    *,
    credential: TokenCredential | None = None,
    transport: AzureTransport | None = None,
) -> C:
    """An Azure Resource Manager client (``ComputeManagementClient``, ``DnsManagementClient``...) for the
    subscription in ``env``, SDK retries off and timeouts bounded. ``transport`` replaces the HTTP layer
    (tests record requests and answer them)."""
    options: dict[str, Any] = {
        "retry_policy": policies.RetryPolicy.no_retries(),
        "connection_timeout": CONNECT_TIMEOUT_S,
        "read_timeout": READ_TIMEOUT_S,
    }
    if transport is not None:
        options["transport"] = transport
    return factory(credential_for(env, credential), subscription_id(env), **options)


def error_code(exc: Exception) -> str:
    """The ARM error code of an answer (``ResourceGroupNotFound``, ``AuthorizationFailed``...), or ''."""
    error = getattr(exc, "error", None)
    return str(getattr(error, "code", None) or "")


def _detail(exc: HttpResponseError, shown: str) -> str:
    """``code: ARM's own explanation`` on one line and short: it names the parameter at fault, no secrets."""
    message = " ".join(str(getattr(exc.error, "message", None) or "").split())[:300]
    return f"{shown}: {message}" if message else shown


def translate_azure_mgmt_error(exc: Exception, what: str, *, service: str = "Azure Resource Manager") -> ProviderError:
    """Map an azure-core (or azure-identity) error to the project's tree. ``what`` names the resource."""
    # Imported here for the same reason as in credential_for; CredentialUnavailableError is an azure-core
    # ClientAuthenticationError, so it must be told apart first.
    from azure.identity import CredentialUnavailableError

    code = error_code(exc)
    if isinstance(exc, CredentialUnavailableError):
        return AuthError(f"no Azure credential is available for {what}; {_LOGIN_FIX}")
    if isinstance(exc, ClientAuthenticationError) and exc.status_code is None:
        # Raised by the credential while getting a token: nothing reached Azure Resource Manager.
        return AuthError(f"could not get an Azure token for {what}; {_LOGIN_FIX}")
    if isinstance(exc, ServiceRequestError | ServiceResponseError):
        return Transient(f"cannot reach {service} for {what}; check the network or proxy and retry")
    if isinstance(exc, HttpResponseError):
        return _translate_answer(exc, code, what, service)
    if isinstance(exc, AzureError):
        return Transient(f"{service} request for {what} failed ({type(exc).__name__}); retry later")
    raise TypeError(f"not an azure-core error: {type(exc).__name__}") from exc


def _translate_answer(exc: HttpResponseError, code: str, what: str, service: str) -> ProviderError:
    status = exc.status_code or 0
    shown = code or str(status)
    if isinstance(exc, ResourceNotFoundError) or status == 404:
        if code == "ResourceGroupNotFound":
            return NotFound(f"the resource group of {what} does not exist; fix the resource group name")
        if code in ("SubscriptionNotFound", "InvalidSubscriptionId"):
            return NotFound(f"the subscription of {what} does not exist; fix {SUBSCRIPTION_VAR}")
        if code == "ParentResourceNotFound":
            return NotFound(f"the zone or profile holding {what} does not exist; fix its name")
        return NotFound(f"{what} does not exist ({shown})")
    if isinstance(exc, ClientAuthenticationError) or status == 401 or code in _AUTH_CODES:
        return AuthError(f"Azure rejected the credentials for {what} ({shown}); {_LOGIN_FIX}")
    if status == 403:
        return PermissionDenied(
            f"not allowed to act on {what} ({shown}); grant the caller a role on it (e.g. Virtual Machine "
            "Contributor, DNS Zone Contributor or Traffic Manager Contributor)"
        )
    if status in (409, 412):
        if code in _TRANSIENT_CONFLICTS or (status == 412 and not code):
            return Transient(f"{service} is busy with another change to {what} ({shown}); retry shortly")
        return Permanent(f"{service} refused the change to {what} ({_detail(exc, shown)})")
    if status in (408, 429) or status >= 500:
        return Transient(f"{service} is unavailable for {what} ({shown}); retry later")
    return Permanent(f"{service} refused the request for {what} ({_detail(exc, shown)})")
