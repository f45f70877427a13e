"""What the lean signed clients (``s3_lean``, ``azure_rest``) share: one pool per CA bundle with the bounds
every client uses, and a streamed response body that is safe to close early."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping

import urllib3

from orchestrator.providers.base import CONNECT_TIMEOUT_S, READ_TIMEOUT_S

CHUNK = 1024 * 1024


def ca_bundle(env: Mapping[str, str], *variables: str) -> str:
    """The CA bundle the SDK would trust: the first of ``variables`` set in ``env``, else certifi's. Both paths
    to an endpoint then accept and refuse the same certificates."""
    for name in variables:
        if env.get(name):
            return env[name]
    import certifi

    return str(certifi.where())


@functools.cache
def http_pool(ca_bundle: str) -> urllib3.PoolManager:
    """One pool per process and CA bundle, sized for transfers x parts in flight; no urllib3 retries (tenacity
    is the only retry layer)."""
    timeout = urllib3.Timeout(connect=CONNECT_TIMEOUT_S, read=READ_TIMEOUT_S)
    return urllib3.PoolManager(maxsize=32, timeout=timeout, retries=False, ca_certs=ca_bundle)


def streamed_body(
    resp: urllib3.BaseHTTPResponse, broken: Callable[[urllib3.exceptions.HTTPError], Exception]
) -> tuple[Iterator[bytes], Callable[[], None]]:
    """The body's chunks as they arrive (``broken`` maps a transport failure mid-body to the client's error)
    and a close hook."""
    finished = False

    def chunks() -> Iterator[bytes]:
        nonlocal finished
        try:
            yield from resp.stream(CHUNK, decode_content=False)
        except urllib3.exceptions.HTTPError as exc:
            raise broken(exc) from exc
        finished = True

    def close() -> None:
        # A body not read to its end leaves the connection mid-response: drop it rather than reuse it.
        if not finished:
            resp.close()
        resp.release_conn()

    return chunks(), close
