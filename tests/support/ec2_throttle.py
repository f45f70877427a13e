"""An EC2 throttle simulator: a proxy between drctl and LocalStack's EC2 that counts every call by action and,
with limits, answers ``RequestLimitExceeded`` as EC2 does once a token bucket is empty.

EC2 throttles each account and region with token buckets (https://docs.aws.amazon.com/ec2/latest/devguide/
ec2-api-throttling.html): a request bucket per API (each request takes a token) and, for the calls that make or
end instances, a resource bucket (each instance takes a token). LocalStack throttles nothing, so without this a
lab cannot show how a drill behaves on the day everyone in a region is launching.

The EC2 Query API is a form-encoded POST (``Action=RunInstances&MaxCount=50&...``), so the proxy reads the
action and the instance count from the body and relays the request unchanged (SigV4 signs the body and the
Host header, so neither may change). Only the stdlib is used.
"""

from __future__ import annotations

import http.client
import threading
import time
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

UPSTREAM_TIMEOUT_S = 120.0
_DROPPED = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"}


@dataclass
class Bucket:
    """A token bucket: ``capacity`` tokens at most, ``refill`` added each second, full at the start."""

    capacity: float
    refill: float
    tokens: float = field(init=False)
    stamp: float = field(init=False, default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.tokens = self.capacity

    def take(self, n: float) -> bool:
        """Take ``n`` tokens if the bucket holds them; a request that needs more than it holds takes none."""
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.refill)
        self.stamp = now
        if n > self.tokens:
            return False
        self.tokens -= n
        return True


@dataclass(frozen=True)
class Limits:
    """Bucket sizes and refill rates. ``request``: per action, else the category's (``Describe*`` are
    non-mutating, the rest mutating). ``resource``: per action, counted in instances."""

    request: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    mutating: tuple[float, float] = (50, 5)
    non_mutating: tuple[float, float] = (100, 20)
    resource: Mapping[str, tuple[float, float]] = field(
        default_factory=lambda: {
            "RunInstances": (1000, 2),
            "StartInstances": (1000, 2),
            "TerminateInstances": (1000, 20),
            "StopInstances": (1000, 20),
        }
    )


AWS_DEFAULTS = Limits()
"""The account-level defaults as EC2's throttling page gave them when this was written (the request
categories, and the RunInstances resource bucket of 1,000 instances refilled at 2 a second)."""


def instances_in(action: str, form: Mapping[str, list[str]]) -> int:
    """How many instances a call makes or acts on: what its resource bucket is charged."""
    if action == "RunInstances":
        return int(form.get("MaxCount", ["1"])[0])
    return sum(1 for key in form if key.startswith("InstanceId."))


class Ec2ThrottleProxy:
    """Relays ``url`` to ``upstream``; counts ``calls`` and ``throttled`` by action. ``limits=None`` throttles
    nothing (a call counter). ``instances`` counts the instances each action was charged for."""

    def __init__(self, upstream: str, limits: Limits | None = None) -> None:
        target = urlsplit(upstream)
        if target.scheme != "http" or not target.hostname:
            raise ValueError(f"the throttle proxy relays plain http only, not {upstream!r}")
        self.upstream = (target.hostname, target.port or 80)
        self.limits = limits
        self.calls: Counter[str] = Counter()
        self.throttled: Counter[str] = Counter()
        self.instances: Counter[str] = Counter()
        self._buckets: dict[tuple[str, str], Bucket] = {}
        self._lock = threading.Lock()
        handler = type("Handler", (_Handler,), {"proxy": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="ec2-throttle", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    def admit(self, action: str, instances: int) -> bool:
        """Count the call, and say whether its buckets let it through (taking their tokens if so)."""
        with self._lock:
            self.calls[action] += 1
            if self.limits is None:
                self.instances[action] += instances
                return True
            request = self._bucket("request", action, self._request_limit(action))
            resource_limit = self.limits.resource.get(action)
            resource = self._bucket("resource", action, resource_limit) if resource_limit else None
            # Both must hold enough before either is charged, as a refused request costs nothing.
            request_ok = request.take(1)
            if request_ok and resource is not None and not resource.take(instances):
                request.tokens += 1
                request_ok = False
            if not request_ok:
                self.throttled[action] += 1
                return False
            self.instances[action] += instances
            return True

    def _request_limit(self, action: str) -> tuple[float, float]:
        assert self.limits is not None
        if action in self.limits.request:
            return self.limits.request[action]
        return self.limits.non_mutating if action.startswith("Describe") else self.limits.mutating

    def _bucket(self, kind: str, action: str, limit: tuple[float, float]) -> Bucket:
        # One bucket per action and kind: EC2 evaluates each API's request rate on its own.
        key = (kind, action)
        if key not in self._buckets:
            self._buckets[key] = Bucket(*limit)
        return self._buckets[key]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


class _Handler(BaseHTTPRequestHandler):
    proxy: Ec2ThrottleProxy
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        form = parse_qs(body.decode("utf-8", "replace"))
        action = form.get("Action", ["?"])[0]
        if not self.proxy.admit(action, instances_in(action, form)):
            self._throttle()
            return
        upstream = http.client.HTTPConnection(*self.proxy.upstream, timeout=UPSTREAM_TIMEOUT_S)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _DROPPED}
            upstream.request("POST", self.path, body=body, headers=headers)
            answer = upstream.getresponse()
            payload = answer.read()
            self.send_response(answer.status, answer.reason)
            for key, value in answer.getheaders():
                if key.lower() not in _DROPPED | {"content-length"}:
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        finally:
            upstream.close()

    def _throttle(self) -> None:
        # EC2's own wording and shape: botocore reads the code from Response/Errors/Error.
        payload = (
            '<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>RequestLimitExceeded</Code>'
            "<Message>Request limit exceeded.</Message></Error></Errors>"
            f"<RequestID>{uuid.uuid4()}</RequestID></Response>"
        ).encode()
        self.send_response(503, "Service Unavailable")
        self.send_header("Content-Type", "text/xml;charset=UTF-8")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:
        del format, args
