"""Checks that do not take drctl's word for anything: rclone compares data byte for byte, boto3 reads EC2 and
Route53 as they are, and drctl's own journals are read (read-only) only to learn where a kill landed."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.bench.run import rclone_env

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_route53 import Route53Client

RCLONE = str(Path(sys.executable).parent / "rclone")
LIVE = ["pending", "running", "stopping", "stopped"]
# What drctl's directory store keeps beside the objects: a write's hidden temporary file (its module says a
# crash may leave one, never under a real name) and the metadata sidecar tree. Neither is an object.
LOCAL_EXCLUDES = ("--exclude", ".*.drctl-part", "--exclude", "/.drctl-meta/**")


def rclone_remote(location: str) -> str:
    """drctl's ``s3://b/p/``, ``az://c/p/`` or a directory as the lab's rclone remotes name them."""
    if location.startswith("s3://"):
        return "labs3:" + location.removeprefix("s3://").rstrip("/")
    if location.startswith("az://"):
        return "labaz:" + location.removeprefix("az://").rstrip("/")
    return location


def rclone_check(lab_env: Mapping[str, str], a: str, b: str, *, one_way: bool = False) -> str | None:
    """None when every object of ``a`` is in ``b`` with the same bytes (and, unless ``one_way``, nothing more
    is in ``b``); else rclone's own account of the differences. ``--download`` compares the bytes themselves,
    so no hash either side computed (a multipart ETag, a missing MD5) is taken on trust."""
    args = [RCLONE, "check", rclone_remote(a), rclone_remote(b), "--download", "--config", "/dev/null", "-q"]
    args += [*LOCAL_EXCLUDES, *(["--one-way"] if one_way else [])]
    done = subprocess.run(args, env=rclone_env(dict(lab_env)), capture_output=True, text=True, timeout=300, check=False)
    if done.returncode == 0:
        return None
    return f"rclone check {a} {b}{' --one-way' if one_way else ''} exited {done.returncode}: " + " | ".join(
        done.stderr.strip().splitlines()[-6:]
    )


def part_files(root: Path) -> list[Path]:
    """drctl's temporary files left under a directory target (hidden, never listed as objects)."""
    return sorted(root.rglob(".*.drctl-part")) if root.exists() else []


def unfinished_uploads(s3: Any, bucket: str, prefix: str) -> int:
    """S3 multipart uploads begun and never completed or aborted under ``prefix`` (invisible, but billed)."""
    return len(s3.list_multipart_uploads(Bucket=bucket, Prefix=prefix).get("Uploads", []))


# -- EC2 and Route53 ----------------------------------------------------------------------------------------


def instances(ec2: EC2Client, filters: Mapping[str, list[str]], live_only: bool = True) -> dict[str, dict[str, Any]]:
    """Instances matching every filter (``tag:KEY``, ``tag-key``...), by id; live ones unless told otherwise."""
    wanted: Any = [{"Name": k, "Values": v} for k, v in filters.items()]
    if live_only:
        wanted.insert(0, {"Name": "instance-state-name", "Values": LIVE})  # first: cheap for the emulator
    found: dict[str, dict[str, Any]] = {}
    for page in ec2.get_paginator("describe_instances").paginate(Filters=wanted):
        for reservation in page["Reservations"]:
            for inst in reservation["Instances"]:
                found[inst["InstanceId"]] = dict(inst)
    return found


def tags_of(instance: Mapping[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in instance.get("Tags", [])}


def record_values(r53: Route53Client, zone: str, name: str, type_: str = "A") -> list[str] | None:
    """The values of the simple record ``name``/``type_`` (None when there is none), read from Route53."""
    fqdn = name.rstrip(".") + "."
    answer = r53.list_resource_record_sets(HostedZoneId=zone, StartRecordName=fqdn, StartRecordType=type_)  # type: ignore[arg-type]
    for rs in answer["ResourceRecordSets"]:
        if rs["Name"] == fqdn and rs["Type"] == type_ and "SetIdentifier" not in rs:
            return sorted(r["Value"] for r in rs.get("ResourceRecords", []))
    return None


def record_sets(r53: Route53Client, zone: str, name: str) -> list[tuple[str, str, str, tuple[str, ...]]]:
    """Every record set of ``name`` (failover pairs too), as comparable tuples."""
    fqdn = name.rstrip(".") + "."
    answer = r53.list_resource_record_sets(HostedZoneId=zone)
    return sorted(
        (
            rs["Type"],
            str(rs.get("SetIdentifier", "")),
            str(rs.get("Failover", "")),
            tuple(sorted(r["Value"] for r in rs.get("ResourceRecords", []))),
        )
        for rs in answer["ResourceRecordSets"]
        if rs["Name"] == fqdn
    )


# -- drctl's journals, read-only, to learn where a kill landed ------------------------------------------------


def query(db: Path, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Rows of ``sql`` from the SQLite file ``db``, opened read-only; none while the file does not exist or is
    not yet readable (the process under test creates it)."""
    if not db.exists():
        return []
    try:
        conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True, timeout=5)
        try:
            return list(conn.execute(sql, args).fetchall())
        finally:
            conn.close()
    except sqlite3.Error:
        return []
