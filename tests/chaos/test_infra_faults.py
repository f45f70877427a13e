"""Infrastructure faults (issue #14): the network and the emulators misbehave under a real ``drctl backup copy``.

- A fault proxy (``tests/support/fault_proxy.py``) sits between drctl and LocalStack or Azurite and answers 503
  (S3 SlowDown, Azure ServerBusy), 429 and 500 (InternalError), holds answers back, cuts connections partway
  through a response body or a request body, and resets every connection with the port closed for a while.
  Copies run S3 -> Azure and Azure -> S3 with the proxy on either side, and local -> S3.
- Azurite restarted mid-copy, gracefully and with ``kill -9``: a private Azurite with its data on disk.
- LocalStack restarted mid-copy: under ``make chaos`` a private LocalStack is killed and started again (its S3 is
  in memory, so the restarted one is empty: the copy must fail cleanly, and a rerun completes once the bucket is
  back); under ``make test`` the restart is simulated by the proxy (connections reset, port closed): a LocalStack
  of its own costs about 4 s to start, as much per restart, and a few hundred MB, which make chaos spends.

Each copy must exit 0 with a point that holds exactly the source, or fail in one line with no traceback, an
exit code the fault allows and no point claimed; the same command rerun without faults must complete with a
point that holds exactly the source (``tests/chaos/infra_trials.py`` says how that is checked). A fault that
was not injected fails its case. Every breach fails the test and names the case.
"""

from __future__ import annotations

import contextlib
import http.client
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import pytest

from orchestrator.backup.layout import DATA_PREFIX
from orchestrator.errors import DrError, ExitCode
from orchestrator.providers.azure_settings import connection_endpoint
from orchestrator.providers.factory import StoreFactory
from tests.chaos.figures import full_scale, record, scaled
from tests.chaos.infra_emulators import (
    azurite_connection_string,
    azurite_saved_since,
    private_azurite,
    private_localstack,
    wait_for,
)
from tests.chaos.infra_trials import (
    CHECK_RETRY,
    During,
    Outcome,
    Trial,
    content,
    list_keys,
    rclone_env,
    run_trial,
    slow_content,
    tally,
    with_blob_endpoint,
    with_signal,
    write_tree,
)
from tests.support import fault_proxy
from tests.support.backup import backup_env, seed
from tests.support.fault_proxy import (
    STATUS_KINDS,
    Dialect,
    FaultKind,
    FaultProxies,
    FaultProxy,
    Rule,
)
from tests.support.lab import unique_name

# The proxy's fixture, for the tests below (tests/conftest.py shares only the fixtures every tier uses).
fault_proxies = fault_proxy.fault_proxies

FIGURE = "infrastructure faults"
Scheme = Literal["s3", "az", "local"]
Side = Literal["source", "dest"]
Intensity = Literal["burst", "storm", "mixed"]
# Cases in flight at once: most of a case is waiting (retries, backoff, held answers, the lab), so the short
# scale runs all of its cases together.
WORKERS = scaled(4, 6)
SLOW_COPY = ("--bwlimit", "2M")  # 7 MiB of slow_content takes about 3.5 s: long enough to restart mid-copy
MID_COPY_BLOBS = 3  # a restart waits until this many blobs are in the set, with the copy still running


# -- the proxy on its own ----------------------------------------------------------------------------------------


class _Upstream(ThreadingHTTPServer):
    """A tiny origin: GET answers ``body`` with its length; PUT stores the body it got, in ``received``."""

    daemon_threads = True

    def __init__(self, body: bytes) -> None:
        super().__init__(("127.0.0.1", 0), _UpstreamHandler)
        self.body = body
        self.received: list[bytes] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _UpstreamHandler(BaseHTTPRequestHandler):
    server: _Upstream
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.server.body)))
        self.end_headers()
        self.wfile.write(self.server.body)

    def do_PUT(self) -> None:
        if "chunked" in self.headers.get("Transfer-Encoding", ""):
            data = b""
            while size := int(self.rfile.readline().strip(), 16):
                data += self.rfile.read(size)
                self.rfile.readline()
            self.rfile.readline()
        else:
            data = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append(data)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture
def upstream() -> Iterator[_Upstream]:
    server = _Upstream(bytes(range(256)) * 400)  # 100 KiB
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def _get(proxy: FaultProxy, path: str = "/b/k") -> tuple[http.client.HTTPResponse, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
    conn.request("GET", path)
    answer = conn.getresponse()
    return answer, answer.read()


def _put_and_answer(conn: http.client.HTTPConnection, body: bytes) -> int:
    conn.request("PUT", "/b/k", body=body)
    return conn.getresponse().status


def _get_on(conn: http.client.HTTPConnection) -> bytes:
    conn.request("GET", "/b/k")
    return conn.getresponse().read()


def test_fault_proxy_injects_each_kind_and_counts_it(upstream: _Upstream, fault_proxies: FaultProxies) -> None:
    clean = fault_proxies.start(upstream.url, dialect="s3")
    answer, body = _get(clean)
    assert (answer.status, body) == (200, upstream.body)
    assert clean.injected == {}
    assert clean.requests == 1

    # Throttling and errors, in each service's words; a rule's limit holds; other requests pass.
    s3 = fault_proxies.start(upstream.url, [Rule("503", first=2, every=2, limit=2)], dialect="s3")
    statuses = [_get(s3)[0].status for _ in range(7)]
    assert statuses == [200, 503, 200, 503, 200, 200, 200]
    answer, body = _get(fault_proxies.start(upstream.url, [Rule("503")], dialect="s3"))
    assert b"<Code>SlowDown</Code>" in body
    azure_rules = [Rule("503", methods=frozenset({"GET"}), limit=1), Rule("429", methods=frozenset({"PUT"}), limit=1)]
    azure = fault_proxies.start(upstream.url, azure_rules, dialect="azure")
    answer, body = _get(azure)
    assert (answer.status, answer.getheader("x-ms-error-code")) == (503, "ServerBusy")
    kind: FaultKind
    for kind, code in (("429", "TooManyRequests"), ("500", "InternalError")):
        answer, body = _get(fault_proxies.start(upstream.url, [Rule(kind)], dialect="s3"))
        assert answer.status == int(kind)
        assert f"<Code>{code}</Code>".encode() in body
    assert s3.injected == {"503": 2}

    # An error answers a PUT whose body the proxy read and dropped; the connection carries the next request.
    conn = http.client.HTTPConnection("127.0.0.1", azure.port, timeout=10)
    conn.request("PUT", "/b/k", body=b"x" * 5000)
    assert b"<Code>TooManyRequests</Code>" in conn.getresponse().read()
    assert azure.injected == {"503": 1, "429": 1}
    assert upstream.received == []
    assert _put_and_answer(conn, b"z" * 5000) == 200
    assert upstream.received == [b"z" * 5000]

    slow = fault_proxies.start(upstream.url, [Rule("delay", delay_s=0.5)], dialect="s3")
    began = time.monotonic()
    assert _get(slow)[1] == upstream.body
    assert time.monotonic() - began >= 0.5
    assert slow.injected == {"delay": 1}

    # A cut response announces the whole length and sends part of it.
    cut = fault_proxies.start(upstream.url, [Rule("cut-response", cut_at=0.25)], dialect="s3")
    with pytest.raises(http.client.IncompleteRead) as short:
        _get(cut)
    assert len(short.value.partial) == len(upstream.body) // 4
    assert cut.injected == {"cut-response": 1}

    # A cut request: the origin gets part of the body and never answers; the client sees its connection drop.
    cut_put = fault_proxies.start(upstream.url, [Rule("cut-request", limit=1)], dialect="s3")
    conn = http.client.HTTPConnection("127.0.0.1", cut_put.port, timeout=10)
    with pytest.raises((ConnectionError, http.client.RemoteDisconnected)):
        _put_and_answer(conn, b"y" * 1_000_000)
    assert cut_put.injected == {"cut-request": 1}
    # The chunked form is relayed whole (framing and all) once the rule's limit is spent.
    conn = http.client.HTTPConnection("127.0.0.1", cut_put.port, timeout=10)
    conn.request("PUT", "/b/k", body=iter([b"a" * 70_000, b"b" * 10]), encode_chunked=True)
    assert conn.getresponse().status == 200
    assert upstream.received[-1] == b"a" * 70_000 + b"b" * 10

    # An outage: the open connection is reset, the port refuses, then serves again.
    down = fault_proxies.start(upstream.url, dialect="s3")
    kept = http.client.HTTPConnection("127.0.0.1", down.port, timeout=10)
    kept.request("GET", "/b/k")
    kept.getresponse().read()
    down.outage(1.0)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", down.port), timeout=2).close()
    with pytest.raises((ConnectionError, http.client.RemoteDisconnected)):
        _get_on(kept)

    def serving() -> bool:
        try:
            return _get(down)[1] == upstream.body
        except OSError:
            return False

    wait_for(serving, 10, "the proxy serving again after its outage")
    assert down.injected == {"outage": 1}


# -- faults injected by the proxy -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProxyCase:
    """A copy from ``source`` to ``dest`` with the proxy in front of one ``side``, injecting ``kind`` (unused
    when ``intensity`` is "mixed", which draws every kind)."""

    source: Scheme
    dest: Scheme
    side: Side
    kind: FaultKind
    intensity: Intensity = "burst"

    @property
    def faulted(self) -> Scheme:
        return self.source if self.side == "source" else self.dest

    @property
    def label(self) -> str:
        """The case's kind in the figures: a burst is the plain kind."""
        return {"burst": self.kind, "storm": f"{self.kind} on every request", "mixed": "mixed (seeded)"}[self.intensity]

    @property
    def name(self) -> str:
        return f"{self.source}->{self.dest}, {self.label} at the {self.side} ({self.faulted})"


def rules_for(case: ProxyCase) -> tuple[Rule, ...]:
    """The schedule of a case. A burst injects a few faults, spread out, that drctl's retries can absorb; a
    storm faults every request, so retries run out and the copy must fail cleanly; "mixed" draws every kind
    that applies at that side with a seeded probability."""
    cut: FaultKind = "cut-response" if case.side == "source" else "cut-request"
    if case.intensity == "mixed":
        kinds: list[FaultKind] = ["503", "429", "500", "delay", cut]
        return tuple(Rule(k, probability=0.12, limit=2, delay_s=1.0) for k in kinds)
    storm = case.intensity == "storm"
    limit: int | None = None if storm else 3
    if case.kind == "outage":
        limit = 1  # one outage: a burst's is a blip drctl's retries may ride out, a storm's outlasts them
    return (
        Rule(
            case.kind,
            # Response bodies worth cutting come from GETs; any request with a body can be cut.
            methods=frozenset({"GET"}) if case.kind == "cut-response" else frozenset(),
            first=3 if case.kind == "outage" else 2,
            every=1 if storm else 3,
            limit=limit,
            delay_s=1.5,
            outage_s=8.0 if storm else 1.5,
        ),
    )


ROUTES: list[tuple[Scheme, Scheme, Side]] = [
    ("s3", "az", "source"),
    ("s3", "az", "dest"),
    ("az", "s3", "source"),
    ("az", "s3", "dest"),
    ("local", "s3", "dest"),
]
"""Copy directions, and which end the proxy sits in front of."""


def _all_proxy_cases() -> list[ProxyCase]:
    # The first ones are the make test subset: every kind but the outage (the LocalStack restart test simulates
    # one), both clouds, both sides, and one storm.
    short = [
        ProxyCase("s3", "az", "source", "503"),
        ProxyCase("s3", "az", "dest", "cut-request"),
        ProxyCase("az", "s3", "source", "cut-response"),
        ProxyCase("az", "s3", "dest", "500", "storm"),
        ProxyCase("local", "s3", "dest", "429"),
        ProxyCase("s3", "az", "dest", "delay"),
    ]
    every: list[ProxyCase] = []
    for source, dest, side in ROUTES:
        kinds: list[FaultKind] = ["503", "429", "500", "delay", "cut-response" if side == "source" else "cut-request"]
        every += [ProxyCase(source, dest, side, kind) for kind in [*kinds, "outage"]]
    every += [
        ProxyCase("s3", "az", "source", "503", "storm"),
        ProxyCase("s3", "az", "dest", "500", "storm"),
        ProxyCase("az", "s3", "source", "429", "storm"),
        ProxyCase("local", "s3", "dest", "cut-request", "storm"),
        ProxyCase("s3", "az", "dest", "cut-request", "storm"),
        ProxyCase("az", "s3", "source", "cut-response", "storm"),
        ProxyCase("s3", "az", "source", "outage", "storm"),
        ProxyCase("az", "s3", "dest", "outage", "storm"),
    ]
    every += [ProxyCase(source, dest, side, "503", "mixed") for source, dest, side in ROUTES[:4]]
    return short + [c for c in every if c not in short]


PROXY_CASES = _all_proxy_cases()


@dataclass(frozen=True)
class Lab:
    """The emulators as one case sees them (the shared lab's, or a private one in place of either): the bucket
    and container it may write under, and their endpoints."""

    env: Mapping[str, str]
    factory: StoreFactory
    bucket: str
    container: str

    @property
    def s3_endpoint(self) -> str:
        return self.env["AWS_ENDPOINT_URL"]

    @property
    def blob_endpoint(self) -> str:
        return connection_endpoint(self.env["AZURE_STORAGE_CONNECTION_STRING"])

    def rclone_env(self) -> dict[str, str]:
        return rclone_env(
            self.env["AWS_ACCESS_KEY_ID"],
            self.env["AWS_SECRET_ACCESS_KEY"],
            {"labs3": self.s3_endpoint},
            {"labaz": self.blob_endpoint},
        )


def _place(lab: Lab, scheme: Scheme, name: str, workdir: Path) -> tuple[str, str]:
    """Where a case's ``name`` lives in ``scheme``: drctl's URL and rclone's name for it."""
    if scheme == "s3":
        return f"s3://{lab.bucket}/{name}/", f"labs3:{lab.bucket}/{name}"
    if scheme == "az":
        return f"az://{lab.container}/{name}/", f"labaz:{lab.container}/{name}"
    return str(workdir / name), str(workdir / name)


def _seed(lab: Lab, scheme: Scheme, url: str, objects: Mapping[str, bytes]) -> None:
    if scheme == "local":
        write_tree(Path(url), objects)
    else:
        seed(lab.factory.open(url), objects)


def _remove(factory: StoreFactory, url: str) -> None:
    """Delete what a finished case wrote, so the shared in-memory Azurite does not grow over a long run. Best
    effort: the bucket and container fixtures remove whatever is left when the test ends."""
    with contextlib.suppress(DrError):
        store = factory.open(url)
        for obj in list(store.list()):
            store.delete(obj.key)


def proxied_env(env: Mapping[str, str], scheme: Scheme, proxy_url: str) -> dict[str, str]:
    """``env`` with one cloud's endpoint replaced by the proxy's: S3 through AWS_ENDPOINT_URL, Azure through the
    connection string's BlobEndpoint (same account and key; the account stays in the path, as for Azurite)."""
    faulted = dict(env)
    if scheme == "s3":
        faulted["AWS_ENDPOINT_URL"] = proxy_url
    else:
        account_path = urlsplit(connection_endpoint(env["AZURE_STORAGE_CONNECTION_STRING"])).path
        faulted["AZURE_STORAGE_CONNECTION_STRING"] = with_blob_endpoint(
            env["AZURE_STORAGE_CONNECTION_STRING"], f"{proxy_url}{account_path}"
        )
    return faulted


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def run_proxy_case(
    index: int, case: ProxyCase, lab: Lab, proxies: FaultProxies, tmp: Path, rc_env: Mapping[str, str]
) -> Outcome:
    workdir = tmp / f"case{index:02d}"
    workdir.mkdir()
    source_url, rclone_source = _place(lab, case.source, f"c{index:02d}-src", workdir)
    set_url, _ = _place(lab, case.dest, f"c{index:02d}-set", workdir)
    _seed(lab, case.source, source_url, content(index))
    clean = backup_env(lab.env, workdir / "state")
    dialect: Dialect = "s3" if case.faulted == "s3" else "azure"
    upstream = lab.s3_endpoint if case.faulted == "s3" else _origin(lab.blob_endpoint)
    proxy = proxies.start(upstream, rules_for(case), dialect=dialect, seed=index)
    trial = Trial(
        name=f"#{index} {case.name}",
        kind=case.label,
        source_url=source_url,
        set_url=set_url,
        rclone_source=rclone_source,
        faulted_env=proxied_env(clean, case.faulted, proxy.url),
        clean_env=clean,
    )
    try:
        return run_trial(trial, workdir, rc_env, injected=lambda: proxy.injected)
    finally:
        proxy.close()
        for url, scheme in ((source_url, case.source), (set_url, case.dest)):
            if scheme != "local":
                _remove(lab.factory, url)


def _finish(outcomes: Sequence[Outcome], scope: str) -> None:
    """Record the figures, then fail naming every breached case."""
    survived = sum(1 for o in outcomes if o.survived)
    record(FIGURE, cases=len(outcomes), survived=survived, detail=f"{scope}: {tally(outcomes)}")
    breaches = [b for o in outcomes for b in o.breaches]
    if breaches:
        pytest.fail(f"{len(outcomes) - survived} of {len(outcomes)} {scope} cases breached:\n" + "\n".join(breaches))


@pytest.mark.lab
def test_proxy_faults_complete_or_fail_cleanly_and_a_rerun_completes(
    lab_env: dict[str, str],
    lab_factory: StoreFactory,
    s3_bucket: str,
    az_container: str,
    fault_proxies: FaultProxies,
    tmp_path: Path,
) -> None:
    cases = PROXY_CASES[: scaled(len(PROXY_CASES), 6)]
    lab = Lab(lab_env, lab_factory, s3_bucket, az_container)
    # The shared clients are made here, once, before the cases' threads use them.
    lab_factory.s3_client()
    lab_factory.blob_service()
    rc_env = lab.rclone_env()
    with ThreadPoolExecutor(WORKERS, thread_name_prefix="infra-case") as pool:
        outcomes = list(
            pool.map(lambda ic: run_proxy_case(ic[0], ic[1], lab, fault_proxies, tmp_path, rc_env), enumerate(cases))
        )
    kinds = {c.kind for c in cases}
    assert kinds >= {*STATUS_KINDS, "delay", "cut-response", "cut-request"}, f"a fault kind went untested: {kinds}"
    _finish(outcomes, "proxy faults")


# -- restarts -----------------------------------------------------------------------------------------------------


def _blob_count(env: Mapping[str, str], set_url: str) -> int:
    return len(list_keys(env, set_url, DATA_PREFIX))


def restart_mid_copy(
    progress: Callable[[], int],
    restart: Callable[[], object],
    label: str,
    freeze: bool = False,
    settle: Callable[[], None] | None = None,
) -> During:
    """What runs alongside the copy: once ``MID_COPY_BLOBS`` blobs are in the set (and, after ``settle``, the copy
    still runs), ``restart``. With ``freeze`` the copy is stopped (SIGSTOP) across the restart and continued
    after it, so it meets the restarted service instead of spending its retries on the outage."""

    def during(proc: subprocess.Popen[bytes]) -> Mapping[str, int]:
        wait_for(
            lambda: progress() >= MID_COPY_BLOBS or proc.poll() is not None,
            120,
            f"{MID_COPY_BLOBS} blobs in the set",
        )
        if settle is not None and proc.poll() is None:
            settle()
        if proc.poll() is not None:
            raise AssertionError(f"the copy ended (exit {proc.returncode}) before the restart; slow it further")
        if freeze:
            with_signal(proc, signal.SIGSTOP)
        try:
            restart()
        finally:
            if freeze:
                with_signal(proc, signal.SIGCONT)
        return {label: 1}

    return during


@dataclass(frozen=True)
class RestartCase:
    source: Scheme
    dest: Scheme
    graceful: bool = False
    freeze: bool = False

    @property
    def label(self) -> str:
        how = "graceful restart" if self.graceful else "kill -9 and restart"
        return f"{how}, copy frozen across it" if self.freeze else how

    def name(self, index: int, emulator: str) -> str:
        return f"#{index} {self.source}->{self.dest}, {emulator} {self.label}"


# Azurite keeps what it acknowledged in memory and saves it every 5 s: a kill -9 loses the last few seconds,
# which Azure itself never does. Killed at any moment, it can lose the set's settings (written first) and keep
# the blobs the still-running copy writes after the restart: the rerun then finds objects but no set and refuses
# the location (exit 2), which says more about the emulator than about drctl. So a kill -9 of the destination
# waits for a save made after the copy got going: the set's settings and its first blobs survive, and the blobs
# of the last seconds are lost, as unacknowledged writes would be. The copy is slowed further (10 MiB at 1 MB/s,
# two at a time) so it is still running when that save comes.
AZURITE_OBJECTS = 20
AZURITE_SLOW_COPY = ("--bwlimit", "1M", "--transfers", "2")


def _azurite_saves(workdir: Path) -> None:
    moment = time.time()
    wait_for(lambda: azurite_saved_since(workdir, moment), 15, "Azurite saving its metadata")


AZURITE_CASES = [
    RestartCase("s3", "az"),
    RestartCase("az", "s3"),
    RestartCase("s3", "az", graceful=True),
    RestartCase("az", "s3", graceful=True),
    RestartCase("local", "az"),
]


@pytest.mark.lab
def test_azurite_restarted_mid_copy(lab_env: dict[str, str], s3_bucket: str, tmp_path: Path) -> None:
    cases = AZURITE_CASES[: scaled(len(AZURITE_CASES), 1)]
    (tmp_path / "azurite").mkdir()
    emulator, blob_endpoint = private_azurite(tmp_path / "azurite")
    # The lab's S3, and Azure on the private Azurite (the same development account and key).
    env = {**lab_env, "AZURE_STORAGE_CONNECTION_STRING": azurite_connection_string(blob_endpoint)}
    outcomes: list[Outcome] = []
    try:
        emulator.start()
        factory = StoreFactory(env, retry=CHECK_RETRY)
        container = unique_name("c")
        factory.blob_service().create_container(container)
        lab = Lab(env, factory, s3_bucket, container)
        rc_env = lab.rclone_env()
        places = []
        for i, case in enumerate(cases):
            (tmp_path / f"case{i:02d}").mkdir()
            source = _place(lab, case.source, f"r{i:02d}-src", tmp_path / f"case{i:02d}")
            _seed(lab, case.source, source[0], slow_content(i, AZURITE_OBJECTS))
            places.append(source)
        # Azurite saves its metadata every 5 s and when it shuts down: a graceful restart now puts the container
        # and the seeded sources on disk, so a kill -9 mid-copy can take only what the copy itself wrote (without
        # it, a kill within 5 s of setting up lost the whole container).
        emulator.restart(graceful=True)
        for i, case in enumerate(cases):
            workdir = tmp_path / f"case{i:02d}"
            set_url, _ = _place(lab, case.dest, f"r{i:02d}-set", workdir)
            clean = backup_env(env, workdir / "state")
            allowed = {ExitCode.UNREACHABLE}
            killed_dest = case.dest == "az" and not case.graceful
            if killed_dest:
                # kill -9 loses what Azurite acknowledged in its last seconds; drctl proves every blob is in the
                # set before it writes the point and, if one is gone, says so and to run the copy again (exit 7).
                allowed.add(ExitCode.INTEGRITY)
            trial = Trial(
                name=case.name(i, "Azurite"),
                kind=case.label,
                source_url=places[i][0],
                set_url=set_url,
                rclone_source=places[i][1],
                faulted_env=clean,
                clean_env=clean,
                allowed_failures=frozenset(allowed),
                copy_args=AZURITE_SLOW_COPY,
            )
            during = restart_mid_copy(
                partial(_blob_count, clean, set_url),
                partial(emulator.restart, case.graceful),
                case.label,
                # Only a copy into Azurite gives it something to save (it saves only what changed).
                settle=partial(_azurite_saves, tmp_path / "azurite") if killed_dest else None,
            )
            outcomes.append(run_trial(trial, workdir, rc_env, injected=dict, during=during))
            if case.dest == "s3":
                _remove(factory, set_url)
    finally:
        emulator.close()
    _finish(outcomes, "Azurite restarts (a private Azurite, data on disk)")


LOCALSTACK_CASES = [
    RestartCase("s3", "az"),
    RestartCase("local", "s3"),
    RestartCase("az", "s3", freeze=True),
    RestartCase("s3", "az", freeze=True),
]
SIMULATED_RESTART_S = 5.0  # about what a LocalStack restart takes here (kill, start, S3 answering)


@pytest.mark.lab
def test_localstack_restarted_mid_copy(
    lab_env: dict[str, str],
    lab_factory: StoreFactory,
    s3_bucket: str,
    az_container: str,
    fault_proxies: FaultProxies,
    tmp_path: Path,
) -> None:
    if full_scale():
        outcomes, scope = _real_localstack_restarts(lab_env, lab_factory, az_container, tmp_path)
    else:
        outcomes, scope = _simulated_localstack_restart(lab_env, lab_factory, s3_bucket, fault_proxies, tmp_path)
    _finish(outcomes, scope)


def _real_localstack_restarts(
    lab_env: Mapping[str, str], lab_factory: StoreFactory, az_container: str, tmp_path: Path
) -> tuple[list[Outcome], str]:
    """A private LocalStack killed mid-copy and started again, empty: the copy must fail cleanly (its bucket is
    gone, or the endpoint was down past its retries); once the bucket is made again (and, when LocalStack was
    the source, filled again), the rerun completes."""
    (tmp_path / "localstack").mkdir()
    emulator, endpoint = private_localstack(tmp_path / "localstack")
    env = {**lab_env, "AWS_ENDPOINT_URL": endpoint}
    outcomes: list[Outcome] = []
    downtimes: list[float] = []
    try:
        emulator.start()
        for i, case in enumerate(LOCALSTACK_CASES):
            workdir = tmp_path / f"case{i:02d}"
            workdir.mkdir()
            bucket = unique_name("b")
            # S3 on the private LocalStack, Azure on the shared Azurite; a factory per case, as the restarted
            # LocalStack is a new server.
            lab = Lab(env, StoreFactory(env, retry=CHECK_RETRY), bucket, az_container)
            lab.factory.s3_client().create_bucket(Bucket=bucket)
            source_url, rclone_source = _place(lab, case.source, f"l{i:02d}-src", workdir)
            set_url, _ = _place(lab, case.dest, f"l{i:02d}-set", workdir)
            _seed(lab, case.source, source_url, slow_content(100 + i))
            clean = backup_env(env, workdir / "state")

            def restart() -> None:
                downtimes.append(emulator.restart(graceful=False))

            def refill(i: int = i, case: RestartCase = case, lab: Lab = lab, source_url: str = source_url) -> None:
                # The restarted LocalStack is empty: the bucket comes back, and the source's objects if it was one.
                lab.factory.s3_client().create_bucket(Bucket=lab.bucket)
                if case.source == "s3":
                    _seed(lab, "s3", source_url, slow_content(100 + i))

            trial = Trial(
                name=case.name(i, "LocalStack"),
                kind=case.label,
                source_url=source_url,
                set_url=set_url,
                rclone_source=rclone_source,
                faulted_env=clean,
                clean_env=clean,
                allowed_failures=frozenset({ExitCode.NOT_FOUND, ExitCode.UNREACHABLE}),
                copy_args=SLOW_COPY,
            )
            during = restart_mid_copy(partial(_blob_count, clean, set_url), restart, case.label, case.freeze)
            outcomes.append(
                run_trial(trial, workdir, lab.rclone_env(), injected=dict, during=during, before_rerun=refill)
            )
            for url, scheme in ((source_url, case.source), (set_url, case.dest)):
                if scheme == "az":
                    _remove(lab_factory, url)
    finally:
        emulator.close()
    started = emulator.starts[0] if emulator.starts else float("nan")
    down = sum(downtimes) / len(downtimes) if downtimes else float("nan")
    scope = (
        f"LocalStack restarts (real: a private LocalStack, ready {started:.1f}s after its first start, "
        f"down {down:.1f}s per kill -9 and restart)"
    )
    return outcomes, scope


def _simulated_localstack_restart(
    lab_env: Mapping[str, str],
    lab_factory: StoreFactory,
    s3_bucket: str,
    proxies: FaultProxies,
    tmp_path: Path,
) -> tuple[list[Outcome], str]:
    """The short scale's LocalStack restart, simulated by the proxy in front of the shared LocalStack: mid-copy,
    every connection is reset and the port refuses connections for about as long as a real restart takes."""
    workdir = tmp_path / "case00"
    workdir.mkdir()
    lab = Lab(lab_env, lab_factory, s3_bucket, "")
    source_url, rclone_source = _place(lab, "local", "sim-src", workdir)
    set_url, _ = _place(lab, "s3", "sim-set", workdir)
    write_tree(Path(source_url), slow_content(200))
    clean = backup_env(lab_env, workdir / "state")
    proxy = proxies.start(lab.s3_endpoint, dialect="s3")
    label = f"simulated restart (port closed {SIMULATED_RESTART_S:.0f}s)"
    trial = Trial(
        name=f"#0 local->s3, LocalStack {label}",
        kind=label,
        source_url=source_url,
        set_url=set_url,
        rclone_source=rclone_source,
        faulted_env=proxied_env(clean, "s3", proxy.url),
        clean_env=clean,
        copy_args=SLOW_COPY,
    )
    during = restart_mid_copy(partial(_blob_count, clean, set_url), partial(proxy.outage, SIMULATED_RESTART_S), label)
    outcome = run_trial(trial, workdir, lab.rclone_env(), injected=lambda: proxy.injected, during=during)
    _remove(lab_factory, set_url)
    scope = "LocalStack restarts (simulated by the fault proxy at this scale; make chaos restarts a real one)"
    return [outcome], scope
