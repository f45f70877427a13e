"""An Azure block blob built by the service itself from a source URL, as AzCopy copies S3 into Azure.

Each block is staged with Put Block From URL: the Blob service reads one byte range of the source (a presigned
S3 GET) and stores it, then Put Block List commits the blocks in order with the blob's metadata. The bytes
never pass through drctl; it only sends one small request per block.

Not every service can do this. An emulator may lack the operation (Azurite answers Put Blob From URL with
APINotImplemented), and Azure cannot read a source it cannot reach or that refuses it (CannotVerifyCopySource:
an S3 endpoint on a private network, a bucket policy that admits only some networks, an expired URL). Those
answers raise ``ServerSideUnavailable``, so the caller can stream the object instead and stop trying this
endpoint; any other failure is the destination store's usual error.

The source URL carries a signature (and, from a role session, a token): it is a secret. No message, and no
error chained under one, ever contains it.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from enum import Enum
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from orchestrator.errors import DrError, IntegrityError, InvalidInput, ServerSideUnavailable
from orchestrator.log_setup import mask_secrets
from orchestrator.providers.azure_blob import AzureBlobStore
from orchestrator.providers.base import DEFAULT_PART_CONCURRENCY, READ_TIMEOUT_S, ObjectInfo

if TYPE_CHECKING:
    from azure.core.exceptions import HttpResponseError

T = TypeVar("T")

MiB = 1024 * 1024
DEFAULT_BLOCK_SIZE = 100 * MiB
MAX_BLOCK_SIZE = 4000 * MiB
"""The most one Put Block From URL may stage (service version 2019-12-12 and later)."""
MAX_BLOCKS = 50_000
"""The most blocks one blob may commit."""
DEFAULT_CONCURRENCY = DEFAULT_PART_CONCURRENCY
"""Blocks staged at once per object. The caller copies several objects at once; together they stay within the
connection pool the factory gives each Azure client (transfers x this)."""
SLOWEST_SOURCE_BYTES_PER_S = 4 * MiB
"""The service answers a block only once it has read the whole range from the source, so the wait for the
answer grows with the block: at least this rate is expected before a block is given up as stuck."""
# The service lacks the operation (a 501, whatever the code says) or cannot read the source.
_UNAVAILABLE_CODES = frozenset({"APINotImplemented", "NotImplemented", "CannotVerifyCopySource"})
# Every block id of one blob must have the same length, uncommitted ones left by an earlier attempt included.
# The SDK sends an id base64-encoded; the store's own block writes hand it ids of 32 characters, and so does
# this module, so either path can follow a failed attempt of the other on the same blob.
_BLOCK_ID_CHARS = 32


class _SdkErrorText(Exception):
    """An SDK error kept as masked text under the error raised for it: the chain still says what the service
    answered, without the secrets it may echo (Azure's AuthenticationFailed quotes the string it signed, the
    x-ms-copy-source header and so the presigned URL included)."""


def block_size_for(size: int, wanted: int = DEFAULT_BLOCK_SIZE) -> int:
    """The block size for an object of ``size`` bytes: ``wanted``, or larger when ``wanted`` would need more
    blocks than one blob may commit. Raises ``InvalidInput`` for an object too large for any block blob."""
    if not 1 <= wanted <= MAX_BLOCK_SIZE:
        raise ValueError(f"a block staged from a URL holds 1 to {MAX_BLOCK_SIZE} bytes, not {wanted}")
    block = max(wanted, -(-size // MAX_BLOCKS))
    if block > MAX_BLOCK_SIZE:
        raise InvalidInput(
            f"an object of {size} bytes is larger than an Azure block blob can hold "
            f"({MAX_BLOCKS} blocks of {MAX_BLOCK_SIZE // MiB} MiB); split it or keep it in S3"
        )
    return block


def block_ranges(size: int, block_size: int) -> list[tuple[int, int]]:
    """``(offset, length)`` of each block, in order; the last one is short unless ``block_size`` divides
    ``size``. An empty object has no blocks (committing none makes an empty blob)."""
    return [(offset, min(block_size, size - offset)) for offset in range(0, size, block_size)]


def block_id(block_size: int, index: int) -> str:
    """The id of block ``index`` as handed to the SDK (which sends it base64-encoded): the same for the same
    block of the same plan, so a retried or repeated copy replaces its own uncommitted blocks instead of piling
    up new ones. The block size is part of it, so two plans of one blob never take each other's blocks."""
    return f"{block_size:016x}{index:0{_BLOCK_ID_CHARS - 16}x}"


def copy_from_url(
    dest: AzureBlobStore,
    dest_key: str,
    source_url: str,
    size: int,
    metadata: Mapping[str, str],
    block_size: int = DEFAULT_BLOCK_SIZE,
    concurrency: int = DEFAULT_CONCURRENCY,
) -> ObjectInfo:
    """Build ``dest_key`` in ``dest`` from the ``size`` bytes at ``source_url`` (readable by the Blob service
    itself, with byte ranges: a presigned S3 GET), committed with ``metadata``, and return its info.

    Raises ``ServerSideUnavailable`` when the service cannot do it (nothing committed: stream instead),
    ``IntegrityError`` if the committed blob does not have ``size`` bytes, and otherwise the store's errors.
    ``source_url`` never appears in any of them."""
    secrets = _secrets_of(source_url, dest)
    try:
        return _copy(dest, dest_key, source_url, size, metadata, block_size_for(size, block_size), concurrency)
    except DrError as exc:
        masked, cause = _masked(exc, secrets), _masked_cause(exc, secrets)
    # Raised outside the handler, so the unmasked error is not kept as its context either.
    raise masked from cause


def _copy(
    dest: AzureBlobStore,
    dest_key: str,
    source_url: str,
    size: int,
    metadata: Mapping[str, str],
    block_size: int,
    concurrency: int,
) -> ObjectInfo:
    from azure.storage.blob import BlobBlock

    # The store's own plumbing (key rules, retries, error translation), so this path fails as its writes do.
    name = dest._name(dest_key)
    blob = dest._container.get_blob_client(dest._writable(dest_key))
    ranges = block_ranges(size, block_size)
    ids = [block_id(block_size, i) for i in range(len(ranges))]
    # The service holds the request open while it reads the range from the source.
    read_timeout = max(READ_TIMEOUT_S, block_size // SLOWEST_SOURCE_BYTES_PER_S)

    def stage(index: int) -> None:
        offset, length = ranges[index]
        _call(
            dest,
            name,
            lambda: blob.stage_block_from_url(
                ids[index], source_url, source_offset=offset, source_length=length, read_timeout=read_timeout
            ),
        )

    _in_parallel(stage, range(len(ranges)), concurrency)
    # Until this commit the staged blocks are invisible (and collected by the service after a week): a failure
    # before it leaves no blob behind, and no earlier blob is harmed.
    blocks = [BlobBlock(block_id=i) for i in ids]
    _call(dest, name, lambda: blob.commit_block_list(blocks, metadata=dict(metadata)))
    info = dest.stat(dest_key)
    if info.size != size:
        # The source shrank while it was read: a blob that is not the object must not stay.
        with contextlib.suppress(DrError):
            dest.delete(dest_key)
        raise IntegrityError(
            f"{name} was committed with {info.size} bytes where its source has {size}: the source changed "
            "during the copy; it was removed, copy it again"
        )
    return info


def _in_parallel(fn: Callable[[int], None], items: Iterable[int], concurrency: int) -> None:
    """``fn`` over ``items`` with at most ``concurrency`` in flight; after a failure no new one starts, and the
    first failure is raised once those in flight are done."""
    slots = threading.BoundedSemaphore(max(1, concurrency))
    failed = threading.Event()

    def run(item: int) -> None:
        try:
            fn(item)
        except BaseException:
            failed.set()
            raise
        finally:
            slots.release()

    futures: list[Future[None]] = []
    with ThreadPoolExecutor(max(1, concurrency), thread_name_prefix="az-from-url") as pool:
        for item in items:
            slots.acquire()
            if failed.is_set():
                slots.release()
                break
            futures.append(pool.submit(run, item))
    for f in futures:
        f.result()


def _call(dest: AzureBlobStore, name: str, fn: Callable[[], T]) -> T:
    """``fn`` under the store's retries and error translation, with the answers that mean "this service
    cannot copy from this URL" raised as ``ServerSideUnavailable`` first (never retried)."""

    def attempt() -> T:
        from azure.core.exceptions import HttpResponseError

        try:
            return fn()
        except HttpResponseError as exc:
            unavailable = _unavailable(exc, name, dest.endpoint)
            if unavailable is None:
                raise
            raise unavailable from exc

    return dest._call(name, attempt)


def _unavailable(exc: HttpResponseError, name: str, endpoint: str) -> ServerSideUnavailable | None:
    raw = getattr(exc, "error_code", None) or ""
    code = str(raw.value if isinstance(raw, Enum) else raw)
    if code not in _UNAVAILABLE_CODES and exc.status_code != 501:
        return None
    source_status = _source_status(exc)
    if code == "CannotVerifyCopySource":
        answered = f", which answered {source_status}" if source_status else ""
        why = f"cannot read the source{answered} (CannotVerifyCopySource)"
    else:
        why = f"does not implement Put Block From URL ({code or exc.status_code})"
    return ServerSideUnavailable(
        f"the Azure Blob endpoint {endpoint} {why}, so {name} cannot be copied server-side; "
        "its bytes must be streamed through drctl",
        code=code or str(exc.status_code),
        source_status=source_status,
    )


def _source_status(exc: HttpResponseError) -> int | None:
    """The status the source gave the service: a header of newer service versions, else the error body's
    CopySourceStatusCode (which the SDK keeps in ``additional_info``)."""
    headers: Mapping[str, str] = getattr(exc.response, "headers", None) or {}
    info: Mapping[str, str] = getattr(exc, "additional_info", None) or {}
    value = headers.get("x-ms-copy-source-status-code") or info.get("copysourcestatuscode")
    try:
        return int(value) if value else None
    except ValueError:
        return None


def _secrets_of(source_url: str, dest: AzureBlobStore) -> frozenset[str]:
    """What must never be shown: the source URL, its query and each query value (the signature, the signing
    credential, a session token), raw and decoded, and the same of a SAS in the destination's container URL."""
    found: set[str] = {source_url}
    for url in (source_url, str(dest._container.url)):
        query = urlsplit(url).query
        if not query:
            continue
        found |= {query, unquote(query)}
        for _, value in parse_qsl(query, keep_blank_values=True):
            # As decoded, and as the URL (or a message quoting it) encodes it.
            found |= {value, quote(value, safe=""), quote(value, safe="/")}
    # Short values (a version, an expiry) are no secret, and masking them would mangle every message.
    return frozenset(s for s in found if len(s) >= 8)


def _masked(exc: DrError, secrets: frozenset[str]) -> DrError:
    message = mask_secrets(str(exc), secrets)
    if isinstance(exc, ServerSideUnavailable):
        return ServerSideUnavailable(message, code=exc.code, source_status=exc.source_status)
    # Every other DrError takes its one-line message as its only argument.
    return type(exc)(message)


def _masked_cause(exc: BaseException, secrets: frozenset[str]) -> _SdkErrorText | None:
    cause = exc.__cause__
    if cause is None:
        return None
    return _SdkErrorText(f"{type(cause).__name__}: {mask_secrets(str(cause), secrets)}")
