"""Build stores from parsed locations and the conventional environment settings the SDKs already use.

``AWS_ENDPOINT_URL``/``AWS_*`` credentials for S3, and ``AZURE_STORAGE_CONNECTION_STRING`` or an account with
a key, a SAS token or an Azure identity for Blob. With the lab's variables unset the same code reaches the
real clouds. The environment is passed in, never read at import; clients are shared per endpoint.
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
    import urllib3
    from azure.storage.blob import BlobServiceClient
    from mypy_boto3_s3 import S3Client

    from orchestrator.providers.azure_blob import BlobAddress
    from orchestrator.providers.azure_rest import LeanBlobClient
    from orchestrator.providers.s3_lean import LeanS3Client


def _azure_client_options() -> dict[str, Any]:
    # retry_total=0: our tenacity policy is the only retry layer, so waits are bounded and visible.
    return {"retry_total": 0, "connection_timeout": CONNECT_TIMEOUT_S, "read_timeout": READ_TIMEOUT_S}


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
    # False keeps every call on the SDKs (tests compare the two paths).
    lean: bool = True
    _lean_s3_client: LeanS3Client | None = field(default=None, init=False)
    _s3_clients: dict[tuple[str | None, str], S3Client] = field(default_factory=dict, init=False)
    _blob_services: dict[str, BlobServiceClient] = field(default_factory=dict, init=False)

    def open(self, location: str | Location) -> ObjectStore:
        loc = parse_location(location) if isinstance(location, str) else location
        if loc.scheme == "s3":
            from orchestrator.providers.s3 import S3Store

            # With keys in the environment, reads go over the lean client and boto3 is only loaded when a
            # write, copy or version call needs it; any other credential source keeps the SDK throughout.
            lean = self._lean_s3()
            return S3Store(
                self.s3_client if lean is not None else self.s3_client(),
                loc.root,
                loc.prefix,
                retry=self.retry,
                part_concurrency=self.part_concurrency,
                lean=lean,
                endpoint=aws_endpoint(self.env, "s3"),
                etag_md5=_etag_is_md5(self.env),
            )
        if loc.scheme == "az":
            from orchestrator.providers.azure_blob import AzureBlobStore

            lean_blob = self._lean_blob(loc.root) if self.lean else None
            if lean_blob is not None:
                # Keys or a SAS in the environment: the backup's calls go over the lean client, and the SDK
                # (a tenth of a second to import) is only made for the calls it does not cover.
                blob_client, address = lean_blob
                return AzureBlobStore(
                    lambda: self.blob_service().get_container_client(loc.root),
                    loc.prefix,
                    retry=self.retry,
                    part_concurrency=self.part_concurrency,
                    lean=blob_client,
                    address=address,
                )
            container = self.blob_service().get_container_client(loc.root)
            return AzureBlobStore(
                container, loc.prefix, retry=self.retry, part_concurrency=self.part_concurrency, lean=self.lean
            )
        return LocalStore(Path(loc.root))

    def s3_client(self, region: str | None = None) -> S3Client:
        cache_key = (aws_endpoint(self.env, "s3"), aws_region(self.env, region))
        if cache_key not in self._s3_clients:
            client: S3Client = aws_client(self.env, "s3", region, max_pool_connections=32)
            self._s3_clients[cache_key] = client
        return self._s3_clients[cache_key]

    def _lean_s3(self) -> LeanS3Client | None:
        from orchestrator.providers.s3_lean import LeanS3Client, static_credentials

        credentials = static_credentials(self.env)
        if credentials is None or not self.lean:
            return None
        if self._lean_s3_client is None:
            from orchestrator.providers.lean_http import ca_bundle, http_pool

            pool = http_pool(ca_bundle(self.env, "AWS_CA_BUNDLE"))
            self._lean_s3_client = LeanS3Client(aws_endpoint(self.env, "s3"), aws_region(self.env), credentials, pool)
        return self._lean_s3_client

    def _lean_blob(self, container: str) -> tuple[LeanBlobClient, BlobAddress] | None:
        from orchestrator.providers.azure_blob import BlobAddress
        from orchestrator.providers.azure_rest import API_VERSION, LeanBlobClient
        from orchestrator.providers.azure_settings import blob_settings

        settings = blob_settings(self.env, self.azure_account)
        if settings is None:
            return None
        url = f"{settings.blob_endpoint}/{container}"
        client = LeanBlobClient(
            url,
            settings.account,
            API_VERSION,
            account_key=settings.account_key,
            sas=settings.sas,
            pool=self._blob_pool(),
        )
        return client, BlobAddress(settings.account, container, settings.blob_endpoint)

    def _blob_pool(self) -> urllib3.PoolManager:
        from orchestrator.providers.lean_http import ca_bundle, http_pool

        # The CAs the Azure SDK's transport (requests) trusts, from the environment this factory was given.
        return http_pool(ca_bundle(self.env, "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"))

    def blob_service(self) -> BlobServiceClient:
        key = self.azure_account or "<default>"
        if key not in self._blob_services:
            self._blob_services[key] = self._new_blob_service()
        return self._blob_services[key]

    def _new_blob_service(self) -> BlobServiceClient:
        from azure.storage.blob import BlobServiceClient

        from orchestrator.providers.azure_settings import storage_choice

        choice = storage_choice(self.env, self.azure_account)
        if choice.connection_string:
            try:
                return BlobServiceClient.from_connection_string(choice.connection_string, **_azure_client_options())
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
            return BlobServiceClient(choice.endpoint, credential=credential, **_azure_client_options())
        except ValueError as exc:
            raise InvalidInput(
                "the Azure Blob endpoint is not a valid URL; check AZURE_STORAGE_BLOB_ENDPOINT and the account name"
            ) from exc
