"""Which of the environment's settings name the storage account and sign for it, and a check that the blob
endpoint named there can be printed and used: the one rule ``providers.factory`` builds the SDK client from."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from orchestrator.errors import InvalidInput


@dataclass(frozen=True)
class StorageChoice:
    """The storage account and how to sign for it, from the environment."""

    connection_string: str | None = field(default=None, repr=False)
    """Set when a connection string names the account: it then says everything else."""
    account: str | None = None
    endpoint: str | None = None
    key: str | None = field(default=None, repr=False)
    sas: str | None = field(default=None, repr=False)
    """Only when there is no key: a key is preferred."""


def storage_choice(env: Mapping[str, str], account_override: str | None = None) -> StorageChoice:
    conn = env.get("AZURE_STORAGE_CONNECTION_STRING")
    # An empty variable is unset: CI systems export unset variables as empty strings.
    account = account_override or env.get("AZURE_STORAGE_ACCOUNT") or None
    if conn and (account is None or f"AccountName={account};" in conn + ";"):
        endpoint = _connection_fields(conn).get("blobendpoint")
        if endpoint:
            checked_endpoint(endpoint, "the connection string's BlobEndpoint")
        return StorageChoice(connection_string=conn, account=account)
    if not account:
        return StorageChoice()
    key = env.get("AZURE_STORAGE_KEY") or None
    return StorageChoice(
        account=account,
        endpoint=env.get("AZURE_STORAGE_BLOB_ENDPOINT") or f"https://{account}.blob.core.windows.net",
        key=key,
        sas=None if key else env.get("AZURE_STORAGE_SAS_TOKEN", "").lstrip("?") or None,
    )


def checked_endpoint(endpoint: str, setting: str = "AZURE_STORAGE_BLOB_ENDPOINT") -> str:
    """``endpoint`` if it is a plain http(s) URL. A user name, password or query (a SAS pasted into the URL)
    would be sent as part of the host or printed in every message that names the endpoint, so it is refused."""
    parts = urlsplit(endpoint.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(f"{setting} must be an http(s) URL such as https://acct.blob.core.windows.net")
    if parts.username is not None or parts.password is not None:
        raise InvalidInput(
            f"{setting} must not carry a user name or password; give the account key or SAS token in "
            "AZURE_STORAGE_KEY or AZURE_STORAGE_SAS_TOKEN instead"
        )
    if parts.query or parts.fragment:
        raise InvalidInput(
            f"{setting} must not carry a query (a SAS token belongs in AZURE_STORAGE_SAS_TOKEN or the "
            "connection string's SharedAccessSignature)"
        )
    return endpoint.strip()


def connection_endpoint(conn: str) -> str:
    """The blob endpoint a connection string names, for choosing its proxy (a malformed string is the SDK's
    to refuse, so any best guess will do here)."""
    fields = _connection_fields(conn)
    if fields.get("blobendpoint"):
        return fields["blobendpoint"]
    protocol = fields.get("defaultendpointsprotocol", "https")
    return (
        f"{protocol}://{fields.get('accountname', 'account')}.blob.{fields.get('endpointsuffix', 'core.windows.net')}"
    )


def _connection_fields(conn: str) -> dict[str, str]:
    """The ``Name=value`` fields of a connection string, names lower-cased; malformed parts are left to the
    SDK, which refuses the whole string."""
    fields: dict[str, str] = {}
    for part in conn.split(";"):
        name, sep, value = part.partition("=")
        if sep:
            fields[name.strip().lower()] = value.strip()
    return fields
