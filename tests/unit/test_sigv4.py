"""Our SigV4 signer against botocore's own S3 signer, request for request, at a pinned time.

botocore is the reference: a signature that differs from its signature for the same request is one S3 would
reject. The requests are built for botocore the way botocore builds them (its own percent-encoding of the key,
its own canonical query from a parameter dict), never from our output, so an encoding or ordering slip in
``sigv4`` shows up as a different Authorization header.
"""

from __future__ import annotations

import io
import re
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from unittest import mock

import pytest
import urllib3
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.utils import percent_encode

from orchestrator.providers import sigv4
from orchestrator.providers.s3_lean import LeanS3Client, static_credentials
from orchestrator.providers.sigv4 import EMPTY_SHA256, StaticCredentials, canonical_query, sign, uri_encode

WHEN = datetime(2026, 3, 14, 15, 9, 26, tzinfo=UTC)
KEYS = StaticCredentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
WITH_TOKEN = StaticCredentials("ASIAEXAMPLE", "se/cr+et=key", "FwoGZXIvYXdzEBYaD+token/with=odd+chars")

# Key characters that tell an RFC 3986 encoder from a sloppy one: ``+`` and ``=`` must be encoded, ``~`` must
# not, ``!'()`` are reserved (left alone by some encoders), ``%`` must be encoded as itself.
ODD_KEYS = {
    "space": "dir with space/file name.txt",
    "unicode": "données/日本語/ключ-€.bin",
    "tilde": "home/~user/.profile",
    "plus": "a+b/c+d.txt",
    "percent": "100%/lit%20eral%.txt",
    "bang-quote-paren": "it's/(draft)!/v1*.txt",
    "equals-amp-hash": "k=v&x#y?.txt",
}


@dataclass(frozen=True)
class Case:
    id: str
    method: str
    key: str
    query: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    credentials: StaticCredentials = KEYS
    region: str = "eu-west-1"
    # Where the request goes: a virtual-hosted AWS bucket or a path-style endpoint such as the lab's.
    virtual_host: bool = False


# Query dicts are deliberately not in sorted order, so a signer that forgot to sort would be caught.
LIST_QUERY = {"list-type": "2", "prefix": "backups/2026 03/naïve+€=x/", "encoding-type": "url"}
PAGE_QUERY = {**LIST_QUERY, "continuation-token": "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=+/="}

CASES = [
    Case("get-no-query", "GET", "plain/object.bin"),
    Case("get-virtual-host", "GET", "plain/object.bin", virtual_host=True, region="us-east-1"),
    Case("head-bucket", "HEAD", ""),
    Case("list-v2", "GET", "", LIST_QUERY),
    Case("list-v2-continuation", "GET", "", PAGE_QUERY),
    Case("list-v2-virtual-host", "GET", "", PAGE_QUERY, virtual_host=True),
    Case("list-v2-empty-prefix", "GET", "", {"list-type": "2", "prefix": "", "encoding-type": "url"}),
    *(Case(f"get-{name}", "GET", key) for name, key in ODD_KEYS.items()),
    *(Case(f"head-{name}", "HEAD", key, headers={"x-amz-checksum-mode": "ENABLED"}) for name, key in ODD_KEYS.items()),
    Case("get-range", "GET", "big/blob.bin", headers={"x-amz-checksum-mode": "ENABLED", "Range": "bytes=0-1048575"}),
    Case("get-session-token", "GET", "dir with space/a+b.txt", credentials=WITH_TOKEN),
    Case("list-session-token", "GET", "", PAGE_QUERY, credentials=WITH_TOKEN, region="ap-southeast-2"),
    Case("head-session-token", "HEAD", "k", headers={"x-amz-checksum-mode": "ENABLED"}, credentials=WITH_TOKEN),
    # Header values are canonicalised (trimmed, inner runs of spaces folded) before signing.
    Case("header-whitespace", "GET", "k", headers={"Range": "  bytes=5-9  ", "x-amz-meta-note": "a   b\tc"}),
]
BUCKET = "drctl-example-bucket"


def _origin(case: Case) -> tuple[str, str, str]:
    """Scheme, host and the path prefix for the bucket, as botocore would address it."""
    if case.virtual_host:
        return "https", f"{BUCKET}.s3.{case.region}.amazonaws.com", ""
    return "http", "127.0.0.1:4566", f"/{BUCKET}"


def _ours(case: Case) -> dict[str, str]:
    _, host, base = _origin(case)
    return sign(
        case.method,
        host,
        f"{base}/{uri_encode(case.key, keep_slash=True)}",
        case.query,
        case.headers,
        credentials=case.credentials,
        region=case.region,
        service="s3",
        now=WHEN,
        payload_sha256=EMPTY_SHA256,
    )


@contextmanager
def _botocore_clock(when: datetime) -> Iterator[None]:
    # botocore.auth reads the time through this name only; it wants a naive UTC datetime.
    def now(remove_tzinfo: bool = True) -> datetime:
        return when.replace(tzinfo=None) if remove_tzinfo else when

    with mock.patch("botocore.auth.get_current_datetime", now):
        yield


def _botocore(
    method: str,
    url: str,
    params: Mapping[str, str],
    headers: Mapping[str, str],
    credentials: StaticCredentials,
    region: str,
) -> dict[str, str]:
    """The headers botocore's S3 signer puts on the request, lower-cased."""
    request = AWSRequest(
        method=method,
        url=url,
        params=dict(params),
        # Our client sends no body and signs its SHA-256; botocore recomputes the same value for an empty body.
        headers={**headers, "X-Amz-Content-SHA256": EMPTY_SHA256},
    )
    botocore_credentials = Credentials(credentials.access_key, credentials.secret_key, credentials.session_token)
    with _botocore_clock(WHEN):
        S3SigV4Auth(botocore_credentials, "s3", region).add_auth(request)
    return {k.lower(): str(v) for k, v in request.headers.items()}


def _reference(case: Case) -> dict[str, str]:
    scheme, host, base = _origin(case)
    # botocore's serializer encodes a greedy {Key+} label exactly like this.
    url = f"{scheme}://{host}{base}/{percent_encode(case.key, safe='/~')}"
    return _botocore(case.method, url, case.query, case.headers, case.credentials, case.region)


def _mismatches() -> list[str]:
    return [case.id for case in CASES if _ours(case)["authorization"] != _reference(case)["authorization"]]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_signature_matches_botocore(case: Case) -> None:
    ours, reference = _ours(case), _reference(case)
    assert ours["authorization"] == reference["authorization"]
    # The headers the signature covers must go out with the values that were signed.
    for name in ("x-amz-date", "x-amz-content-sha256", "x-amz-security-token"):
        assert ours.get(name) == reference.get(name), name
    signed = ours["authorization"].split("SignedHeaders=")[1].split(",")[0].split(";")
    assert set(signed) == set(ours) - {"authorization"}


def test_signature_depends_on_every_input() -> None:
    # A signer that ignored, say, the query or the token would still agree with itself; it must not agree
    # with a request that differs in any signed part.
    base = Case("base", "GET", "k", PAGE_QUERY, {"Range": "bytes=0-9"}, WITH_TOKEN)
    variants = [
        Case("method", "HEAD", "k", PAGE_QUERY, {"Range": "bytes=0-9"}, WITH_TOKEN),
        Case("key", "GET", "k2", PAGE_QUERY, {"Range": "bytes=0-9"}, WITH_TOKEN),
        Case("query", "GET", "k", LIST_QUERY, {"Range": "bytes=0-9"}, WITH_TOKEN),
        Case("header", "GET", "k", PAGE_QUERY, {"Range": "bytes=0-8"}, WITH_TOKEN),
        Case("token", "GET", "k", PAGE_QUERY, {"Range": "bytes=0-9"}, StaticCredentials("ASIAEXAMPLE", "se/cr+et=key")),
        Case("region", "GET", "k", PAGE_QUERY, {"Range": "bytes=0-9"}, WITH_TOKEN, region="us-east-1"),
    ]
    signature = _ours(base)["authorization"].rsplit("Signature=", 1)[1]
    for variant in variants:
        assert _ours(variant)["authorization"].rsplit("Signature=", 1)[1] != signature, variant.id


def test_aws_documented_example() -> None:
    # The GetObject example of the S3 SigV4 documentation: an anchor that does not depend on botocore either.
    headers = sign(
        "GET",
        "examplebucket.s3.amazonaws.com",
        "/test.txt",
        {},
        {"Range": "bytes=0-9"},
        credentials=StaticCredentials("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
        region="us-east-1",
        service="s3",
        now=datetime(2013, 5, 24, tzinfo=UTC),
        payload_sha256=EMPTY_SHA256,
    )
    assert headers["authorization"] == (
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
        "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
        "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
    )


def _quote_keeping(extra: str) -> Callable[..., str]:
    def loose(text: str, safe: str = "/") -> str:
        return urllib.parse.quote(text, safe=safe + extra)

    return loose


def _lowercase_hex(text: str, safe: str = "/") -> str:
    return re.sub("%[0-9A-F]{2}", lambda m: m.group(0).lower(), urllib.parse.quote(text, safe=safe))


@pytest.mark.parametrize(
    ("name", "value"),
    [
        # Each is a plausible slip in sigv4.py; the comparison above must notice every one.
        ("sorted", lambda items: list(items)),
        ("quote", _quote_keeping("+=")),
        ("quote", _quote_keeping("!'()*")),
        ("quote", _quote_keeping("/")),
        ("quote", _lowercase_hex),
    ],
    ids=["unsorted", "keeps-plus-equals", "keeps-sub-delims", "keeps-slash-in-query", "lowercase-hex"],
)
def test_comparison_catches_a_broken_signer(monkeypatch: pytest.MonkeyPatch, name: str, value: object) -> None:
    assert _mismatches() == []
    monkeypatch.setattr(sigv4, name, value, raising=False)
    assert _mismatches() != []


@pytest.mark.parametrize("text", [*ODD_KEYS.values(), "a/b", "~", "-_.", " ", "ü", "\u0000\x7f"])
def test_uri_encode_matches_botocore(text: str) -> None:
    assert uri_encode(text, keep_slash=True) == percent_encode(text, safe="/~")
    assert uri_encode(text, keep_slash=False) == percent_encode(text, safe="-_.~")


def test_canonical_query_sorts_by_encoded_name_then_value() -> None:
    assert canonical_query({"b": "2", "a b": "x", "a": "1/+", "A": "z"}) == "A=z&a=1%2F%2B&a%20b=x&b=2"
    assert canonical_query({}) == ""


# -- the client's requests, as they go on the wire -------------------------------------------------------------


class _Recorded:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, str]]] = []


class _RecordingPool(urllib3.PoolManager):
    """Answers every request with an empty 200 and remembers what was sent; nothing leaves the process."""

    def __init__(self, recorded: _Recorded) -> None:
        super().__init__()
        self.recorded = recorded

    def request(
        self,
        method: str,
        url: str,
        body: Any = None,
        fields: Any = None,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        **urlopen_kw: Any,
    ) -> urllib3.BaseHTTPResponse:
        self.recorded.calls.append((method, url, dict(headers or {})))
        return urllib3.HTTPResponse(body=io.BytesIO(b""), status=200, preload_content=False)


@pytest.mark.parametrize("endpoint", [None, "http://127.0.0.1:4566"], ids=["aws", "endpoint"])
@pytest.mark.parametrize(
    "call",
    ["head_bucket", "list_page", "list_page_token", *(f"head_object:{k}" for k in ODD_KEYS), "get_object_range"],
)
def test_client_requests_match_botocore(endpoint: str | None, call: str) -> None:
    recorded = _Recorded()
    client = LeanS3Client(endpoint, "eu-west-1", WITH_TOKEN, _RecordingPool(recorded), clock=lambda: WHEN)
    key = ""
    params: Mapping[str, str] = {}
    extra: dict[str, str] = {}
    if call == "head_bucket":
        client.head_bucket(BUCKET)
    elif call.startswith("list_page"):
        token = PAGE_QUERY["continuation-token"] if call.endswith("token") else None
        client.list_page(BUCKET, LIST_QUERY["prefix"], token)
        params = PAGE_QUERY if token else LIST_QUERY
    elif call.startswith("head_object:"):
        key = ODD_KEYS[call.split(":", 1)[1]]
        client.head_object(BUCKET, key)
        extra = {"x-amz-checksum-mode": "ENABLED"}
    else:
        key = ODD_KEYS["unicode"]
        _, chunks, close = client.get_object(BUCKET, key, "bytes=3-7", "name")
        assert b"".join(chunks) == b""
        close()
        extra = {"x-amz-checksum-mode": "ENABLED", "range": "bytes=3-7"}
    ((method, url, sent),) = recorded.calls

    origin = endpoint or f"https://{BUCKET}.s3.eu-west-1.amazonaws.com"
    base = f"/{BUCKET}" if endpoint else ""
    expected_url = f"{origin}{base}/{percent_encode(key, safe='/~')}"
    reference = _botocore(method, expected_url, params, extra, WITH_TOKEN, "eu-west-1")

    parts = urllib.parse.urlsplit(url)
    # S3 recomputes the canonical request from what arrives, so the path and the decoded query that go out
    # must be the ones that were signed.
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == expected_url
    assert dict(urllib.parse.parse_qsl(parts.query, keep_blank_values=True)) == params
    assert "+" not in parts.query  # a bare "+" would reach S3 as a space
    assert sent["authorization"] == reference["authorization"]
    assert sent["host"] == parts.netloc


# -- credentials ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "env",
    [
        {"AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "s3cr3t", "AWS_PROFILE": "prod"},
        {"AWS_ACCESS_KEY_ID": "AKID"},
        {"AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": ""},
        {"AWS_SECRET_ACCESS_KEY": "s3cr3t"},
        {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "s3cr3t"},
        {},
    ],
    ids=["profile-wins", "no-secret", "empty-secret", "no-key", "empty-key", "nothing"],
)
def test_no_static_credentials_leaves_the_sdk_chain(env: dict[str, str]) -> None:
    assert static_credentials(env) is None


def test_static_credentials_carry_the_session_token() -> None:
    env = {"AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "s3cr3t", "AWS_SESSION_TOKEN": "tok"}
    assert static_credentials(env) == StaticCredentials("AKID", "s3cr3t", "tok")
    # An empty token variable is no token (some shells export it empty), not a token of "".
    assert static_credentials({**env, "AWS_SESSION_TOKEN": ""}) == StaticCredentials("AKID", "s3cr3t", None)
    assert static_credentials({**env, "AWS_PROFILE": ""}) == StaticCredentials("AKID", "s3cr3t", "tok")


def test_credentials_repr_hides_secret_and_token() -> None:
    credentials = StaticCredentials("AKIDVISIBLE", "SECRETxSECRETxSECRET", "TOKENxTOKENxTOKEN")
    for text in (repr(credentials), str(credentials), f"{credentials}", repr([credentials])):
        assert "AKIDVISIBLE" in text
        assert "SECRETxSECRETxSECRET" not in text
        assert "TOKENxTOKENxTOKEN" not in text
