"""Where a storage account's blob endpoint is and which shared key or SAS signs for it, read from the same
settings ``providers.factory`` gives the SDK (a connection string, or an account with a key or a SAS).

The lean client (``azure_rest``) signs with these directly, so a backup needs no SDK client. Anything this does
not recognise (development-storage shorthands, an Azure identity) gives None, and the SDK is used instead.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class BlobSettings:
    account: str
    blob_endpoint: str  # with no trailing slash, e.g. https://acct.blob.core.windows.net
    account_key: bytes | None = field(default=None, repr=False)
    sas: str | None = field(default=None, repr=False)


def _connection_fields(conn: str) -> dict[str, str] | None:
    fields: dict[str, str] = {}
    for part in conn.split(";"):
        if not part.strip():
            continue
        name, sep, value = part.partition("=")
        if not sep:
            return None
        fields[name.strip().lower()] = value.strip()
    return fields


def _key(text: str | None) -> bytes | None:
    if not text:
        return None
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


@dataclass(frozen=True)
class StorageChoice:
    """Which of the environment's settings name the storage account, and how to sign for it: the one rule both
    the SDK client (``providers.factory``) and the lean client follow."""

    connection_string: str | None = field(default=None, repr=False)
    """Set when a connection string names the account: it then says everything else."""
    account: str | None = None
    endpoint: str | None = None
    key: str | None = field(default=None, repr=False)
    sas: str | None = field(default=None, repr=False)
    """Only when there is no key: a key is preferred."""


def storage_choice(env: Mapping[str, str], account_override: str | None = None) -> StorageChoice:
    conn = env.get("AZURE_STORAGE_CONNECTION_STRING")
    account = account_override or env.get("AZURE_STORAGE_ACCOUNT")
    if conn and (account is None or f"AccountName={account};" in conn + ";"):
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


def blob_settings(env: Mapping[str, str], account_override: str | None = None) -> BlobSettings | None:
    """The account, endpoint and signing secret the SDK would use, or None where only the SDK can tell."""
    choice = storage_choice(env, account_override)
    if choice.connection_string:
        return _from_connection_string(choice.connection_string)
    if not choice.account or not choice.endpoint or "?" in choice.endpoint:
        return None
    endpoint = choice.endpoint.rstrip("/")
    if choice.key:
        key = _key(choice.key)
        return BlobSettings(choice.account, endpoint, account_key=key) if key else None
    if choice.sas:
        return BlobSettings(choice.account, endpoint, sas=choice.sas)
    return None


def _from_connection_string(conn: str) -> BlobSettings | None:
    fields = _connection_fields(conn)
    if fields is None or "usedevelopmentstorage" in fields:
        return None
    account = fields.get("accountname")
    endpoint = fields.get("blobendpoint")
    if not endpoint:
        if not account:
            return None
        protocol = fields.get("defaultendpointsprotocol", "https")
        suffix = fields.get("endpointsuffix", "core.windows.net")
        endpoint = f"{protocol}://{account}.blob.{suffix}"
    endpoint = endpoint.rstrip("/")
    if not account:
        # A SAS connection string may name only the endpoint; the account is its first host label.
        account = endpoint.split("://", 1)[-1].split(".", 1)[0].split("/", 1)[0]
    if fields.get("sharedaccesssignature"):
        return BlobSettings(account, endpoint, sas=fields["sharedaccesssignature"].lstrip("?"))
    key = _key(fields.get("accountkey"))
    return BlobSettings(account, endpoint, account_key=key) if key else None
