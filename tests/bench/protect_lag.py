"""How far behind its source ``drctl protect`` keeps a backup set, against rclone run once a minute, side by side in
one run (``python -m tests.bench.protect_lag``; ``make bench-protect`` runs it inside the lab).

Method:

1. Two S3 buckets in LocalStack, one per tool, each seeded with a few objects under ``data/``; two Azurite
   containers, the protect's vault and rclone's destination.
2. ``drctl protect s3://A/data/ az://VAULT/set/ --rpo 1m --sqs-queue Q --setup-notifications --metrics-addr ...``
   starts as a subprocess with its own state directory. The writer waits for its first point (the full copy of
   the seed), so the figures are the steady state rather than the start-up, which is printed apart.
3. A writer changes N objects per second for T seconds. At each tick it writes either a new key or an overwrite of
   an existing one (BENCH_PROTECT_NEW_SHARE); the choice, the key and the size are the same in both buckets, and
   every body is unique to its version. A version's write time is the wall clock right after its PUT returned.
4. Meanwhile, for the protect, the set's point ids are listed every 0.5 s. Each new point's manifest is loaded,
   and an entry whose sha256 equals a version the writer wrote for that key marks THAT version as captured, at the
   moment the listing first showed the point. A version counts as *covered* once a sealed point holds it or a later
   version of its key. An overwrite that lands before the next point supersedes the version, as it would for any
   copy, and the bench counts such versions apart. A later point that still holds an older version never covers
   a newer one. Lag = covered time - write time.
5. Meanwhile too, ``rclone copy --checksum --fast-list`` from bucket B to its container runs every 60 s (start to
   start). A version's lag = end of the first run that started after its write - write time. After each run the
   destination's Content-MD5s are read, to check that this run really left that version (or a later one).
6. After T seconds both sides keep going until every key's last version is covered (at most BENCH_PROTECT_DRAIN s).
   Then the protect gets SIGTERM (it should exit 0) and everything the bench made is removed.

The two tools run **concurrently**, not one after the other. The lab is shared with other work and its speed
drifts, so running them together means both face the same emulator at the same moments; the run also lasts T
rather than 2T. rclone's load is a burst of a second or two a minute and the protect copies a few KiB per
change, so neither takes much from the other on two cores. They use separate buckets because
``--setup-notifications`` points the whole bucket's events at the protect's queue, and rclone's writes would
otherwise reach it too.

Prints, for each tool: the versions written, how many were covered exactly or superseded, how many were never
covered, the p50/p99/max lag, and whether p99 < 30 s. For the protect it also prints the start-up time, its
points, the lag it reports itself (``drctl_protect_lag_seconds``) and its exit on SIGTERM. The figures are
printed, never asserted: they come from emulators (LocalStack S3 + SQS, Azurite) on a noisy machine, so a person
reads them.

Sizes come from variables: BENCH_PROTECT_RATE (changes a second, 2), BENCH_PROTECT_SECONDS (T, 150),
BENCH_PROTECT_KIB (object size, 4), BENCH_PROTECT_NEW_SHARE (0.5), BENCH_PROTECT_SEED (objects before the start,
20), BENCH_PROTECT_RPO (1m), BENCH_PROTECT_RCLONE_EVERY (60), BENCH_PROTECT_POLL (0.5), BENCH_PROTECT_DRAIN (150)
and BENCH_PROTECT_STARTUP (120). The defaults take about four minutes on the lab.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import math
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.backup.crypto import KeySource
from orchestrator.backup.sets import BackupSet, open_set
from orchestrator.errors import NotFound
from orchestrator.providers.aws_clients import aws_client
from orchestrator.providers.factory import StoreFactory
from tests.bench.run import rclone_env
from tests.support.lab import NOT_RUNNING, empty_bucket, lab_settings, unique_name
from tests.support.ports import free_port

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

VENV_BIN = Path(sys.executable).parent
PREFIX = "data/"
TARGET_P99_S = 30.0
SEALED_IN = re.compile(r" sealed \(.*? in (\d+(?:\.\d+)?)s;")


@dataclass(frozen=True)
class LagConfig:
    rate: float
    """Versions written per second into each bucket."""
    seconds: float
    kib: int
    new_share: float
    """Share of the writes that make a new key; the rest overwrite a key already written."""
    seed: int
    rpo: str
    rclone_every: float
    poll: float
    drain: float
    """Longest wait after the writer stops for every key's last version to be covered."""
    startup: float
    """Longest wait for the protect's first point."""

    @classmethod
    def from_env(cls) -> LagConfig:
        def num(name: str, default: float) -> float:
            return float(os.environ.get(name, default))

        return cls(
            rate=num("BENCH_PROTECT_RATE", 2),
            seconds=num("BENCH_PROTECT_SECONDS", 150),
            kib=int(num("BENCH_PROTECT_KIB", 4)),
            new_share=num("BENCH_PROTECT_NEW_SHARE", 0.5),
            seed=int(num("BENCH_PROTECT_SEED", 20)),
            rpo=os.environ.get("BENCH_PROTECT_RPO", "1m"),
            rclone_every=num("BENCH_PROTECT_RCLONE_EVERY", 60),
            poll=num("BENCH_PROTECT_POLL", 0.5),
            drain=num("BENCH_PROTECT_DRAIN", 150),
            startup=num("BENCH_PROTECT_STARTUP", 120),
        )


# -- the writer ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Version:
    key: str
    """Relative to the source prefix, as a point's entries name it."""
    seq: int
    """This version's place among the key's versions (0 for the first)."""
    sha256: str
    md5: str
    size: int
    written: float
    """Wall clock (epoch seconds) right after the PUT returned."""


@dataclass
class Ledger:
    """What was written to one bucket, in order."""

    bucket: str
    versions: list[Version] = field(default_factory=list)
    by_key: dict[str, list[Version]] = field(default_factory=dict)

    def add(self, key: str, body: bytes, written: float) -> None:
        seq = len(self.by_key.get(key, []))
        v = Version(key, seq, hashlib.sha256(body).hexdigest(), hashlib.md5(body).hexdigest(), len(body), written)
        self.versions.append(v)
        self.by_key.setdefault(key, []).append(v)

    def later_or_same(self, v: Version) -> list[Version]:
        return self.by_key[v.key][v.seq :]

    def last_versions(self) -> list[Version]:
        return [vs[-1] for vs in self.by_key.values()]


def body_for(key: str, serial: int, bucket: str, kib: int) -> bytes:
    # A header naming the version, then random bytes: unique per version, so its sha256 identifies it exactly.
    head = f"{bucket}/{key} #{serial} {time.time_ns()}\n".encode()
    return head + os.urandom(max(0, kib * 1024 - len(head)))


def put(client: S3Client, ledger: Ledger, key: str, body: bytes) -> None:
    client.put_object(Bucket=ledger.bucket, Key=PREFIX + key, Body=body)
    ledger.add(key, body, time.time())


def seed(client: S3Client, ledgers: Sequence[Ledger], cfg: LagConfig) -> list[str]:
    keys = [f"seed-{i:04d}.bin" for i in range(cfg.seed)]
    for ledger in ledgers:
        client.create_bucket(Bucket=ledger.bucket)
        for i, key in enumerate(keys):
            put(client, ledger, key, body_for(key, i, ledger.bucket, cfg.kib))
    return keys


@dataclass
class WriterReport:
    started: float = 0.0
    finished: float = 0.0
    writes: int = 0
    behind_max_s: float = 0.0
    """Longest time a tick started after its scheduled moment: the writer's own lateness."""


def write_loop(
    client: S3Client, ledgers: Sequence[Ledger], keys: list[str], cfg: LagConfig, abort: threading.Event
) -> WriterReport:
    """N changes a second for T seconds, the same change in every bucket."""
    rng = random.Random(1515)  # a fixed sequence, so runs with the same sizes write the same pattern
    report = WriterReport(started=time.time())
    start = time.perf_counter()
    total = int(cfg.rate * cfg.seconds)
    fresh = 0
    for tick in range(total):
        due = start + tick / cfg.rate
        if abort.wait(max(0.0, due - time.perf_counter())):
            break
        report.behind_max_s = max(report.behind_max_s, time.perf_counter() - due)
        if rng.random() < cfg.new_share or not keys:
            key = f"obj-{fresh:05d}.bin"
            fresh += 1
            keys.append(key)
        else:
            key = rng.choice(keys)
        for ledger in ledgers:
            put(client, ledger, key, body_for(key, tick, ledger.bucket, cfg.kib))
        report.writes += 1
    report.finished = time.time()
    return report


# -- the protect side ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SeenPoint:
    point_id: str
    observed: float
    """When a listing of the set first showed the point."""
    created: float
    """The point's own ``created`` (sealed) stamp; the same host's clock."""
    objects: int


class PointWatcher(threading.Thread):
    """Lists the set's points every ``poll`` seconds and notes when each (key, sha256) first appears."""

    def __init__(self, factory: StoreFactory, set_url: str, env: Mapping[str, str], poll: float) -> None:
        super().__init__(name="point-watcher", daemon=True)
        self._factory, self._url, self._env, self._poll = factory, set_url, env, poll
        self._lock = threading.Lock()
        self._seen: dict[tuple[str, str], float] = {}
        self.points: list[SeenPoint] = []
        self.errors: list[str] = []
        self.halt = threading.Event()

    def seen(self) -> dict[tuple[str, str], float]:
        with self._lock:
            return dict(self._seen)

    def run(self) -> None:
        bset: BackupSet | None = None
        known: set[str] = set()
        while not self.halt.wait(self._poll):
            try:
                if bset is None:
                    bset = open_set(self._factory.open(self._url), KeySource(), self._env)
                ids = bset.point_ids()
                listed = time.time()
                for point_id in ids:
                    if point_id in known:
                        continue
                    point = bset.load_point(point_id)
                    with self._lock:
                        for entry in point.objects:
                            self._seen.setdefault((entry.key, entry.sha256), listed)
                        self.points.append(SeenPoint(point_id, listed, point.created.timestamp(), len(point.objects)))
                    known.add(point_id)
            except NotFound:
                continue  # the protect has not made the set yet
            except Exception as exc:  # an emulator blip must not end the measurement; it is counted and printed
                self.errors.append(f"{type(exc).__name__}: {exc}")


class MetricsSampler(threading.Thread):
    """Scrapes the protect's /metrics every ``every`` seconds; keeps the last scrape and every lag it reported."""

    def __init__(self, url: str, every: float = 2.0) -> None:
        super().__init__(name="metrics-sampler", daemon=True)
        self._url, self._every = url, every
        self.last: dict[str, float] = {}
        self.lags: list[tuple[float, float]] = []
        """(when, drctl_protect_lag_seconds) for each scrape that answered."""
        self.failures = 0
        self.halt = threading.Event()

    def scrape(self) -> dict[str, float]:
        with urllib.request.urlopen(self._url, timeout=5) as resp:
            text = resp.read().decode()
        values: dict[str, float] = {}
        for line in text.splitlines():
            if line.startswith("drctl_protect_"):
                name, _, value = line.rpartition(" ")
                with contextlib.suppress(ValueError):
                    values[name] = float(value)
        return values

    def run(self) -> None:
        while not self.halt.wait(self._every):
            try:
                self.last = self.scrape()
            except Exception:  # not serving yet, or busy: the next scrape may answer
                self.failures += 1
                continue
            # The series carries a ``set`` label; there is one set, so the first match is it.
            lag = next((v for k, v in self.last.items() if k.startswith("drctl_protect_lag_seconds")), None)
            if lag is not None:
                self.lags.append((time.time(), lag))


def protect_argv(source: str, set_url: str, queue: str, metrics_port: int, rpo: str) -> list[str]:
    return [
        str(VENV_BIN / "drctl"),
        "protect",
        source,
        set_url,
        "--rpo",
        rpo,
        "--sqs-queue",
        queue,
        "--setup-notifications",
        "--metrics-addr",
        f"127.0.0.1:{metrics_port}",
    ]


def protect_available(env: Mapping[str, str]) -> bool:
    probe = subprocess.run(
        [str(VENV_BIN / "drctl"), "protect", "-h"], env=dict(env), capture_output=True, check=False, timeout=60
    )
    return probe.returncode == 0


def stop_process(proc: subprocess.Popen[bytes], grace: float) -> tuple[int, float]:
    """SIGTERM by PID, then SIGKILL after ``grace`` seconds; the exit code and how long it took to go."""
    start = time.perf_counter()
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode, time.perf_counter() - start


# -- the rclone side ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RcloneRun:
    start: float
    end: float
    code: int
    dest_md5: dict[str, str]
    """Destination key (relative to the prefix) -> Content-MD5 (hex) right after the run; "" when absent."""


class RcloneLoop(threading.Thread):
    """``rclone copy`` every ``every`` seconds, start to start, until a run starts after ``until`` (set once the
    writer is done), so the last run sees every write."""

    def __init__(
        self, argv: list[str], env: Mapping[str, str], every: float, list_dest: Callable[[], dict[str, str]]
    ) -> None:
        super().__init__(name="rclone-loop", daemon=True)
        self._argv, self._env, self._every, self._list_dest = argv, dict(env), every, list_dest
        self.runs: list[RcloneRun] = []
        self.errors: list[str] = []
        self.until: float | None = None
        self.halt = threading.Event()
        self.proc: subprocess.Popen[bytes] | None = None

    def run(self) -> None:
        next_start = time.time()
        while not self.halt.is_set():
            start = time.time()
            with tempfile.TemporaryFile() as err:
                self.proc = subprocess.Popen(self._argv, env=self._env, stdout=subprocess.DEVNULL, stderr=err)
                code = self.proc.wait()
                end = time.time()
                if code != 0:
                    err.seek(0)
                    self.errors.append(f"exit {code}: {err.read().decode(errors='replace').strip()[-300:]}")
            try:
                listing = self._list_dest()
            except Exception as exc:
                self.errors.append(f"listing the destination: {type(exc).__name__}: {exc}")
                listing = {}
            self.runs.append(RcloneRun(start, end, code, listing))
            if self.until is not None and start > self.until:
                return
            next_start += self._every
            self.halt.wait(max(0.0, next_start - time.time()))

    def kill(self) -> None:
        self.halt.set()
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()


# -- figures ------------------------------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile: a value that was measured, never an interpolation between two."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


@dataclass
class Lags:
    versions: int = 0
    lags: list[float] = field(default_factory=list)
    exact: int = 0
    """Covered by a point (or run) holding that very version."""
    superseded: int = 0
    """Overwritten before any point held it; covered when a later version of the key was."""
    missing: int = 0
    """Never covered within the drain time."""
    mismatched: int = 0
    """rclone only: the run the definition credits did not leave this version or a later one at the destination."""

    def row(self, name: str) -> str:
        if not self.lags:
            return f"{name:<28}{self.versions:>9}{self.exact:>8}{self.superseded:>8}{self.missing:>8}   (no lags)"
        p50, p99, top = percentile(self.lags, 50), percentile(self.lags, 99), max(self.lags)
        # A version never covered has an unbounded lag: with more than 1% of them the p99 is not below anything.
        meets = p99 < TARGET_P99_S and self.missing <= len(self.lags) // 100
        return (
            f"{name:<28}{self.versions:>9}{self.exact:>8}{self.superseded:>8}{self.missing:>8}"
            f"{p50:>9.1f}{p99:>9.1f}{top:>9.1f}   {'yes' if meets else 'no'}"
        )


def protect_lags(ledger: Ledger, seen: Mapping[tuple[str, str], float], since: float) -> Lags:
    out = Lags()
    for v in ledger.versions:
        if v.written < since:
            continue  # the seed, copied by the first (full) point before the writer began
        out.versions += 1
        times = [seen[(w.key, w.sha256)] for w in ledger.later_or_same(v) if (w.key, w.sha256) in seen]
        if not times:
            out.missing += 1
            continue
        if (v.key, v.sha256) in seen:
            out.exact += 1
        else:
            out.superseded += 1
        out.lags.append(min(times) - v.written)
    return out


def rclone_lags(ledger: Ledger, runs: Sequence[RcloneRun], since: float) -> Lags:
    out = Lags()
    for v in ledger.versions:
        if v.written < since:
            continue
        out.versions += 1
        run = next((r for r in runs if r.start > v.written), None)
        if run is None:
            out.missing += 1
            continue
        out.lags.append(run.end - v.written)
        left = run.dest_md5.get(v.key, "")
        if left == v.md5:
            out.exact += 1
        elif left in {w.md5 for w in ledger.later_or_same(v)[1:]}:
            out.superseded += 1
        else:
            out.mismatched += 1
    return out


def dest_md5s(factory: StoreFactory, container: str) -> dict[str, str]:
    blobs = factory.blob_service().get_container_client(container)
    found: dict[str, str] = {}
    for blob in blobs.list_blobs(name_starts_with=PREFIX):
        md5 = blob.content_settings.content_md5 if blob.content_settings else None
        found[blob.name[len(PREFIX) :]] = bytes(md5).hex() if md5 else ""
    return found


# -- the run ------------------------------------------------------------------------------------------------------


def wait_for(condition: Callable[[], bool], timeout: float, every: float, alive: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        if not alive():
            return False
        time.sleep(every)  # a polling interval while the protect works; it has no readiness signal to wait on
    return condition()


def all_covered(ledger: Ledger, seen: Mapping[tuple[str, str], float]) -> bool:
    return all((v.key, v.sha256) in seen for v in ledger.last_versions())


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no output)"


def delete_queue(lab: Mapping[str, str], name: str) -> None:
    sqs: Any = aws_client(lab, "sqs")  # no SQS type stubs in the project; three plain calls
    with contextlib.suppress(Exception):  # the protect may have failed before making it
        sqs.delete_queue(QueueUrl=sqs.get_queue_url(QueueName=name)["QueueUrl"])


@dataclass
class ProtectOutcome:
    spawned: float = 0.0
    first_point_s: float | None = None
    exit_code: int | None = None
    stop_s: float = 0.0
    sealed_lines: int = 0
    copy_s: list[float] = field(default_factory=list)
    """Each sealed point's copy time, from its log line (``... sealed (...): ... in 0.4s; ...``)."""
    stderr_tail: str = ""


def main() -> int:
    lab = lab_settings()
    if lab is None:
        print(f"bench: {NOT_RUNNING}", file=sys.stderr)
        return 2
    cfg = LagConfig.from_env()
    state = Path(tempfile.mkdtemp(prefix="drctl-bench-protect-"))
    drctl_env = {**os.environ, **lab, "DRCTL_STATE_DIR": str(state)}
    if not protect_available(drctl_env):
        print("bench: `drctl protect` is not available in this build", file=sys.stderr)
        return 2
    factory = StoreFactory(lab)
    client = factory.s3_client()
    service = factory.blob_service()
    mine, theirs = Ledger(unique_name("prot")), Ledger(unique_name("rcl"))
    vault, rclone_dest, queue = unique_name("vault"), unique_name("rcl"), unique_name("q")
    port = free_port()
    set_url = f"az://{vault}/set/"
    stderr_path = state / "protect.stderr"
    outcome = ProtectOutcome()
    abort = threading.Event()
    proc: subprocess.Popen[bytes] | None = None
    watcher = PointWatcher(factory, set_url, drctl_env, cfg.poll)
    sampler = MetricsSampler(f"http://127.0.0.1:{port}/metrics")
    rclone = RcloneLoop(
        [
            str(VENV_BIN / "rclone"),
            "copy",
            f"labs3:{theirs.bucket}/{PREFIX.rstrip('/')}",
            f"labaz:{rclone_dest}/{PREFIX.rstrip('/')}",
            "--checksum",
            "--fast-list",
        ],
        rclone_env(lab),
        cfg.rclone_every,
        lambda: dest_md5s(factory, rclone_dest),
    )
    created: list[str] = []
    try:
        for name in (vault, rclone_dest):
            service.create_container(name)
            created.append(name)
        print(f"bench: seeding {cfg.seed} objects into {mine.bucket} and {theirs.bucket}", file=sys.stderr)
        keys = seed(client, (mine, theirs), cfg)
        argv = protect_argv(f"s3://{mine.bucket}/{PREFIX}", set_url, queue, port, cfg.rpo)
        print(f"bench: {' '.join(argv[1:])}", file=sys.stderr)
        with stderr_path.open("wb") as err:
            outcome.spawned = time.time()
            proc = subprocess.Popen(argv, env=drctl_env, stdout=subprocess.DEVNULL, stderr=err)
        watcher.start()
        sampler.start()
        running = proc

        def alive() -> bool:
            return running.poll() is None

        seeded = mine.last_versions()
        if not wait_for(lambda: all_covered(mine, watcher.seen()), cfg.startup, cfg.poll, alive):
            raise SystemExit(
                f"bench: the protect made no first point within {cfg.startup:.0f} s "
                f"(exit {proc.poll()}):\n{tail(stderr_path)}"
            )
        outcome.first_point_s = min(watcher.seen()[(v.key, v.sha256)] for v in seeded) - outcome.spawned

        print(
            f"bench: writing {cfg.rate:g}/s for {cfg.seconds:g} s into each bucket; "
            f"rclone every {cfg.rclone_every:g} s",
            file=sys.stderr,
        )
        rclone.start()
        writer = write_loop(client, (mine, theirs), keys, cfg, abort)
        rclone.until = writer.finished
        print("bench: writer done; waiting for both to cover the last versions", file=sys.stderr)
        drain_end = time.monotonic() + cfg.drain
        wait_for(lambda: all_covered(mine, watcher.seen()), cfg.drain, cfg.poll, alive)
        rclone.join(max(0.0, drain_end - time.monotonic()))
        sampler.halt.set()
        sampler.join()
        with contextlib.suppress(Exception):  # a final scrape for the totals; the sampler's last one otherwise
            sampler.last = sampler.scrape()
        watcher.halt.set()
        watcher.join()
        outcome.exit_code, outcome.stop_s = stop_process(proc, grace=30)
    finally:
        abort.set()
        rclone.kill()
        watcher.halt.set()
        sampler.halt.set()
        if proc is not None and proc.poll() is None:
            code, outcome.stop_s = stop_process(proc, grace=30)
            outcome.exit_code = code
        delete_queue(lab, queue)
        for ledger in (mine, theirs):
            with contextlib.suppress(Exception):  # a bucket the seed never made
                empty_bucket(client, ledger.bucket)
                client.delete_bucket(Bucket=ledger.bucket)
        for name in created:
            with contextlib.suppress(Exception):
                service.delete_container(name)
        text = stderr_path.read_text(errors="replace") if stderr_path.exists() else ""
        sealed = [line for line in text.splitlines() if " sealed (" in line]
        outcome.sealed_lines = len(sealed)
        outcome.copy_s = [float(m.group(1)) for line in sealed if (m := SEALED_IN.search(line))]
        outcome.stderr_tail = tail(stderr_path)
        shutil.rmtree(state, ignore_errors=True)

    report(cfg, writer, mine, theirs, watcher, sampler, rclone, outcome)
    return 0 if outcome.exit_code == 0 and not watcher.errors else 1


def report(
    cfg: LagConfig,
    writer: WriterReport,
    mine: Ledger,
    theirs: Ledger,
    watcher: PointWatcher,
    sampler: MetricsSampler,
    rclone: RcloneLoop,
    outcome: ProtectOutcome,
) -> None:
    seen = watcher.seen()
    p = protect_lags(mine, seen, writer.started)
    r = rclone_lags(theirs, rclone.runs, writer.started)
    window = writer.finished - writer.started
    points = [pt for pt in watcher.points if pt.observed >= writer.started]
    print()
    print(
        f"protect lag: {writer.writes} changes in {window:.0f} s ({writer.writes / window:.2f}/s asked {cfg.rate:g}/s,"
        f" T={cfg.seconds:g} s) into each of two buckets, {cfg.kib} KiB objects, {cfg.new_share:.0%} new keys, "
        f"the rest overwrites; writer at most {writer.behind_max_s:.2f} s behind its schedule"
    )
    print("figures from the emulators on this machine (LocalStack 4.13.1 S3 + SQS -> Azurite), both tools concurrently")
    heads = f"{'versions':>9}{'exact':>8}{'supers.':>8}{'missing':>8}{'p50 s':>9}{'p99 s':>9}{'max s':>9}"
    print(f"{'':<28}{heads}   p99<30s")
    print(p.row(f"drctl protect --rpo {cfg.rpo}"))
    print(r.row(f"rclone every {cfg.rclone_every:g} s"))
    print(
        "  exact: a point (an rclone run) held that very version; supers.: overwritten first, covered by a later "
        "version; missing: never covered"
    )
    print()
    first = f"{outcome.first_point_s:.1f} s" if outcome.first_point_s is not None else "-"
    print(f"protect: first point (full copy of {cfg.seed} seed objects) {first} after spawn")
    if len(points) >= 2:
        gaps = [b.observed - a.observed for a, b in itertools.pairwise(points)]
        print(
            f"protect: {len(points)} points during/after the writer; interval p50 {percentile(gaps, 50):.1f} s, "
            f"max {max(gaps):.1f} s"
        )
    delays = [pt.observed - pt.created for pt in points]
    if delays:
        print(
            f"protect: point sealed -> seen by this bench's listing: p50 {percentile(delays, 50):.2f} s, "
            f"max {max(delays):.2f} s (part of the lags above; poll every {cfg.poll:g} s)"
        )
    # Only from the writer's start: before the first point the service rightly reports an infinite lag.
    own = [lag for at, lag in sampler.lags if at >= writer.started and math.isfinite(lag)]
    reported = f"p50 {percentile(own, 50):.1f} s, max {max(own):.1f} s" if own else "never scraped"
    print(f"protect: drctl_protect_lag_seconds as it reported itself (every 2 s): {reported}")
    for name in sorted(sampler.last):
        if name.startswith(("drctl_protect_points_total", "drctl_protect_bytes_total", "drctl_protect_errors_total")):
            print(f"protect: {name} = {sampler.last[name]:.0f}")
    print(
        f"protect: SIGTERM -> exit {outcome.exit_code} in {outcome.stop_s:.1f} s; "
        f"{outcome.sealed_lines} 'point ... sealed' line(s) on its stderr"
    )
    if outcome.copy_s:
        p50, top = percentile(outcome.copy_s, 50), max(outcome.copy_s)
        print(f"protect: each point's copy (its log): p50 {p50:.1f} s, max {top:.1f} s")
    if outcome.exit_code != 0:
        print(f"protect stderr (tail):\n{outcome.stderr_tail}")
    for err in watcher.errors[:5]:
        print(f"watcher error: {err}")
    durations = [run.end - run.start for run in rclone.runs]
    if durations:
        p50, top = percentile(durations, 50), max(durations)
        print(f"rclone: {len(durations)} runs, each {p50:.1f} s (p50), {top:.1f} s max")
    if r.mismatched:
        print(f"rclone: {r.mismatched} version(s) not at the destination after the run the definition credits")
    for err in rclone.errors[:5]:
        print(f"rclone error: {err}")


if __name__ == "__main__":
    sys.exit(main())
