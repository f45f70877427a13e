"""A reverse proxy on loopback that sits between drctl and one emulator endpoint and breaks the traffic on a
schedule: throttling and server errors as S3 or Azure Blob word them, slow answers, connections cut partway
through a response body or a request body, and outages (every connection reset, new ones refused for a
window, as when the service behind it restarts).

It counts what it injected, per kind, so a test can prove its faults really happened: a fault test whose proxy
injected nothing has tested nothing. Only the stdlib is used, so the proxy adds no dependency and behaves the
same on every machine. Bodies are streamed as they arrive (only a chunked answer that is to be cut is held, to
announce its length), and the Host header is passed on unchanged: SigV4 signs it, and Azure's shared key does not
cover it.
"""

from __future__ import annotations

import contextlib
import http.client
import random
import re
import selectors
import socket
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any, Literal
from urllib.parse import urlsplit

import pytest

FaultKind = Literal["503", "429", "500", "delay", "cut-response", "cut-request", "outage"]
Dialect = Literal["s3", "azure"]
FAULT_KINDS: tuple[FaultKind, ...] = ("503", "429", "500", "delay", "cut-response", "cut-request", "outage")
STATUS_KINDS: frozenset[FaultKind] = frozenset({"503", "429", "500"})

# What each service says with each status: S3's SlowDown and InternalError, Azure's ServerBusy and
# InternalError. 429 is not in AWS's S3 vocabulary but S3-compatible stores and gateways answer it, so drctl
# must treat it as throttling too.
_ANSWERS: dict[tuple[Dialect, FaultKind], tuple[int, str, str]] = {
    ("s3", "503"): (503, "SlowDown", "Please reduce your request rate."),
    ("s3", "429"): (429, "TooManyRequests", "Too many requests; please slow down."),
    ("s3", "500"): (500, "InternalError", "We encountered an internal error. Please try again."),
    ("azure", "503"): (503, "ServerBusy", "The server is currently unable to receive requests. Please retry."),
    ("azure", "429"): (429, "TooManyRequests", "Too many requests; please retry later."),
    ("azure", "500"): (500, "InternalError", "The server encountered an internal error. Please retry the request."),
}
_HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade"}
# A request body is relayed verbatim (chunked framing and trailers included), so only the connection's own
# headers are dropped; Expect is answered by the proxy itself.
_REQUEST_DROPPED = {"connection", "keep-alive", "proxy-connection", "upgrade", "expect"}
_CHUNK = 64 * 1024
UPSTREAM_TIMEOUT_S = 120.0  # longer than drctl's own read timeout, so drctl, not the proxy, gives up first


@dataclass(frozen=True)
class Rule:
    """When to inject one kind of fault.

    A request matches when its method is in ``methods`` (empty: any) and ``path`` (a regex searched in the
    request target, path and query) finds it. Of the matching requests, the ``first``-th and then every
    ``every``-th after it are eligible; each eligible one is injected with ``probability`` (drawn from the
    proxy's seeded generator: the same requests in the same order draw the same faults), until ``limit``
    injections (None: no limit).
    A ``cut-request`` needs a request body and a ``cut-response`` a response body of two bytes or more: a
    request without one passes untouched and does not count as injected.
    """

    kind: FaultKind
    methods: frozenset[str] = frozenset()
    path: str | None = None
    first: int = 1
    every: int = 1
    limit: int | None = None
    probability: float = 1.0
    delay_s: float = 1.0
    """``delay``: how long the answer is held back before the request is relayed."""
    cut_at: float = 0.5
    """``cut-response``/``cut-request``: the fraction of the body sent before the connection is cut."""
    outage_s: float = 2.0
    """``outage``: how long new connections are refused after every open one is reset."""

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}")
        if self.first < 1 or self.every < 1 or not 0 < self.cut_at < 1 or not 0 <= self.probability <= 1:
            raise ValueError(f"rule out of range: {self}")


@dataclass
class _RuleState:
    rule: Rule
    pattern: re.Pattern[str] | None
    matched: int = 0
    injected: int = 0
    pending: int = 0
    """Decided but not yet carried out: they count against ``limit`` so concurrent requests cannot overshoot it."""


@dataclass(frozen=True)
class _Fault:
    rule: Rule
    state: _RuleState


@dataclass
class _Live:
    """The client connections being served, so an outage can reset every one of them."""

    sockets: set[socket.socket] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)


class FaultProxy:
    """Relays ``http://127.0.0.1:<port>`` to ``upstream`` and injects the faults ``rules`` schedule.

    ``dialect`` chooses the error bodies ("s3": S3's XML errors; "azure": Blob's, with ``x-ms-error-code``).
    The proxy listens from construction; ``close`` stops it and resets every connection it still serves.
    """

    def __init__(self, upstream: str, rules: Sequence[Rule] = (), *, dialect: Dialect, seed: int = 0) -> None:
        target = urlsplit(upstream)
        if target.scheme != "http" or not target.hostname:
            raise ValueError(f"the fault proxy relays plain http only, not {upstream!r}")
        self.upstream_host = target.hostname
        self.upstream_port = target.port or 80
        self.dialect: Dialect = dialect
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._states: list[_RuleState] = []
        self._injected: Counter[str] = Counter()
        self._requests = 0
        self._relay_failures = 0
        self._live = _Live()
        self._closing = threading.Event()
        # The accept thread alone opens and closes the listening socket; other threads ask it to through
        # ``_want_open`` and the wake-up pair, so no socket is closed under a thread blocked on it.
        self._want_open = True
        self._listening = threading.Event()
        self._refusing = threading.Event()
        self._wake_r, self._wake_w = socket.socketpair()
        self._reopen_timer: threading.Timer | None = None
        self.set_rules(rules)
        listener = _listen(0)
        self.port = int(listener.getsockname()[1])
        self._thread = threading.Thread(target=self._accept_loop, args=(listener,), name="fault-proxy", daemon=True)
        self._thread.start()
        if not self._listening.wait(timeout=10):
            raise RuntimeError("the fault proxy's accept thread did not start")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- what happened ---------------------------------------------------------------------------------------

    @property
    def injected(self) -> dict[str, int]:
        """How many faults of each kind were injected so far (kinds never injected are absent)."""
        with self._lock:
            return dict(self._injected)

    @property
    def total_injected(self) -> int:
        with self._lock:
            return sum(self._injected.values())

    @property
    def requests(self) -> int:
        """Requests received (whole request lines read), faulted or not."""
        with self._lock:
            return self._requests

    @property
    def relay_failures(self) -> int:
        """Requests not relayed whole for a reason other than an injected cut or outage: the emulator refused or
        dropped them (it was down), or the client left mid-answer. A diagnostic: tests assert on ``injected``."""
        with self._lock:
            return self._relay_failures

    # -- the schedule ----------------------------------------------------------------------------------------

    def set_rules(self, rules: Sequence[Rule]) -> None:
        """Replace the schedule; each rule's counting starts again (the injected totals are kept)."""
        states = [_RuleState(r, re.compile(r.path) if r.path else None) for r in rules]
        with self._lock:
            self._states = states

    def _decide(self, method: str, target: str, has_body: bool) -> _Fault | None:
        with self._lock:
            self._requests += 1
            for st in self._states:
                rule = st.rule
                if rule.methods and method not in rule.methods:
                    continue
                if st.pattern is not None and not st.pattern.search(target):
                    continue
                if rule.kind == "cut-request" and not has_body:
                    continue
                st.matched += 1
                n = st.matched - rule.first
                if n < 0 or n % rule.every:
                    continue
                if rule.limit is not None and st.injected + st.pending >= rule.limit:
                    continue
                if rule.probability < 1 and self._rng.random() >= rule.probability:
                    continue
                st.pending += 1
                return _Fault(rule, st)
        return None

    def _count(self, fault: _Fault) -> None:
        with self._lock:
            fault.state.pending -= 1
            fault.state.injected += 1
            self._injected[fault.rule.kind] += 1

    def _release(self, fault: _Fault) -> None:
        """A decided fault that could not be carried out (a cut of a body too short, a request that failed
        before the fault's moment): it frees its place under the rule's limit."""
        with self._lock:
            fault.state.pending -= 1

    def _count_relay_failure(self) -> None:
        with self._lock:
            self._relay_failures += 1

    # -- outages ---------------------------------------------------------------------------------------------

    def outage(self, seconds: float) -> None:
        """Reset every open connection and refuse new ones for ``seconds`` (the port is really closed, so a
        client sees ECONNREFUSED, as while a restarted service is not yet listening), counted as an "outage".
        Returns once new connections are refused."""
        with self._lock:
            self._injected["outage"] += 1
        self._begin_outage(seconds)

    def _begin_outage(self, seconds: float) -> None:
        self._refusing.clear()  # before asking, so the accept thread's answer cannot be missed
        with self._lock:
            self._want_open = False
            if self._reopen_timer is not None:
                self._reopen_timer.cancel()
            timer = threading.Timer(seconds, self._end_outage)
            timer.daemon = True
            self._reopen_timer = timer
        self._wake()
        self._refusing.wait(timeout=10)
        self._reset_live()
        timer.start()

    def _end_outage(self) -> None:
        with self._lock:
            self._want_open = True
        self._wake()

    def _reset_live(self) -> None:
        with self._live.lock:
            doomed = list(self._live.sockets)
        for sock in doomed:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    # -- serving ---------------------------------------------------------------------------------------------

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")

    def _accept_loop(self, listener: socket.socket | None) -> None:
        sel = selectors.DefaultSelector()
        sel.register(self._wake_r, selectors.EVENT_READ)
        if listener is not None:
            sel.register(listener, selectors.EVENT_READ)
            self._listening.set()
        try:
            while not self._closing.is_set():
                for key, _ in sel.select():
                    if key.fileobj is self._wake_r:
                        with contextlib.suppress(OSError):
                            self._wake_r.recv(4096)
                    elif listener is not None:
                        with contextlib.suppress(OSError):
                            conn, _addr = listener.accept()
                            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()
                with self._lock:
                    want_open = self._want_open and not self._closing.is_set()
                if listener is not None and not want_open:
                    sel.unregister(listener)
                    listener.close()
                    listener = None
                    self._listening.clear()
                elif listener is None and want_open:
                    listener = _listen(self.port)
                    sel.register(listener, selectors.EVENT_READ)
                    self._listening.set()
                if listener is None:
                    self._refusing.set()
        finally:
            if listener is not None:
                listener.close()
            sel.close()

    def _serve(self, conn: socket.socket) -> None:
        with self._live.lock:
            self._live.sockets.add(conn)
        try:
            _Handler(conn, conn.getpeername(), self)  # type: ignore[arg-type]  # serves the connection to its end
        except (OSError, http.client.HTTPException, ValueError):
            pass  # the client went away or sent garbage, or an injected cut or outage closed the connection
        finally:
            with self._live.lock:
                self._live.sockets.discard(conn)
            with contextlib.suppress(OSError):
                conn.close()

    def close(self) -> None:
        """Stop listening, reset every open connection and wait for the accept thread to end."""
        self._closing.set()
        with self._lock:
            if self._reopen_timer is not None:
                self._reopen_timer.cancel()
        self._wake()
        self._thread.join(timeout=10)
        self._reset_live()
        self._wake_r.close()
        self._wake_w.close()


def _listen(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # An outage closes the port and opens it again; connections of before may linger in TIME_WAIT.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(128)
    return sock


class _Handler(BaseHTTPRequestHandler):
    """One client connection: its requests in turn (HTTP/1.1 keep-alive), each relayed or faulted."""

    server: FaultProxy  # type: ignore[assignment]  # our proxy, not a socketserver
    protocol_version = "HTTP/1.1"
    _fault: _Fault | None
    _decided: bool
    _body_unsent: bool
    _carried: bool

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def parse_request(self) -> bool:
        self._fault, self._decided, self._body_unsent = None, False, False
        return super().parse_request()

    def handle_expect_100(self) -> bool:
        # A server that refuses a request answers its Expect: 100-continue with the error itself, so the client
        # never sends the body; only a request that will be relayed is told to continue.
        fault = self._decision()
        if fault is not None and fault.rule.kind in STATUS_KINDS | {"outage"}:
            # The body is never sent, so the connection cannot carry another request after the answer.
            self._body_unsent = True
            self.close_connection = True
            return True
        return super().handle_expect_100()

    def _has_body(self) -> bool:
        chunked = "chunked" in self.headers.get("Transfer-Encoding", "").lower()
        return chunked or int(self.headers.get("Content-Length") or 0) > 0

    def _decision(self) -> _Fault | None:
        if not self._decided:
            self._fault = self.server._decide(self.command, self.path, self._has_body())
            self._decided = True
        return self._fault

    def _relay(self) -> None:
        fault = self._decision()
        try:
            self._relay_with(fault)
        finally:
            if fault is not None and not self._carried:
                self.server._release(fault)

    def _carry(self, fault: _Fault) -> None:
        self._carried = True
        self.server._count(fault)

    def _relay_with(self, fault: _Fault | None) -> None:
        self._carried = False
        kind = fault.rule.kind if fault is not None else None
        if fault is not None and kind == "outage":
            self._carry(fault)
            self.close_connection = True
            self.server._begin_outage(fault.rule.outage_s)
            return
        if fault is not None and kind in STATUS_KINDS:
            if not self._body_unsent:
                self._discard_body()  # read in full, so the client hears the answer rather than a reset
            self._carry(fault)  # counted before the client can see it, so a test reading the answer sees the count
            self._answer_error(fault)
            return
        if fault is not None and kind == "delay":
            self._carry(fault)
            self.server._closing.wait(fault.rule.delay_s)  # the fault itself: a service slow to answer
        upstream = http.client.HTTPConnection(
            self.server.upstream_host, self.server.upstream_port, timeout=UPSTREAM_TIMEOUT_S
        )
        try:
            if self._send_upstream(upstream, fault if kind == "cut-request" else None):
                return
            self._send_answer(upstream.getresponse(), fault if kind == "cut-response" else None)
        except (OSError, http.client.HTTPException):
            # The emulator refused or dropped the request (it is down or restarting), or the client left: the
            # client's connection is dropped, as it would be talking to the emulator itself.
            self.server._count_relay_failure()
            self._cut()
        finally:
            upstream.close()

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = do_PATCH = do_OPTIONS = _relay

    # -- request bodies --------------------------------------------------------------------------------------

    def _body_pieces(self) -> Iterator[bytes]:
        """The request body as it arrives, framing included for a chunked one (relayed verbatim)."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            while True:
                line = self.rfile.readline(65537)
                yield line
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while True:  # trailers (aws-chunked checksums travel here), then the blank line
                        trailer = self.rfile.readline(65537)
                        yield trailer
                        if trailer in (b"\r\n", b"\n", b""):
                            return
                left = size + 2  # the data and its CRLF
                while left > 0:
                    piece = self.rfile.read(min(left, _CHUNK))
                    if not piece:
                        raise ConnectionResetError("the client closed the connection mid-body")
                    left -= len(piece)
                    yield piece
        else:
            left = int(self.headers.get("Content-Length") or 0)
            while left > 0:
                piece = self.rfile.read(min(left, _CHUNK))
                if not piece:
                    raise ConnectionResetError("the client closed the connection mid-body")
                left -= len(piece)
                yield piece

    def _discard_body(self) -> None:
        for _ in self._body_pieces():
            pass

    def _send_upstream(self, upstream: http.client.HTTPConnection, cut: _Fault | None) -> bool:
        """Relay the request; with ``cut``, drop both connections partway through its body. True if cut."""
        upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
        for name, value in self.headers.items():
            if name.lower() not in _REQUEST_DROPPED:
                upstream.putheader(name, value)
        upstream.putheader("Connection", "close")
        upstream.endheaders()
        budget: int | None = None
        if cut is not None:
            # A chunked body's length is unknown up front: the cut falls within its first chunk.
            total = int(self.headers.get("Content-Length") or 0) or _CHUNK
            budget = max(1, int(total * cut.rule.cut_at))
        for piece in self._body_pieces():
            if budget is not None and len(piece) >= budget:
                upstream.send(piece[:budget])
                assert cut is not None
                self._carry(cut)
                upstream.close()  # the emulator sees a body shorter than announced, and must store nothing
                self._cut()
                return True
            upstream.send(piece)
            if budget is not None:
                budget -= len(piece)
        return False

    # -- answers ---------------------------------------------------------------------------------------------

    def _answer_error(self, fault: _Fault) -> None:
        status, code, message = _ANSWERS[(self.server.dialect, fault.rule.kind)]
        request_id = f"fault-proxy-{self.server.requests}"
        # Azure's errors carry no request id in the body (it travels in x-ms-request-id); S3's do.
        tail = "" if self.server.dialect == "azure" else f"<RequestId>{request_id}</RequestId>"
        declaration = '<?xml version="1.0" encoding="UTF-8"?>'
        body = f"{declaration}<Error><Code>{code}</Code><Message>{message}</Message>{tail}</Error>"
        data = b"" if self.command == "HEAD" else body.encode()
        self.send_response_only(status, http.client.responses.get(status, ""))
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(data)))
        if self.server.dialect == "azure":
            self.send_header("x-ms-error-code", code)
            self.send_header("x-ms-request-id", request_id)
        else:
            self.send_header("x-amz-request-id", request_id)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)

    def _send_answer(self, answer: http.client.HTTPResponse, cut: _Fault | None) -> None:
        self.send_response_only(answer.status, answer.reason)
        for name, value in answer.getheaders():
            if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length":
                self.send_header(name, value)
        announced = answer.getheader("Content-Length")
        if self.command == "HEAD" or answer.status in (204, 304) or answer.status < 200:
            if announced is not None:
                self.send_header("Content-Length", announced)
            self.end_headers()
            return
        if announced is None and cut is None:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            while piece := answer.read(_CHUNK):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\n\r\n")
            return
        pieces: Iterator[bytes]
        if announced is None:
            held = answer.read()  # a chunked answer to be cut: its full length is announced, as S3 would
            size, pieces = len(held), iter([held])
        else:
            size, pieces = int(announced), iter(lambda: answer.read(_CHUNK), b"")
        self.send_header("Content-Length", str(size))
        self.end_headers()
        budget = max(1, int(size * cut.rule.cut_at)) if cut is not None and size >= 2 else None
        for piece in pieces:
            if budget is not None and len(piece) >= budget:
                self.wfile.write(piece[:budget])
                assert cut is not None
                self._carry(cut)
                self._cut()
                return
            self.wfile.write(piece)
            if budget is not None:
                budget -= len(piece)

    def _cut(self) -> None:
        """Drop the client's connection now: what it has been sent so far is all it gets."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)


class FaultProxies:
    """Starts fault proxies for a test and closes every one of them when it ends."""

    def __init__(self) -> None:
        self._made: list[FaultProxy] = []

    def start(self, upstream: str, rules: Sequence[Rule] = (), *, dialect: Dialect, seed: int = 0) -> FaultProxy:
        proxy = FaultProxy(upstream, rules, dialect=dialect, seed=seed)
        self._made.append(proxy)
        return proxy

    def close(self) -> None:
        for proxy in self._made:
            proxy.close()
        self._made.clear()


@pytest.fixture
def fault_proxies() -> Iterator[FaultProxies]:
    proxies = FaultProxies()
    try:
        yield proxies
    finally:
        proxies.close()
