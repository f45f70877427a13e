"""How a sharded copy scales on the lab, beside rclone, in one run (``make bench-scale``).

1. Seed LocalStack S3 with a many-object source (default 20,000 objects of 2-16 KiB).
2. For 1, 2 and 4 shards: ``drctl backup init``, then N ``drctl backup copy --shard I/N`` processes started
   together (as N pods of an Indexed Job would be), then ``drctl backup seal``; S3 -> Azurite, every object
   hashed and verified as always. The wall time runs from the first start to the seal's end.
3. ``rclone copy --transfers 32`` of the same source into Azurite, in the same run.
4. For each run, the CPU seconds the emulators (LocalStack, Azurite) and the copiers used: on a 2-core
   machine the emulators serve every request, so this shows where scaling stops.

Prints a table; nothing is asserted (the machines are noisy; a person reads the figures). Every figure is an
emulator's: real S3 and Blob storage scale per prefix and per account, not per laptop core.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from orchestrator.providers.factory import StoreFactory
from tests.bench.run import VENV_BIN, rclone_env
from tests.support.estate import REPO
from tests.support.lab import NOT_RUNNING, lab_settings, unique_name

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ScaleConfig:
    objects: int
    shard_counts: tuple[int, ...]
    transfers: int
    rclone_transfers: int

    @classmethod
    def from_env(cls) -> ScaleConfig:
        return cls(
            objects=int(os.environ.get("BENCH_SCALE_OBJECTS", 20_000)),
            shard_counts=tuple(int(n) for n in os.environ.get("BENCH_SCALE_SHARDS", "1,2,4").split(",")),
            transfers=int(os.environ.get("BENCH_SCALE_TRANSFERS", 16)),
            rclone_transfers=int(os.environ.get("BENCH_SCALE_RCLONE_TRANSFERS", 32)),
        )


@dataclass(frozen=True)
class Measured:
    label: str
    seconds: float
    emulator_cpu_s: float
    copier_cpu_s: float
    seal_s: float | None = None
    point_bytes: int | None = None


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its reaped children, from /proc (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # utime, stime, cutime, cstime are fields 14-17 of stat; after the ")" split they start at index 11.
    return sum(int(f) for f in fields[11:15]) / CLOCK_TICKS


def _emulator_pids() -> list[int]:
    """The PIDs the lab recorded for LocalStack and Azurite when it started them (its pid files)."""
    run_dir = Path(os.environ.get("DRCTL_LAB_DIR", str(REPO / ".lab"))) / "run"
    pids = []
    for name in ("localstack", "azurite"):
        try:
            pids.append(int((run_dir / f"{name}.pid").read_text().strip()))
        except (OSError, ValueError):
            raise SystemExit(f"bench-scale: no {name} pid in {run_dir}; start the lab with make lab-up") from None
    return pids


def _descendants(pids: list[int]) -> list[int]:
    """``pids`` and every live process under them, looked up anew each time (emulators fork workers)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    tree, frontier = set(pids), list(pids)
    while frontier:
        parent = frontier.pop()
        children = [p for p, pp in parents.items() if pp == parent and p not in tree]
        tree.update(children)
        frontier.extend(children)
    return sorted(tree)


def _emulators_cpu(pids: list[int]) -> float:
    return sum(_cpu_seconds(p) for p in _descendants(pids))


def _run_all(argvs: list[list[str]], env: dict[str, str]) -> float:
    """Start every command at once, wait for all; their CPU seconds (read at exit through wait4's rusage).
    stderr goes to files, not pipes: a process that writes more than a pipe holds would otherwise block for ever.
    On a failure the others are stopped before the bench exits."""
    with tempfile.TemporaryDirectory(prefix="drctl-scale-err-") as errs:
        logs = [Path(errs) / f"{i}.err" for i in range(len(argvs))]
        procs = []
        for argv, log in zip(argvs, logs, strict=True):
            with log.open("wb") as err:
                procs.append(subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=err))
        cpu = 0.0
        for proc, argv, log in zip(procs, argvs, logs, strict=True):
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            cpu += usage.ru_utime + usage.ru_stime
            if proc.returncode != 0:
                for other in procs:
                    if other.returncode is None:
                        other.terminate()
                        other.wait()
                tail = log.read_text(errors="replace").strip()[-400:]
                raise SystemExit(f"bench-scale: {' '.join(argv[:4])} failed ({proc.returncode}): {tail}")
    return cpu


def seed(factory: StoreFactory, bucket: str, count: int) -> None:
    client = factory.s3_client()
    client.create_bucket(Bucket=bucket)

    def put(i: int) -> None:
        client.put_object(
            Bucket=bucket, Key=f"data/{i % 97:02d}/obj-{i:06d}.bin", Body=os.urandom(2048 + (i * 131) % 14336)
        )

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(put, range(count)))


def main() -> int:
    lab = lab_settings()
    if lab is None:
        print(f"bench-scale: {NOT_RUNNING}", file=sys.stderr)
        return 2
    cfg = ScaleConfig.from_env()
    factory = StoreFactory(lab)
    bucket, container = unique_name("scale"), unique_name("scale")
    factory.blob_service().create_container(container)
    drctl = str(VENV_BIN / "drctl")
    emulators = _emulator_pids()
    print(f"bench-scale: seeding {cfg.objects} objects into LocalStack S3", file=sys.stderr)
    seed(factory, bucket, cfg.objects)
    source = f"s3://{bucket}/data/"
    results: list[Measured] = []
    for n in cfg.shard_counts:
        state = tempfile.mkdtemp(prefix="drctl-scale-state-")
        env = {**os.environ, **lab, "DRCTL_STATE_DIR": state}
        set_url = f"az://{container}/set-{n}/"
        _run_all([[drctl, "backup", "init", set_url]], env)
        copy = [
            drctl,
            "backup",
            "copy",
            source,
            set_url,
            "--mode",
            "full",
            "--quiet",
            "--transfers",
            str(cfg.transfers),
        ]
        shards = [[*copy, "--shard", f"{i}/{n}", "--shard-group", "bench"] for i in range(n)]
        emu0, start = _emulators_cpu(emulators), time.perf_counter()
        cpu = _run_all(shards, env)
        sealing = time.perf_counter()
        cpu += _run_all([[drctl, "backup", "seal", set_url, "--shards", str(n), "--shard-group", "bench"]], env)
        end = time.perf_counter()
        point_bytes = sum(o.size for o in factory.open(set_url).list("points/"))
        label = f"drctl, {n} shard{'s' if n > 1 else ''}"
        emulator_cpu = _emulators_cpu(emulators) - emu0
        results.append(Measured(label, end - start, emulator_cpu, cpu, end - sealing, point_bytes))
        seconds = end - start
        print(f"bench-scale: {results[-1].label}: {seconds:.1f}s", file=sys.stderr)
    rclone = [
        str(VENV_BIN / "rclone"),
        "copy",
        f"labs3:{bucket}/data",
        f"labaz:{container}/rclone",
        "--transfers",
        str(cfg.rclone_transfers),
        "--checkers",
        str(cfg.rclone_transfers),
    ]
    emu0, start = _emulators_cpu(emulators), time.perf_counter()
    cpu = _run_all([rclone], rclone_env(lab))
    rclone_s = time.perf_counter() - start
    results.append(
        Measured(f"rclone --transfers {cfg.rclone_transfers}", rclone_s, _emulators_cpu(emulators) - emu0, cpu)
    )
    _report(results, cfg)
    return 0


def _report(results: list[Measured], cfg: ScaleConfig) -> None:
    base = results[0].seconds
    cores = os.cpu_count() or 1
    print(
        f"\nbench-scale: {cfg.objects} objects, S3 (LocalStack) -> Azure Blob (Azurite), {cores} cores "
        "(emulator figures)"
    )
    print(
        f"{'run':<24} {'seconds':>8} {'objects/s':>10} {'vs 1 shard':>10} {'emulator CPU s':>15} {'copier CPU s':>13}"
    )
    for m in results:
        print(
            f"{m.label:<24} {m.seconds:>8.1f} {cfg.objects / m.seconds:>10.0f} {base / m.seconds:>9.2f}x "
            f"{m.emulator_cpu_s:>15.1f} {m.copier_cpu_s:>13.1f}"
        )
    for m in results:
        if m.seal_s is not None and m.point_bytes is not None:
            print(
                f"{m.label}: seal {m.seal_s:.1f}s (a process start included); recovery point manifest "
                f"{m.point_bytes / 2**20:.1f} MiB, {m.point_bytes / cfg.objects:.0f} bytes per object"
            )
    busiest = max(results[:-1], key=lambda m: (m.emulator_cpu_s + m.copier_cpu_s) / m.seconds)
    load = (busiest.emulator_cpu_s + busiest.copier_cpu_s) / busiest.seconds
    print(
        f"busiest drctl run used {load:.2f} of {cores} cores ({busiest.emulator_cpu_s / busiest.seconds:.2f} in the "
        "emulators): past that, more shards only queue for the same cores."
    )


if __name__ == "__main__":
    raise SystemExit(main())
