"""Where ``drctl protect`` learns that the source changed.

- ``SqsEvents``: S3 event notifications (ObjectCreated, ObjectRemoved) delivered to an SQS queue. A message
  stays in the queue until the point that covers it is sealed (``ack``), so a crash loses nothing: the
  messages come back after their visibility timeout, and a restart starts with a full listing anyway.
- ``Polling``: no events; each point is a listing with a content diff (Azure Blob, local directories, and S3
  without a queue). Azure's change feed and Event Grid have no emulator, so they are not used.

Either way the point itself is an ordinary incremental copy, whose listing is the truth; events only say
*when* to take one, and how old the oldest change waiting for it is.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import unquote_plus

from orchestrator.errors import InvalidInput, PermissionDenied, Transient
from orchestrator.permissions import Grant, Scope

RECEIVE_WAIT_S = 20
"""SQS long polling's longest wait: one request per 20 s when nothing happens."""
EVENTS = ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]

IAM_GRANTS = (
    Grant(
        Scope.BACKUP_BUCKET,
        ("s3:GetBucketNotification", "s3:PutBucketNotification"),
        ("s3:GetBucketNotificationConfiguration", "s3:PutBucketNotificationConfiguration"),
    ),
    Grant(
        Scope.EVENT_QUEUE,
        (
            "sqs:CreateQueue",
            "sqs:GetQueueUrl",
            "sqs:GetQueueAttributes",
            "sqs:SetQueueAttributes",
            "sqs:ReceiveMessage",
            "sqs:DeleteMessage",
        ),
        (
            "sqs:CreateQueue",
            "sqs:GetQueueUrl",
            "sqs:GetQueueAttributes",
            "sqs:SetQueueAttributes",
            "sqs:ReceiveMessage",
            "sqs:DeleteMessageBatch",
        ),
    ),
)
"""What ``drctl protect`` calls to follow a bucket's changes (see ``orchestrator.permissions``)."""


@dataclass(frozen=True)
class Pending:
    message_id: str
    receipt: str
    changed_at: datetime
    """The event's own time (``eventTime``): when the source changed, not when drctl heard of it."""


class ChangeSource(Protocol):
    def wait(self, seconds: float) -> None:
        """Wait at most ``seconds`` for news of a change (returns early when some arrives)."""
        ...

    def oldest_pending(self) -> datetime | None:
        """When the oldest change drctl knows of but no sealed point covers yet happened; None if none."""
        ...

    def covered_now(self) -> object:
        """A mark taken just before a point's listing starts: what it will cover."""
        ...

    def ack(self, mark: object) -> int:
        """The point taken after ``mark`` is sealed: forget (delete) what it covers; returns how many."""
        ...


class Polling:
    """No change feed: nothing to wait for but time, and no event to acknowledge."""

    def __init__(self, stop: threading.Event) -> None:
        self._stop = stop

    def wait(self, seconds: float) -> None:
        self._stop.wait(max(0.0, seconds))

    def oldest_pending(self) -> datetime | None:
        return None

    def covered_now(self) -> object:
        return None

    def ack(self, mark: object) -> int:
        del mark
        return 0


class SqsEvents:
    """S3 events for one bucket and prefix, read from an SQS queue with ``client`` (botocore, retries off)."""

    def __init__(self, client: Any, queue_url: str, bucket: str, prefix: str, visibility_s: int) -> None:
        self._client = client
        self._queue = queue_url
        self._bucket = bucket
        self._prefix = prefix
        self._visibility = max(30, min(visibility_s, 43_200))
        self._pending: dict[str, Pending] = {}
        self._ignored: list[str] = []

    def wait(self, seconds: float) -> None:
        # Whole seconds only; rounding up keeps a short wait from turning into a loop of empty receives.
        wait = int(min(RECEIVE_WAIT_S, max(1, math.ceil(seconds))))
        answer = _call(
            "receive from the queue",
            lambda: self._client.receive_message(
                QueueUrl=self._queue, MaxNumberOfMessages=10, WaitTimeSeconds=wait, VisibilityTimeout=self._visibility
            ),
        )
        for message in answer.get("Messages", []):
            changed = self._changed_at(str(message.get("Body", "")))
            message_id, receipt = str(message["MessageId"]), str(message["ReceiptHandle"])
            if changed is None:
                self._ignored.append(receipt)  # a test event, or another prefix's: nothing to cover
            else:
                # A message seen again (its visibility ran out during a long copy) keeps its first time but
                # takes the new receipt: only the newest one can delete it.
                first = self._pending.get(message_id)
                self._pending[message_id] = Pending(message_id, receipt, first.changed_at if first else changed)
        if self._ignored:
            self._delete(self._ignored)
            self._ignored = []

    def _changed_at(self, body: str) -> datetime | None:
        try:
            doc = json.loads(body)
        except ValueError:
            return None
        times = []
        for record in doc.get("Records", []) if isinstance(doc, Mapping) else []:
            s3 = record.get("s3", {})
            key = unquote_plus(str(s3.get("object", {}).get("key", "")))
            if s3.get("bucket", {}).get("name") == self._bucket and key.startswith(self._prefix):
                times.append(_parse_time(str(record.get("eventTime", ""))))
        return min(times) if times else None

    def oldest_pending(self) -> datetime | None:
        return min((p.changed_at for p in self._pending.values()), default=None)

    def covered_now(self) -> object:
        return dict(self._pending)

    def ack(self, mark: object) -> int:
        covered = mark if isinstance(mark, dict) else {}
        receipts = [self._pending.pop(mid).receipt for mid in covered if mid in self._pending]
        self._delete(receipts)
        return len(receipts)

    def _delete(self, receipts: list[str]) -> None:
        for start in range(0, len(receipts), 10):
            batch = [{"Id": str(i), "ReceiptHandle": r} for i, r in enumerate(receipts[start : start + 10])]
            # A message that could not be deleted comes back and is covered by a later point: no loss.
            _call(
                "delete from the queue",
                lambda b=batch: self._client.delete_message_batch(QueueUrl=self._queue, Entries=b),
            )


def setup_notifications(s3: Any, sqs: Any, bucket: str, prefix: str, queue: str) -> str:
    """Create ``queue`` if missing, let ``bucket`` send to it, and add a notification for ``prefix`` to the
    bucket's configuration (keeping its other notifications). Returns the queue URL."""
    url = str(_call("create the queue", lambda: sqs.create_queue(QueueName=queue))["QueueUrl"])
    arn = _call("read the queue's ARN", lambda: sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"]))
    queue_arn = str(arn["Attributes"]["QueueArn"])
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "drctl-protect-s3-events",
                "Effect": "Allow",
                "Principal": {"Service": "s3.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": f"arn:aws:s3:::{bucket}"}},
            }
        ],
    }
    _call(
        "set the queue's policy",
        lambda: sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(policy)}),
    )
    current = _call("read the bucket's notifications", lambda: s3.get_bucket_notification_configuration(Bucket=bucket))
    config = {k: v for k, v in current.items() if k.endswith("Configurations") or k == "EventBridgeConfiguration"}
    mine = f"drctl-protect-{queue}"
    queues = [q for q in config.get("QueueConfigurations", []) if q.get("Id") != mine]
    rule: dict[str, Any] = {"Id": mine, "QueueArn": queue_arn, "Events": EVENTS}
    if prefix:
        rule["Filter"] = {"Key": {"FilterRules": [{"Name": "prefix", "Value": prefix}]}}
    config["QueueConfigurations"] = [*queues, rule]
    _call(
        "set the bucket's notifications",
        lambda: s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=config),
    )
    return url


def queue_url(sqs: Any, queue: str) -> str:
    """The URL of ``queue`` (a name or a URL)."""
    if queue.startswith(("https://", "http://")):
        return queue
    return str(_call(f"find queue {queue}", lambda: sqs.get_queue_url(QueueName=queue))["QueueUrl"])


def _call(what: str, fn: Any) -> Any:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return fn()
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if "NonExistentQueue" in code or code == "QueueDoesNotExist":
            raise InvalidInput(
                f"cannot {what}: the queue does not exist; create it or add --setup-notifications"
            ) from exc
        if code in ("AccessDenied", "AccessDeniedException"):
            raise PermissionDenied(f"cannot {what}: access denied; grant the SQS/S3 permission") from exc
        raise Transient(f"cannot {what} ({code or 'error'}); retrying") from exc
    except BotoCoreError as exc:
        raise Transient(f"cannot {what} ({type(exc).__name__}); check the endpoint and the network") from exc


def _parse_time(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return datetime.now(UTC)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
