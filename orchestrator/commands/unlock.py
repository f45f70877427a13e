"""``drctl unlock RUN_ID``: remove the run lock a crashed run left, as ``terraform force-unlock LOCK_ID`` and
``pulumi cancel`` do. Only the lock that run holds is removed: naming the run, not the lock, means a lock that
has since passed to another run is never broken by mistake. Exit codes: 0 removed, 3 the run still runs on
this host, 5 the run holds no lock there.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from orchestrator.backup.journal import state_dir
from orchestrator.commands.run import lock_ttl, shared_locks
from orchestrator.engine.lock import LockHolder, locks_path, unlock_local
from orchestrator.engine.s3_lease import S3Lease
from orchestrator.errors import NotFound


def _unlock_shared(lock_url: str, run_id: str) -> list[tuple[str, LockHolder]]:
    from botocore.exceptions import BotoCoreError, ClientError

    from orchestrator.providers.s3 import translate_s3_error

    client, bucket, prefix = shared_locks(lock_url)
    removed: list[tuple[str, LockHolder]] = []
    try:
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        keys = [o["Key"] for page in pages for o in page.get("Contents", [])]
    except (ClientError, BotoCoreError) as exc:
        raise translate_s3_error(exc, f"the locks in s3://{bucket}/{prefix}", str(client.meta.endpoint_url)) from exc
    ttl = lock_ttl(dict(os.environ))
    for key in keys:
        lease = S3Lease(client, bucket, key, ttl_s=ttl)
        holder = lease.unlock(run_id)
        if holder is not None:
            removed.append((lease.name, holder))
    return removed


def _cmd_unlock(args: argparse.Namespace) -> int:
    if args.lock_url:
        removed = _unlock_shared(args.lock_url, args.run_id)
        where = args.lock_url
    else:
        removed = unlock_local(locks_path(state_dir(dict(os.environ))), args.run_id)
        where = "this machine's state directory"
    if not removed:
        raise NotFound(
            f"run {args.run_id} holds no lock in {where}; check the run id (drctl status) and, for a shared lock, "
            "the --lock-url it ran with"
        )
    for name, holder in removed:
        print(f"removed {name}, held by {holder.describe()}")
    return 0


def register(sub: Any) -> None:
    unlock = sub.add_parser("unlock", help="remove the run lock a crashed run left (only that run's)")
    unlock.add_argument("run_id")
    unlock.add_argument("--lock-url", metavar="S3_URL", help="the shared lock location the run used (s3://...)")
    unlock.set_defaults(handler=_cmd_unlock)
