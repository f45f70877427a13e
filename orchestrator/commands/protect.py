"""``drctl protect SOURCE SET --rpo DURATION``: a resident service that keeps SET within DURATION of SOURCE.

``--plan`` prints the schedule it would use and why, and refuses (exit 2) an objective it cannot meet at
the speed the set's recent points show. The service runs until SIGTERM or Ctrl-C (exit 0; a point in
flight is left unsealed and resumed at the next start). One protect per set on a host: it holds the set's
lock, so ``drctl backup copy`` into the same set waits its turn (exit 3).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

from tenacity import Retrying, retry_if_exception_type, wait_exponential_jitter

from orchestrator.backup.copy import CopyOptions, plan_copy
from orchestrator.backup.journal import CopyJournal, state_dir
from orchestrator.backup.pipeline import parse_rate
from orchestrator.backup.sets import BackupSet, open_or_create_set
from orchestrator.commands.backup import (
    filter_options,
    filters_of,
    key_options,
    key_source_of,
    new_set_of,
    new_set_options,
    set_lock,
    store_factory,
)
from orchestrator.commands.common import add_azure_account
from orchestrator.durations import parse_duration
from orchestrator.errors import InvalidInput, Transient
from orchestrator.protect.changes import ChangeSource, Polling, SqsEvents, queue_url, setup_notifications
from orchestrator.protect.schedule import MIN_RPO_S, copy_estimate, derive
from orchestrator.protect.service import ProtectConfig, ProtectService
from orchestrator.providers.aws_clients import aws_client
from orchestrator.providers.base import ObjectStore

T = TypeVar("T")


def _say(text: str) -> None:
    print(f"drctl protect: {text}", file=sys.stderr, flush=True)


def _seconds(option: str, text: str) -> float:
    try:
        return parse_duration(text).total_seconds()
    except InvalidInput as err:
        raise InvalidInput(f"{option}: {err}") from err


def _config(args: argparse.Namespace) -> ProtectConfig:
    if args.transfers < 1:
        raise InvalidInput("--transfers must be at least 1")
    reconcile = _seconds("--reconcile-every", args.reconcile_every) if args.reconcile_every else None
    return ProtectConfig(
        rpo_s=_seconds("--rpo", args.rpo),
        event_driven=args.sqs_queue is not None,
        filters=filters_of(args),
        transfers=args.transfers,
        bwlimit=parse_rate(args.bwlimit) if args.bwlimit else None,
        reconcile_s=reconcile,
    )


def _s3_parts(source: ObjectStore, option: str) -> tuple[str, str]:
    bucket, prefix = getattr(source, "bucket", None), getattr(source, "prefix", None)
    if not source.url.startswith("s3://") or bucket is None or prefix is None:
        raise InvalidInput(f"{option} needs an s3:// source (S3 sends the events); other sources are listed")
    return str(bucket), str(prefix)


def _changes(args: argparse.Namespace, source: ObjectStore, rpo_s: float, stop: threading.Event) -> ChangeSource:
    if args.sqs_queue is None:
        if args.setup_notifications:
            raise InvalidInput("--setup-notifications needs --sqs-queue NAME (the queue S3 should send events to)")
        return Polling(stop)
    bucket, prefix = _s3_parts(source, "--sqs-queue")
    env = dict(os.environ)
    sqs = aws_client(env, "sqs")
    if args.setup_notifications:
        url = setup_notifications(aws_client(env, "s3"), sqs, bucket, prefix, args.sqs_queue)
        _say(f"S3 events of s3://{bucket}/{prefix} go to queue {args.sqs_queue}")
    else:
        url = queue_url(sqs, args.sqs_queue)
    # A message is hidden while its point is taken; past this it comes back and is covered by a later point.
    return SqsEvents(sqs, url, bucket, prefix, visibility_s=int(max(300, rpo_s * 2)))


def _cmd_plan(args: argparse.Namespace, config: ProtectConfig) -> int:
    factory = store_factory(args)
    source = factory.open(args.source)
    bset = open_or_create_set(
        factory.open(args.set), key_source_of(args), dict(os.environ), new_set_of(args), datetime.now(UTC), create=False
    )
    mine = [p for p in bset.points() if p.source == source.url] if bset is not None else []
    estimate = copy_estimate([(p.created - p.started).total_seconds() for p in mine[-5:]])
    if estimate is None:
        # No point of this source yet: a dry listing of it is the least a point costs.
        started = time.monotonic()
        plan_copy(source, bset, CopyOptions("incremental" if mine else "full", filters_of(args)))
        listing = time.monotonic() - started
        _say(f"no point of {source.url} in the set yet; a dry listing took {listing:.1f}s")
        estimate, origin = max(listing * 2, listing + 1.0), "a dry listing (no point of this source yet)"
    else:
        origin = None
    schedule = derive(config.rpo_s, config.event_driven, estimate, config.reconcile_s, origin)
    for line in schedule.describe():
        print(line)
    if mine:
        span = (mine[-1].created - mine[0].created).total_seconds()
        changed = sum(p.totals.bytes_transferred for p in mine[1:])
        if span > 0:
            print(f"change rate: about {changed / span * 60 / 2**20:.2f} MiB/min over the last {len(mine)} points")
    if not schedule.feasible:
        raise InvalidInput(f"the objective cannot be met: {schedule.why}")
    return 0


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGTERM (systemd, Kubernetes, docker stop) and Ctrl-C end the service between or inside points."""

    def handle(signum: int, frame: object) -> None:
        del frame
        if not stop.is_set():
            _say(f"{signal.Signals(signum).name}: stopping")
        stop.set()

    previous = {s: signal.signal(s, handle) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _cmd_protect(args: argparse.Namespace) -> int:
    config = _config(args)
    if config.rpo_s < MIN_RPO_S:
        raise InvalidInput(f"--rpo {args.rpo}: {derive(config.rpo_s, config.event_driven, None).why}")
    webhook = args.alert_webhook or os.environ.get("DRCTL_ALERT_WEBHOOK") or None
    if webhook is not None and not webhook.startswith(("https://", "http://")):
        raise InvalidInput("--alert-webhook must be an http(s) URL (a Slack-compatible webhook)")
    if args.plan:
        return _cmd_plan(args, config)
    env = dict(os.environ)
    factory = store_factory(args)
    source = factory.open(args.source)
    stop = threading.Event()
    with _stop_on_signals(stop):

        def start() -> tuple[ChangeSource, BackupSet]:
            source.ensure_root()
            changes = _changes(args, source, config.rpo_s, stop)
            bset = open_or_create_set(
                factory.open(args.set), key_source_of(args), env, new_set_of(args), datetime.now(UTC)
            )
            assert bset is not None  # create=True always returns a set
            return changes, bset

        started = _when_reachable(stop, start)
        if started is None:
            return 0
        changes, bset = started
        with set_lock(bset.url, "protect"):
            journal = CopyJournal(state_dir(env) / "journal.sqlite")
            try:
                service = _when_reachable(
                    stop, lambda: ProtectService(source, bset, changes, journal, config, stop, _say, webhook)
                )
                if service is not None:
                    _serve(service, args.metrics_addr)
            finally:
                journal.close()
    return 0


def _when_reachable(stop: threading.Event, step: Callable[[], T]) -> T | None:
    """``step``, tried again with back-off while a source, vault or queue cannot be reached, as the running
    service does: a supervisor that starts it before the network is up gets a service that waits. None if a
    stop came first. Other errors (bad input, credentials, permissions) end it at once."""
    retrying = Retrying(
        retry=retry_if_exception_type(Transient),
        wait=wait_exponential_jitter(initial=1.0, max=60.0, jitter=1.0),
        stop=lambda _: stop.is_set(),
        sleep=lambda seconds: _pause(stop, seconds),
        before_sleep=lambda state: _say(
            f"cannot start yet ({state.outcome.exception() if state.outcome else 'error'}); "
            f"retrying in {state.next_action.sleep if state.next_action else 0:.0f}s"
        ),
        reraise=True,
    )
    try:
        return retrying(step)
    except Transient:
        if stop.is_set():
            return None
        raise


def _pause(stop: threading.Event, seconds: float) -> None:
    stop.wait(seconds)  # a stop cuts the back-off short


def _serve(service: ProtectService, metrics_addr: str | None) -> None:
    for line in service.schedule.describe():
        _say(line)
    if not service.schedule.feasible:
        _say("the objective cannot be met at the measured speed; protecting anyway, the lag metric shows it")
    if metrics_addr:
        port = service.metrics.serve(metrics_addr)
        host = metrics_addr.rpartition(":")[0] or "127.0.0.1"
        _say(f"metrics on http://{host}:{port}/metrics")
    try:
        service.run()
    finally:
        service.metrics.close()


def register(sub: Any) -> None:
    protect = sub.add_parser(
        "protect", help="keep a backup set within its RPO of a source, continuously (a resident service)"
    )
    protect.add_argument("source")
    protect.add_argument("set")
    protect.add_argument("--rpo", required=True, help="the recovery point objective, e.g. 5m")
    protect.add_argument("--sqs-queue", metavar="NAME", help="S3 source: take S3 events from this SQS queue")
    protect.add_argument(
        "--setup-notifications",
        action="store_true",
        help="create the queue and add the bucket's event notification for the source's prefix",
    )
    protect.add_argument("--reconcile-every", metavar="DURATION", help="with events: a full listing this often (10m)")
    protect.add_argument("--metrics-addr", metavar="HOST:PORT", help="serve Prometheus metrics at /metrics")
    protect.add_argument("--alert-webhook", metavar="URL", help="lag alerts to this webhook (or DRCTL_ALERT_WEBHOOK)")
    protect.add_argument("--plan", action="store_true", help="print the schedule it would use, and why; then exit")
    protect.add_argument("--transfers", type=int, default=8, help="objects in flight at once (default 8)")
    protect.add_argument("--bwlimit", help="bandwidth limit, e.g. 20M (bytes per second)")
    new_set_options(protect)
    filter_options(protect)
    key_options(protect)
    add_azure_account(protect)
    protect.set_defaults(handler=_cmd_protect)
