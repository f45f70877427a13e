"""kill -9 of ``drctl backup copy`` and ``drctl backup restore``, and what must hold after the documented
recovery (run the same command again; in about a third of the cases that rerun is killed too, then run again).

copy: at the crash, every point the set holds verifies (a point never claims objects it lacks); after the rerun
the set holds exactly one new point, or two when the killed copy had already written its manifest (a repeat
adds a point sharing all its data, as documented), every point deep-verifies with no unreferenced data, and
the newest point restored is byte for byte the source (rclone).

restore: at the crash, every object at its final name in the target is complete and correct; after the rerun
the target is exactly the point (rclone, both ways), whatever temporary files the kill stranded.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from azure.storage.blob import BlobServiceClient

from tests.chaos.kill9_checks import part_files, query, rclone_check, unfinished_uploads
from tests.chaos.kill9_process import Outcome, Spawned, Trigger, not_killed
from tests.support.backup import MiB, backup_env, new_key
from tests.support.cli import drctl

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

KiB = 1024
BWLIMIT = "4M"
"""Slows the killed copy (and its rerun) to a few seconds, so random kills land mid-transfer too."""


@dataclass(frozen=True)
class BackupLab:
    lab_env: dict[str, str]
    s3: S3Client
    blobs: BlobServiceClient
    bucket: str
    container: str
    root: Path

    def env(self, case: Path, **extra: str) -> dict[str, str]:
        return backup_env(self.lab_env, case / "state", **extra)


def seed_source(lab: BackupLab, prefix: str, rng: random.Random, small: int, large: int) -> dict[str, bytes]:
    """``small`` objects of 16-768 KiB and ``large`` of 9 MiB (more than one 8 MiB part or block) under
    ``s3://bucket/prefix``, in a few folders."""
    objects = {f"d{i % 3}/o{i:03d}.bin": rng.randbytes(rng.randint(16 * KiB, 768 * KiB)) for i in range(small)}
    objects |= {f"big/b{i}.bin": rng.randbytes(9 * MiB) for i in range(large)}
    for key, body in objects.items():
        lab.s3.put_object(Bucket=lab.bucket, Key=prefix + key, Body=body)
    return objects


def mutate_source(lab: BackupLab, prefix: str, objects: dict[str, bytes], rng: random.Random) -> int:
    """Change some objects, add two and delete one, as a day of writes would; returns how many an incremental
    must send."""
    keys = sorted(objects)
    changed = rng.sample(keys, k=max(2, len(keys) // 2))
    for key in changed:
        objects[key] = rng.randbytes(len(objects[key]) or 1)
    added = [f"new/n{rng.randrange(10**6):06d}-{i}.bin" for i in range(2)]
    for key in added:
        objects[key] = rng.randbytes(rng.randint(16 * KiB, 512 * KiB))
    for key in [*changed, *added]:
        lab.s3.put_object(Bucket=lab.bucket, Key=prefix + key, Body=objects[key])
    gone = rng.choice(sorted(set(keys) - set(changed)))
    lab.s3.delete_object(Bucket=lab.bucket, Key=prefix + gone)
    del objects[gone]
    return len(changed) + len(added)


def listed(lab: BackupLab, location: str) -> list[str]:
    """Object names under an ``s3://`` or ``az://`` location, read with the SDKs (not drctl's stores)."""
    scheme, rest = location.split("://", 1)
    root, _, prefix = rest.partition("/")
    if scheme == "s3":
        pages = lab.s3.get_paginator("list_objects_v2").paginate(Bucket=root, Prefix=prefix)
        return [o["Key"] for page in pages for o in page.get("Contents", [])]
    return [b.name for b in lab.blobs.get_container_client(root).list_blobs(name_starts_with=prefix)]


def cli_json(args: list[str], env: Mapping[str, str]) -> tuple[int, Any, str]:
    result = drctl(*args, env=env, timeout=300)
    try:
        doc = json.loads(result.stdout) if result.stdout.strip() else None
    except json.JSONDecodeError:
        doc = None
    return result.returncode, doc, result.stderr


def traceback_in(stderr: str, what: str) -> list[str]:
    return [f"{what} printed a traceback: {stderr.strip().splitlines()[-1]}"] if "Traceback" in stderr else []


# -- copy -----------------------------------------------------------------------------------------------------


def copy_trigger(rng: random.Random, to_send: int) -> Trigger:
    """Where to aim: while it starts and plans, after a random number of objects is journalled, or once all
    are (sealing: the set is listed again, the manifest written, the journal closed)."""
    phase = rng.choices(["startup", "transfer", "seal"], weights=[1, 3, 1.5])[0]
    if phase == "startup":
        return Trigger("startup/planning", 0, rng.uniform(0.0, 2.5))
    if phase == "transfer" and to_send > 1:
        return Trigger("mid-transfer", rng.randint(1, to_send - 1), rng.uniform(0.0, 0.3))
    return Trigger("sealing", to_send, rng.uniform(0.0, 0.2))


def journalled(state: Path) -> Callable[[], int]:
    """Objects the unfinished copy run has journalled as verified: the copy's own progress."""
    db = state / "journal.sqlite"
    sql = "SELECT count(*) FROM copy_objects o JOIN copy_runs r ON r.run_id = o.run_id WHERE r.finished IS NULL"
    return lambda: int((query(db, sql) or [(0,)])[0][0])


def copy_landed(state: Path, to_send: int, new_points: int) -> str:
    db = state / "journal.sqlite"
    runs = query(db, "SELECT run_id, finished FROM copy_runs ORDER BY started")
    killed = [r for r in runs if r[1] is None]
    if not killed:
        return "after the journal closed" if new_points else "before the journal started"
    done = int(query(db, "SELECT count(*) FROM copy_objects WHERE run_id = ?", (killed[-1][0],))[0][0])
    if new_points:
        return "after the manifest, before the journal closed"
    return "sealing" if done >= to_send else "mid-transfer"


def copy_case(lab: BackupLab, rng: random.Random, index: int) -> Outcome | None:
    """One killed copy and its recovery; None when the copy ended before the kill landed (draw again)."""
    case = lab.root / f"copy-{index}"
    src = f"s3://{lab.bucket}/copy-{index}/src/"
    into_s3 = rng.random() < 0.3
    set_url = f"s3://{lab.bucket}/copy-{index}/set/" if into_s3 else f"az://{lab.container}/copy-{index}/set/"
    encrypt = rng.random() < 0.35
    # Into S3 the set compresses: S3 -> S3 would otherwise be server-side, one call per object, nothing to stream.
    compress = into_s3 or rng.random() < 0.35
    env = lab.env(case, **({"DRCTL_BACKUP_KEY": new_key()} if encrypt else {}))
    objects = seed_source(lab, f"copy-{index}/src/", rng, small=rng.randint(10, 20), large=1)
    mode = rng.choice(["full", "incremental"])
    flags = [*(["--compress"] if compress else []), *(["--encrypt"] if encrypt else [])]
    to_send = len(objects)
    if mode == "incremental":
        code, _, err = cli_json(["backup", "copy", src, set_url, "--mode", "full", "--json", "--quiet", *flags], env)
        assert code == 0, f"copy case {index}: the base full copy failed ({code}): {err[-500:]}"
        to_send = mutate_source(lab, f"copy-{index}/src/", objects, rng)
    transfers = str(rng.choice([2, 4, 8]))
    args = ["backup", "copy", src, set_url, "--mode", mode, "--json", "--quiet", "--bwlimit", BWLIMIT]
    args += ["--transfers", transfers, *flags]
    state = case / "state"
    before = set(listed(lab, set_url + "points/"))
    trigger = copy_trigger(rng, to_send)
    killed = Spawned(args, env, case / "killed").kill_at(trigger, journalled(state))
    if not killed.killed:
        return not_killed(killed, trigger)

    def made() -> set[str]:
        return set(listed(lab, set_url + "points/")) - before

    at_kill = made()
    landed = copy_landed(state, to_send, len(at_kill))
    problems = crash_state(lab, set_url, env, bool(before | at_kill))
    notes: dict[str, int] = {}
    summary: Any = None
    if rng.random() < 0.3:
        # The recovery is killed too, further on (the resumed run continues the same journal).
        done = journalled(state)()
        again = Trigger("the rerun", done + rng.randint(0, max(0, to_send - done)), rng.uniform(0.0, 0.3))
        rerun = Spawned(args, env, case / "rerun").kill_at(again, journalled(state))
        if rerun.killed:
            notes["reruns killed too"] = 1
            at_kill = made()
            problems += crash_state(lab, set_url, env, bool(before | at_kill))
        elif rerun.returncode == 0:
            summary = json.loads((case / "rerun" / "stdout").read_text())
        else:
            return Outcome(trigger.describe(), landed, [*problems, f"the rerun exited {rerun.returncode}"], notes)
    if summary is None:
        code, summary, err = cli_json(args, env)
        problems += traceback_in(err, "the rerun")
        if code != 0 or summary is None:
            return Outcome(trigger.describe(), landed, [*problems, f"the rerun exited {code}: {err[-500:]}"], notes)
    # Each point a killed process had already written stays (a repeat adds a point sharing its data); the
    # finished rerun adds exactly one more. Any other count is a point duplicated or lost.
    points = made()
    if len(points) != len(at_kill) + 1 or not any(summary["recovery_point"] in p for p in points):
        problems.append(
            f"{len(points)} new points after the kill and the rerun, expected {len(at_kill) + 1} "
            f"({len(at_kill)} written by killed processes): {sorted(points)}"
        )
    code, verify, err = cli_json(["backup", "verify", set_url, "--deep", "--json"], env)
    if code != 0 or not verify or not verify["ok"] or verify["extra"]:
        problems.append(f"deep verify after the rerun: exit {code}, {verify or err[-500:]}")
    target = case / "restored"
    code, restored, err = cli_json(["backup", "restore", set_url, str(target), "--json", "--quiet"], env)
    if code != 0 or restored is None or restored["recovery_point"] != summary["recovery_point"]:
        problems.append(f"restoring the newest point: exit {code}, {restored or err[-500:]}")
    elif (diff := rclone_check(lab.lab_env, str(target), src)) is not None:
        problems.append(f"the newest point is not the source: {diff}")
    if into_s3 and (uploads := unfinished_uploads(lab.s3, lab.bucket, f"copy-{index}/set/")):
        notes["unfinished S3 multipart uploads left in the set"] = uploads
    return Outcome(trigger.describe(), landed, problems, notes)


def crash_state(lab: BackupLab, set_url: str, env: dict[str, str], has_points: bool) -> list[str]:
    """The set as a kill left it: whatever points it holds must hold everything they claim."""
    if not has_points:
        return []
    code, doc, err = cli_json(["backup", "verify", set_url, "--json"], env)
    if code != 0 or not (doc and doc["ok"]):
        return [f"right after a kill a point claims objects the set lacks: exit {code}, {doc or err[-500:]}"]
    return []


# -- restore ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RestoreSet:
    """A set whose newest point equals ``source`` (an incremental over a full: restores read both runs' data)."""

    set_url: str
    source: str
    objects: int
    env: dict[str, str]


def make_restore_set(lab: BackupLab, rng: random.Random) -> RestoreSet:
    case = lab.root / "restore-set"
    env = lab.env(case, DRCTL_BACKUP_KEY=new_key())
    src, set_url = f"s3://{lab.bucket}/restore/src/", f"az://{lab.container}/restore/set/"
    # Encrypted and compressed: every object is decrypted and decompressed on the way out, which is both the
    # path most worth killing and slow enough for kills to land mid-restore.
    objects = seed_source(lab, "restore/src/", rng, small=36, large=2)
    for mode in ("full", "incremental"):
        if mode == "incremental":
            mutate_source(lab, "restore/src/", objects, rng)
        args = ["backup", "copy", src, set_url, "--mode", mode, "--json", "--quiet", "--compress", "--encrypt"]
        code, _, err = cli_json(args, env)
        assert code == 0, f"making the restore set failed ({code}): {err[-500:]}"
    return RestoreSet(set_url, src, len(objects), env)


def target_objects(lab: BackupLab, target: str) -> Callable[[], int]:
    """Objects at their final names in the target: the restore's progress as a reader of the target sees it."""
    if target.startswith(("s3://", "az://")):
        return lambda: len(listed(lab, target))
    root = Path(target)
    return lambda: sum(1 for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")) if root.exists() else 0


def restore_case(lab: BackupLab, rset: RestoreSet, rng: random.Random, index: int) -> Outcome | None:
    case = lab.root / f"restore-{index}"
    kind = rng.choice(["dir", "dir", "s3", "az"])
    target = {
        "dir": str(case / "target"),
        "s3": f"s3://{lab.bucket}/restore/out-{index}/",
        "az": f"az://{lab.container}/restore/out-{index}/",
    }[kind]
    env = {**rset.env, "DRCTL_STATE_DIR": str(case / "state")}
    args = ["backup", "restore", rset.set_url, target, "--json", "--quiet"]
    if rng.random() < 0.3:
        trigger = Trigger("startup/choosing the point", 0, rng.uniform(0.0, 2.0))
    else:
        trigger = Trigger("mid-restore", rng.randint(1, rset.objects - 1), rng.uniform(0.0, 0.1))
    progress = target_objects(lab, target)
    killed = Spawned(args, env, case / "killed").kill_at(trigger, progress)
    if not killed.killed:
        return not_killed(killed, trigger)

    present = progress()
    landed = "before any object landed" if present == 0 else "mid-restore" if present < rset.objects else "all landed"
    problems = partial_target(lab, target, rset, present)
    notes: dict[str, int] = {}
    if rng.random() < 0.3:
        # The rerun is killed too; it rewrites every object, so the count at the target cannot show how far it
        # got: a random delay into it instead.
        again = Spawned(args, env, case / "rerun").kill_at(Trigger("the rerun", 0, rng.uniform(0.3, 2.5)), progress)
        if again.killed:
            notes["reruns killed too"] = 1
            problems += partial_target(lab, target, rset, progress())
    code, doc, err = cli_json(args, env)
    problems += traceback_in(err, "the rerun")
    if code != 0 or doc is None or doc["objects_restored"] != rset.objects:
        problems.append(f"the rerun exited {code}: {doc or err[-500:]}")
    elif (diff := rclone_check(lab.lab_env, target, rset.source)) is not None:
        problems.append(f"after the rerun the target is not exactly the point: {diff}")
    if kind == "dir" and (parts := part_files(Path(target))):
        notes["temporary files left in a directory target"] = len(parts)
    if kind == "s3":
        bucket, prefix = target.removeprefix("s3://").split("/", 1)
        if uploads := unfinished_uploads(lab.s3, bucket, prefix):
            notes["unfinished S3 multipart uploads left"] = uploads
    return Outcome(trigger.describe(), landed, problems, notes)


def partial_target(lab: BackupLab, target: str, rset: RestoreSet, present: int) -> list[str]:
    """The target as a kill left it: every object at its final name is complete and the point's."""
    if present and (diff := rclone_check(lab.lab_env, target, rset.source, one_way=True)) is not None:
        return [f"right after a kill an object at its final name is not the point's: {diff}"]
    return []
