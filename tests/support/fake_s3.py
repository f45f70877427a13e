"""A local stand-in for S3, for what LocalStack cannot do: check signatures the way S3 does (with botocore's
own signer as the reference), serve chosen checksum and ETag headers, and answer as a bucket in another
region does (a 301 with the region in a header, a 400 that names it only in its body, a 307)."""

from __future__ import annotations

import hmac
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit
from xml.sax.saxutils import escape

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


@dataclass(frozen=True)
class Seen:
    """One request as the server received it: ``path`` is the raw request target, before any normalising."""

    method: str
    path: str
    signature_ok: bool
    region: str | None


@dataclass
class Served:
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


class FakeS3(ThreadingHTTPServer):
    """Serves ``objects`` at ``/<bucket>/<key>`` and, at ``/<bucket>``, a listing of them (``listed``) or an
    empty one. With ``secret`` set, a request whose signature botocore's signer does not reproduce gets S3's
    403 SignatureDoesNotMatch. With ``home_region`` set, a request signed for another region is answered as S3
    answers one for a bucket elsewhere, by ``redirect``: "301" (PermanentRedirect, region in a header), "400"
    (AuthorizationHeaderMalformed, region only in the body) or "307" (TemporaryRedirect, region in a header).
    Keys are looked up exactly as sent: ``a/../b`` is a key of its own, as in S3."""

    daemon_threads = True

    def __init__(
        self,
        objects: Mapping[str, Served],
        secret: str | None = None,
        listed: bool = False,
        home_region: str | None = None,
        redirect: str = "301",
    ) -> None:
        super().__init__(("127.0.0.1", 0), _FakeS3Handler)
        self.objects = dict(objects)
        self.secret = secret
        self.listed = listed
        self.home_region = home_region
        self.redirect = redirect
        self.requests: list[Seen] = []

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


_AUTH = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/\d{8}/(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request, ?"
    r"SignedHeaders=(?P<signed>[^,]+), ?Signature=(?P<signature>[0-9a-f]{64})"
)


def _listing(objects: Mapping[str, Served]) -> bytes:
    contents = "".join(
        f"<Contents><Key>{quote(key)}</Key><LastModified>2026-11-26T10:00:00.000Z</LastModified>"
        f"<ETag>{escape(served.headers.get('ETag', ''))}</ETag><Size>{len(served.body)}</Size></Contents>"
        for key, served in sorted(objects.items())
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        f"<Name>b</Name><Prefix></Prefix><KeyCount>{len(objects)}</KeyCount><MaxKeys>1000</MaxKeys>"
        f"<EncodingType>url</EncodingType><IsTruncated>false</IsTruncated>{contents}</ListBucketResult>"
    ).encode()


_BAD_SIGNATURE = (
    b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SignatureDoesNotMatch</Code>'
    b"<Message>The request signature we calculated does not match the signature you provided.</Message></Error>"
)


def _elsewhere(home: str, redirect: str, url: str, head: bool) -> tuple[int, dict[str, str], bytes]:
    """S3's answer to a request signed for the wrong region, in the style asked for."""
    if redirect == "400" and head:
        # A HEAD answer has no body, so S3 names the region in a header there.
        return 400, {"x-amz-bucket-region": home}, b""
    if redirect == "400":
        body = (
            "<Error><Code>AuthorizationHeaderMalformed</Code><Message>The authorization header is malformed; the "
            f"region 'us-east-1' is wrong; expecting '{home}'</Message><Region>{home}</Region></Error>"
        )
        return 400, {}, body.encode()
    if redirect == "307":
        body = f"<Error><Code>TemporaryRedirect</Code><Endpoint>{escape(url)}</Endpoint></Error>"
        return 307, {"x-amz-bucket-region": home, "Location": url}, body.encode()
    body = f"<Error><Code>PermanentRedirect</Code><Endpoint>{escape(url)}</Endpoint></Error>"
    return 301, {"x-amz-bucket-region": home}, body.encode()


class _FakeS3Handler(BaseHTTPRequestHandler):
    server: FakeS3
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep pytest's output to the tests' own

    def do_GET(self) -> None:
        self._answer(send_body=True)

    def do_HEAD(self) -> None:
        self._answer(send_body=False)

    def _signature_ok(self, secret: str) -> bool:
        match = _AUTH.fullmatch(self.headers.get("Authorization", ""))
        if match is None:
            return False
        parts = urlsplit(self.path)
        request = AWSRequest(
            method=self.command,
            url=f"http://{self.headers['host']}{parts.path}",
            params=dict(parse_qsl(parts.query, keep_blank_values=True)),
            headers={name: self.headers[name] or "" for name in match["signed"].split(";")},
        )
        request.context["timestamp"] = self.headers.get("x-amz-date", "")
        signer = S3SigV4Auth(Credentials(match["key"], secret), match["service"], match["region"])
        expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
        return hmac.compare_digest(expected, match["signature"])

    def _answer(self, *, send_body: bool) -> None:
        path = urlsplit(self.path).path
        ok = self.server.secret is None or self._signature_ok(self.server.secret)
        match = _AUTH.fullmatch(self.headers.get("Authorization", ""))
        region = match["region"] if match else None
        self.server.requests.append(Seen(self.command, self.path, ok, region))
        _, _, key = path.lstrip("/").partition("/")
        listing = _listing(self.server.objects if self.server.listed else {})
        served = self.server.objects.get(unquote(key)) if key else Served(listing)
        status, body = 200, b""
        headers: dict[str, str] = {}
        home = self.server.home_region
        if home and region != home:
            status, headers, body = _elsewhere(
                home, self.server.redirect, self.server.endpoint + self.path, self.command == "HEAD"
            )
        elif not ok:
            status, body = 403, _BAD_SIGNATURE
        elif served is None:
            status, body = 404, b"<Error><Code>NoSuchKey</Code></Error>"
        else:
            headers, body = {"Last-Modified": "Thu, 26 Nov 2026 10:00:00 GMT", **served.headers}, served.body
            match = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
            if match:
                end = int(match[2]) + 1 if match[2] else len(body)
                status, body = 206, body[int(match[1]) : end]
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        # S3 sends no body with a HEAD answer, errors included.
        if send_body:
            self.wfile.write(body)


@pytest.fixture
def fake_s3() -> Iterator[Callable[..., FakeS3]]:
    servers: list[FakeS3] = []

    def start(objects: Mapping[str, Served], secret: str | None = None, listed: bool = False, **kw: Any) -> FakeS3:
        # Bound and listening once constructed: requests queue in the backlog until serve_forever runs.
        server = FakeS3(objects, secret, listed, **kw)
        threading.Thread(target=server.serve_forever, name="fake-s3", daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()
