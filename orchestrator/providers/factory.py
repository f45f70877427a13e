"""Build stores from parsed locations and the conventional environment settings the SDKs already use.

``AWS_ENDPOINT_URL``/``AWS_*`` credentials for S3, and ``AZURE_STORAGE_CONNECTION_STRING`` or an account with
a key, a SAS token or an Azure identity for Blob. With the lab's variables unset the same code reaches the
real clouds. The environment is passed in, never read at import; clients are shared per endpoint.

Every request goes through the cloud's own SDK (boto3, azure-storage-blob), whatever the credential: its
credential chain, endpoint rules (partitions, FIPS, dual-stack), redirects and proxy settings are the ones the
lab's tests exercise. The SDKs' own retries are off so that tenacity is the only retry layer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.errors import AuthError, InvalidInput
from orchestrator.providers.aws_clients import aws_client, aws_endpoint, aws_region
from orchestrator.providers.base import CONNECT_TIMEOUT_S, READ_TIMEOUT_S, ObjectStore
from orchestrator.providers.local import LocalStore
from orchestrator.providers.location import Location, parse_location
from orchestrator.retry import RetryPolicy

# The cloud SDKs take most of a second to import; each is imported only when a location needs it, so a
# command that touches one cloud (or none) does not pay for both.
if TYPE_CHECKING:
    from azure.storage.blob import BlobServiceClient
    from mypy_boto3_s3 import S3Client

# Connections kept per endpoint: a copy runs up to 8 transfers with up to 4 parts each in flight.
POOL_CONNECTIONS = 32


def azure_client_options(endpoint: str, env: Mapping[str, str]) -> dict[str, Any]:
    """Options for every Azure SDK client of ``endpoint``: a transport sized for drctl's concurrency, and
    retry_total=0 so that our tenacity policy is the only retry layer and waits are bounded and visible."""
    return {
        "retry_total": 0,
        "connection_timeout": CONNECT_TIMEOUT_S,
        "read_timeout": READ_TIMEOUT_S,
        "transport": _azure_transport(endpoint, env),
    }


def _azure_transport(endpoint: str, env: Mapping[str, str]) -> Any:
    """azure-core's own requests transport, over a session set up once for ``endpoint``.

    The pool holds as many connections as drctl keeps in flight (requests' default of 10 would open and
    discard connections under load). The proxy and CA bundle are the ones requests would pick from the
    environment (HTTPS_PROXY/NO_PROXY, REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE), resolved here once per client by
    requests' own function, as botocore does: left to requests, they are looked up again on every request,
    which costs about 0.4 ms of CPU each, as much as the rest of the transport.
    """
    import requests
    from azure.core.pipeline.transport import RequestsTransport
    from requests.utils import get_environ_proxies
    from urllib3.util.retry import Retry

    session = requests.Session()
    session.trust_env = False
    # requests reads proxies from the process environment, as botocore does; NO_PROXY is honoured here.
    session.proxies.update(get_environ_proxies(endpoint))
    adapter = requests.adapters.HTTPAdapter(
        pool_connections=4,
        pool_maxsize=POOL_CONNECTIONS,
        max_retries=Retry(total=False, redirect=False, raise_on_status=False),
    )
    for scheme in ("http://", "https://"):
        session.mount(scheme, adapter)
    verify: bool | str = env.get("REQUESTS_CA_BUNDLE") or env.get("CURL_CA_BUNDLE") or True
    return RequestsTransport(
        session=session,
        session_owner=False,
        connection_timeout=CONNECT_TIMEOUT_S,
        read_timeout=READ_TIMEOUT_S,
        connection_verify=verify,
    )


ETAG_MD5_SETTING = "DRCTL_S3_ETAG_MD5"


def _etag_is_md5(env: Mapping[str, str]) -> bool:
    """Whether S3 single-part ETags are taken as MD5s (on unless ``DRCTL_S3_ETAG_MD5`` says off)."""
    value = env.get(ETAG_MD5_SETTING, "on").strip().lower()
    if value in ("on", "1", "true", "yes", ""):
        return True
    if value in ("off", "0", "false", "no"):
        return False
    raise InvalidInput(f"{ETAG_MD5_SETTING} must be on or off, not {value[:20]!r}")


@dataclass
class StoreFactory:
    """Opens ``ObjectStore``s for locations, reusing one SDK client per endpoint or account."""

    env: Mapping[str, str]
    azure_account: str | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    part_concurrency: int = 4
    _s3_clients: dict[tuple[str | None, str], S3Client] = field(default_factory=dict, init=False)
    _blob_services: dict[str, BlobServiceClient] = field(default_factory=dict, init=False)

    def open(self, location: str | Location) -> ObjectStore:
        loc = parse_location(location) if isinstance(location, str) else location
        if loc.scheme == "s3":
            from orchestrator.providers.s3 import S3Store

            # Settings are checked now (a bad endpoint is a one-line error before any work); the client itself
            # is made on the first request.
            aws_endpoint(self.env, "s3")
            return S3Store(
                self.s3_client,
                loc.root,
                loc.prefix,
                retry=self.retry,
                part_concurrency=self.part_concurrency,
                etag_md5=_etag_is_md5(self.env),
            )
        if loc.scheme == "az":
            from orchestrator.providers.azure_blob import AzureBlobStore

            container = self.blob_service().get_container_client(loc.root)
            return AzureBlobStore(container, loc.prefix, retry=self.retry, part_concurrency=self.part_concurrency)
        return LocalStore(Path(loc.root))

    def s3_client(self, region: str | None = None) -> S3Client:
        cache_key = (aws_endpoint(self.env, "s3"), aws_region(self.env, region))
        if cache_key not in self._s3_clients:
            client: S3Client = aws_client(self.env, "s3", region, max_pool_connections=POOL_CONNECTIONS)
            self._s3_clients[cache_key] = client
        return self._s3_clients[cache_key]

    def blob_service(self) -> BlobServiceClient:
        key = self.azure_account or "<default>"
        if key not in self._blob_services:
            self._blob_services[key] = self._new_blob_service()
        return self._blob_services[key]

    def _new_blob_service(self) -> BlobServiceClient:
        from azure.storage.blob import BlobServiceClient

        from orchestrator.providers.azure_settings import checked_endpoint, connection_endpoint, storage_choice

        choice = storage_choice(self.env, self.azure_account)
        if choice.connection_string:
            try:
                return BlobServiceClient.from_connection_string(
                    choice.connection_string,
                    **azure_client_options(connection_endpoint(choice.connection_string), self.env),
                )
            except ValueError as exc:
                raise InvalidInput(
                    "AZURE_STORAGE_CONNECTION_STRING is malformed; copy it again from the portal or "
                    "`az storage account show-connection-string`"
                ) from exc
        if not choice.account or not choice.endpoint:
            raise AuthError(
                "no Azure storage account given; set AZURE_STORAGE_CONNECTION_STRING, or --azure-account "
                "(or AZURE_STORAGE_ACCOUNT) with AZURE_STORAGE_KEY, AZURE_STORAGE_SAS_TOKEN or an Azure identity"
            )
        endpoint = checked_endpoint(choice.endpoint)
        credential: Any
        if choice.key:
            credential = {"account_name": choice.account, "account_key": choice.key}
        elif choice.sas:
            credential = choice.sas
        else:
            # Imported here because azure-identity is slow to import and only needed on this path.
            from azure.identity import DefaultAzureCredential

            credential = DefaultAzureCredential()
        try:
            return BlobServiceClient(endpoint, credential=credential, **azure_client_options(endpoint, self.env))
        except ValueError as exc:
            raise InvalidInput(
                "the Azure Blob endpoint is not a valid URL; check AZURE_STORAGE_BLOB_ENDPOINT and the account name"
            ) from exc
