"""Throughput of drctl against rclone on the lab, side by side in the same run (``make bench``).

1. Seed S3 (LocalStack) with N small and M large objects (default 100 x 1 MiB + 2 x 64 MiB).
2. Measure the emulators' raw ceiling: parallel GETs from S3 and PUTs into Azurite.
3. Alternate a drctl full copy S3 -> Azure and ``rclone copy --transfers 8`` over several repetitions.
4. Change 1% of the objects, then alternate a drctl incremental and ``rclone copy --checksum --fast-list``.

Prints MiB/s for each, their ratio and drctl's peak RSS. Figures are printed, never asserted: the machines
are noisy, so a benchmark states numbers and a person reads them. Sizes come from BENCH_* variables.
"""

from __future__ import annotations

import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.providers.azure_settings import connection_endpoint
from orchestrator.providers.factory import StoreFactory
from tests.support.lab import NOT_RUNNING, empty_bucket, lab_settings, unique_name

MiB = 1024 * 1024
VENV_BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class BenchConfig:
    small_count: int
    small_mib: int
    large_count: int
    large_mib: int
    reps: int
    transfers: int
    many_count: int

    @classmethod
    def from_env(cls) -> BenchConfig:
        def num(name: str, default: int) -> int:
            return int(os.environ.get(name, default))

        return cls(
            small_count=num("BENCH_SMALL_COUNT", 100),
            small_mib=num("BENCH_SMALL_MIB", 1),
            large_count=num("BENCH_LARGE_COUNT", 2),
            large_mib=num("BENCH_LARGE_MIB", 64),
            reps=num("BENCH_REPS", 3),
            transfers=num("BENCH_TRANSFERS", 8),
            many_count=num("BENCH_MANY_COUNT", 10_000),
        )

    @property
    def total_bytes(self) -> int:
        return (self.small_count * self.small_mib + self.large_count * self.large_mib) * MiB


@dataclass
class Timing:
    seconds: list[float] = field(default_factory=list)
    peak_rss_kib: list[int] = field(default_factory=list)

    def rate(self, nbytes: int) -> float:
        return nbytes / MiB / statistics.median(self.seconds)


def _peak_rss_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def run_measured(argv: list[str], env: dict[str, str]) -> tuple[float, int, str]:
    """Wall time, peak RSS (KiB) and stdout of a command.

    The peak is the kernel's high-water mark of the process (VmHWM), sampled until it exits. rusage from
    wait4 would be wrong here: it counts the forked copy of this (large) benchmark process before exec.
    """
    start = time.perf_counter()
    peak = 0
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=err)
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.wait(0.02):  # a sampling interval, not a readiness wait
                peak = max(peak, _peak_rss_kib(proc.pid) or 0)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        proc.wait()
        elapsed = time.perf_counter() - start
        done.set()
        sampler.join()
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if proc.returncode != 0:
        raise SystemExit(f"bench: {argv[0]} failed ({proc.returncode}): {stderr.strip()[-500:]}")
    return elapsed, peak, stdout


def rclone_env(lab: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("AWS_CA_BUNDLE",)}  # rclone rejects the bundle
    blob_endpoint = connection_endpoint(lab["AZURE_STORAGE_CONNECTION_STRING"])
    env.update(
        {
            "RCLONE_CONFIG_LABS3_TYPE": "s3",
            "RCLONE_CONFIG_LABS3_PROVIDER": "Other",
            "RCLONE_CONFIG_LABS3_ENDPOINT": lab["AWS_ENDPOINT_URL"],
            "RCLONE_CONFIG_LABS3_ACCESS_KEY_ID": lab["AWS_ACCESS_KEY_ID"],
            "RCLONE_CONFIG_LABS3_SECRET_ACCESS_KEY": lab["AWS_SECRET_ACCESS_KEY"],
            "RCLONE_CONFIG_LABS3_FORCE_PATH_STYLE": "true",
            "RCLONE_CONFIG_LABAZ_TYPE": "azureblob",
            "RCLONE_CONFIG_LABAZ_USE_EMULATOR": "true",
            "RCLONE_CONFIG_LABAZ_ENDPOINT": blob_endpoint,
        }
    )
    return env


def seed(factory: StoreFactory, bucket: str, cfg: BenchConfig) -> list[str]:
    client = factory.s3_client()
    client.create_bucket(Bucket=bucket)
    sizes = [(f"data/small-{i:04d}.bin", cfg.small_mib) for i in range(cfg.small_count)]
    sizes += [(f"data/large-{i:02d}.bin", cfg.large_mib) for i in range(cfg.large_count)]

    def put(item: tuple[str, int]) -> None:
        key, mib = item
        client.upload_fileobj(io.BytesIO(os.urandom(mib * MiB)), bucket, key)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(put, sizes))
    return [k for k, _ in sizes]


def ceiling(factory: StoreFactory, bucket: str, keys: list[str], container: str, cfg: BenchConfig) -> dict[str, float]:
    client = factory.s3_client()

    def get(key: str) -> int:
        return len(client.get_object(Bucket=bucket, Key=key)["Body"].read())

    start = time.perf_counter()
    with ThreadPoolExecutor(cfg.transfers) as pool:
        got = sum(pool.map(get, keys))
    read_rate = got / MiB / (time.perf_counter() - start)

    blobs = factory.blob_service().get_container_client(container)
    payload = os.urandom(cfg.small_mib * MiB)
    start = time.perf_counter()
    with ThreadPoolExecutor(cfg.transfers) as pool:
        list(pool.map(lambda i: blobs.upload_blob(f"raw/{i}", payload, overwrite=True), range(cfg.small_count)))
    write_rate = cfg.small_count * len(payload) / MiB / (time.perf_counter() - start)
    return {"s3_parallel_get_mib_s": read_rate, "azurite_parallel_put_mib_s": write_rate}


def many_objects_incremental(
    factory: StoreFactory, cfg: BenchConfig, drctl_env: dict[str, str], rc_env: dict[str, str], container: str
) -> tuple[Timing, Timing, Timing] | None:
    """Incrementals where the object count, not the bytes, is the cost: many small objects, 1% changed.

    Compared with rclone's default (which checks modification times with a HEAD per object) and with the
    knowledgeable user's ``--checksum --fast-list``, which compares listings only.
    """
    if cfg.many_count <= 0:
        return None
    bucket = unique_name("many")
    client = factory.s3_client()
    client.create_bucket(Bucket=bucket)
    keys = [f"many/{i:06d}" for i in range(cfg.many_count)]
    try:
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda k: client.put_object(Bucket=bucket, Key=k, Body=os.urandom(1024)), keys))
        src = f"s3://{bucket}/many/"
        base_argv = [str(VENV_BIN / "drctl"), "backup", "copy", src, f"az://{container}/many-set/", "--json", "--quiet"]
        run_measured([*base_argv, "--mode", "full", "--transfers", "16"], drctl_env)
        rclone = [
            str(VENV_BIN / "rclone"),
            "copy",
            f"labs3:{bucket}/many",
            f"labaz:{container}/many-rclone",
            "--transfers",
            "16",
        ]
        run_measured(rclone, rc_env)
        for key in keys[::100]:
            client.put_object(Bucket=bucket, Key=key, Body=os.urandom(1024))
        changed = len(keys[::100])
        d, r_sum, r_mod = Timing(), Timing(), Timing()
        for rep in range(cfg.reps):
            seconds, rss, out = run_measured([*base_argv, "--mode", "incremental"], drctl_env)
            assert json.loads(out)["objects_transferred"] == (changed if rep == 0 else 0)
            d.seconds.append(seconds)
            d.peak_rss_kib.append(rss)
            for timing, extra in ((r_sum, ["--checksum", "--fast-list"]), (r_mod, [])):
                seconds, rss, _ = run_measured([*rclone, *extra], rc_env)
                timing.seconds.append(seconds)
                timing.peak_rss_kib.append(rss)
        return d, r_sum, r_mod
    finally:
        empty_bucket(factory.s3_client(), bucket)
        client.delete_bucket(Bucket=bucket)


def alternate(
    reps: int, first: Callable[[int], tuple[float, int]], second: Callable[[int], tuple[float, int]]
) -> tuple[Timing, Timing]:
    a, b = Timing(), Timing()
    for rep in range(reps):
        # Alternate the order too, so neither tool always runs on a warmer emulator.
        order = ((a, first), (b, second)) if rep % 2 == 0 else ((b, second), (a, first))
        for timing, fn in order:
            seconds, rss = fn(rep)
            timing.seconds.append(seconds)
            timing.peak_rss_kib.append(rss)
    return a, b


def main() -> int:
    lab = lab_settings()
    if lab is None:
        print(f"bench: {NOT_RUNNING}", file=sys.stderr)
        return 2
    cfg = BenchConfig.from_env()
    factory = StoreFactory(lab)
    bucket, container = unique_name("bench"), unique_name("bench")
    state = tempfile.mkdtemp(prefix="drctl-bench-state-")
    drctl_env = {**os.environ, **lab, "DRCTL_STATE_DIR": state}
    rc_env = rclone_env(lab)
    drctl = [str(VENV_BIN / "drctl")]
    rclone = [str(VENV_BIN / "rclone")]
    service = factory.blob_service()
    service.create_container(container)
    try:
        print(
            f"bench: seeding {cfg.small_count} x {cfg.small_mib} MiB + {cfg.large_count} x {cfg.large_mib} MiB "
            f"({cfg.total_bytes / MiB:.0f} MiB) into LocalStack S3",
            file=sys.stderr,
        )
        keys = seed(factory, bucket, cfg)
        raw = ceiling(factory, bucket, keys, container, cfg)

        def drctl_full(rep: int) -> tuple[float, int]:
            argv = [
                *drctl,
                "backup",
                "copy",
                f"s3://{bucket}/data/",
                f"az://{container}/drctl-{rep}/",
                "--mode",
                "full",
                "--json",
                "--quiet",
                "--transfers",
                str(cfg.transfers),
            ]
            seconds, rss, out = run_measured(argv, drctl_env)
            assert json.loads(out)["bytes_transferred"] == cfg.total_bytes
            return seconds, rss

        def rclone_full(rep: int) -> tuple[float, int]:
            argv = [
                *rclone,
                "copy",
                f"labs3:{bucket}/data",
                f"labaz:{container}/rclone-{rep}",
                "--transfers",
                str(cfg.transfers),
            ]
            seconds, rss, _ = run_measured(argv, rc_env)
            return seconds, rss

        full_d, full_r = alternate(cfg.reps, drctl_full, rclone_full)

        # Change 1% of the objects (at least one), then measure the incremental against the last full of each.
        changed = keys[: max(1, len(keys) // 100)]
        client = factory.s3_client()
        for key in changed:
            client.put_object(Bucket=bucket, Key=key, Body=os.urandom(cfg.small_mib * MiB))
        changed_bytes = len(changed) * cfg.small_mib * MiB
        last = cfg.reps - 1

        def drctl_incr(rep: int) -> tuple[float, int]:
            argv = [
                *drctl,
                "backup",
                "copy",
                f"s3://{bucket}/data/",
                f"az://{container}/drctl-{last}/",
                "--mode",
                "incremental",
                "--json",
                "--quiet",
            ]
            seconds, rss, out = run_measured(argv, drctl_env)
            summary = json.loads(out)
            assert summary["bytes_transferred"] == (changed_bytes if rep == 0 else 0), summary
            return seconds, rss

        def rclone_incr(rep: int) -> tuple[float, int]:
            argv = [
                *rclone,
                "copy",
                f"labs3:{bucket}/data",
                f"labaz:{container}/rclone-{last}",
                "--checksum",
                "--fast-list",
                "--transfers",
                str(cfg.transfers),
            ]
            seconds, rss, _ = run_measured(argv, rc_env)
            return seconds, rss

        # One incremental each after the change (the one that sends the 1%), then no-change re-runs.
        incr_d, incr_r = alternate(cfg.reps, drctl_incr, rclone_incr)
        print(f"bench: {cfg.many_count} small objects for the incremental at scale", file=sys.stderr)
        many = many_objects_incremental(factory, cfg, drctl_env, rc_env, container)
    finally:
        empty_bucket(factory.s3_client(), bucket)
        factory.s3_client().delete_bucket(Bucket=bucket)
        service.delete_container(container)

    total = cfg.total_bytes
    print()
    print(
        f"data set: {len(keys)} objects, {total / MiB:.0f} MiB, LocalStack S3 -> Azurite, {cfg.reps} reps, "
        f"{cfg.transfers} transfers (figures from the emulators on this machine)"
    )
    print(
        f"ceiling:  S3 parallel GET {raw['s3_parallel_get_mib_s']:.0f} MiB/s, "
        f"Azurite parallel PUT {raw['azurite_parallel_put_mib_s']:.0f} MiB/s"
    )
    print(f"{'':<22}{'median s':>10}{'MiB/s':>10}{'runs (s)':>28}{'peak RSS':>12}")
    for name, timing, nbytes in (
        ("drctl full", full_d, total),
        ("rclone copy", full_r, total),
        ("drctl incremental", incr_d, None),
        ("rclone --checksum", incr_r, None),
    ):
        rate = f"{timing.rate(nbytes):.1f}" if nbytes else "-"
        runs = " ".join(f"{s:.2f}" for s in timing.seconds)
        print(
            f"{name:<22}{statistics.median(timing.seconds):>10.2f}{rate:>10}{runs:>28}"
            f"{max(timing.peak_rss_kib) / 1024:>9.0f} MiB"
        )
    print(f"full copy: drctl / rclone throughput = {full_d.rate(total) / full_r.rate(total):.2f}x")
    print(
        f"incremental ({len(changed)} of {len(keys)} objects changed): drctl / rclone time = "
        f"{statistics.median(incr_d.seconds) / statistics.median(incr_r.seconds):.2f}x "
        f"(first runs: drctl {incr_d.seconds[0]:.2f}s, rclone {incr_r.seconds[0]:.2f}s)"
    )
    if many is not None:
        d, r_sum, r_mod = many
        print(
            f"incremental at scale ({cfg.many_count} x 1 KiB objects, 1% changed; median of {cfg.reps}, "
            "first run sends the change):"
        )
        for name, timing in (
            ("drctl incremental", d),
            ("rclone --checksum --fast-list", r_sum),
            ("rclone (modtime, default)", r_mod),
        ):
            runs = " ".join(f"{s:.2f}" for s in timing.seconds)
            print(
                f"  {name:<32}{statistics.median(timing.seconds):>8.2f} s   runs: {runs}"
                f"   peak RSS {max(timing.peak_rss_kib) / 1024:.0f} MiB"
            )
    rss_all = full_d.peak_rss_kib + incr_d.peak_rss_kib + (many[0].peak_rss_kib if many else [])
    print(f"drctl peak RSS: {max(rss_all) / 1024:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
