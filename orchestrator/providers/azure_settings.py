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


def blob_settings(env: Mapping[str, str], account_override: str | None = None) -> BlobSettings | None:
    """The account, endpoint and signing secret the SDK would use, or None where only the SDK can tell."""
    conn = env.get("AZURE_STORAGE_CONNECTION_STRING")
    account = account_override or env.get("AZURE_STORAGE_ACCOUNT")
    if conn and (account is None or f"AccountName={account};" in conn + ";"):
        return _from_connection_string(conn)
    if not account:
        return None
    endpoint = (env.get("AZURE_STORAGE_BLOB_ENDPOINT") or f"https://{account}.blob.core.windows.net").rstrip("/")
    if "?" in endpoint:
        return None
    if env.get("AZURE_STORAGE_KEY"):
        key = _key(env["AZURE_STORAGE_KEY"])
        return BlobSettings(account, endpoint, account_key=key) if key else None
    if env.get("AZURE_STORAGE_SAS_TOKEN"):
        return BlobSettings(account, endpoint, sas=env["AZURE_STORAGE_SAS_TOKEN"].lstrip("?"))
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
