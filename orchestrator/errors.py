"""The one exception tree of drctl, and the exit code each branch maps to.

Every SDK error is translated into this tree at the provider boundary (``raise ... from``), so callers can
retry precisely (only ``Transient``) and the CLI can print one line and exit with a code that names the kind
of failure. Messages are one line that names the problem and, where there is one, the fix. They never carry
a credential: providers build them from bucket, container and key names only.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes of ``drctl``, documented in the README."""

    OK = 0
    FAILED = 1
    INVALID_INPUT = 2
    LOCK_HELD = 3
    AUTH = 4
    NOT_FOUND = 5
    UNREACHABLE = 6
    INTEGRITY = 7
    PERMISSION = 8
    OBJECTIVE_MISSED = 9
    """A drill that ran to its end but missed its RTO or RPO, under ``--fail-on-missed-objectives``."""
    INTERRUPTED = 130


def one_line(text: str) -> str:
    """``text`` with line breaks and other control characters escaped: a message may quote a key or value
    from the user's input, and every error must stay one line (editors and CI annotations read it so)."""
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)


class DrError(Exception):
    """Base of every error drctl raises on purpose. ``str(err)`` is the one-line message shown to users."""

    exit_code: ExitCode = ExitCode.FAILED


class InvalidInput(DrError):
    """The user's input (a location, a runbook, an option) is malformed; nothing was touched."""

    exit_code = ExitCode.INVALID_INPUT


class LockHeld(DrError):
    """Another run holds the lock for the same target."""

    exit_code = ExitCode.LOCK_HELD


class IntegrityError(DrError):
    """Bytes did not match their recorded hash or size: corrupt, truncated or tampered data."""

    exit_code = ExitCode.INTEGRITY


class ProviderError(DrError):
    """A storage, compute or DNS provider failed. Raised only through one of the subclasses below."""


class Transient(ProviderError):
    """Worth retrying: throttling, timeouts, 5xx answers, connections refused or reset."""

    exit_code = ExitCode.UNREACHABLE


class Throttled(Transient):
    """The service refused for rate (EC2's RequestLimitExceeded): it will answer once its token bucket refills,
    so it earns more patience than a service that is down (``RetryPolicy.throttled_attempts``)."""


class ShortOfCapacity(Transient):
    """The cloud has fewer instances of the kind asked for than the request needs (EC2's
    InsufficientInstanceCapacity): a request that accepts fewer, or a later one, may get them."""


class Permanent(ProviderError):
    """Retrying will not help until something is changed by a person."""


class ServerSideUnavailable(Permanent):
    """The destination service cannot build the object from the source URL: it lacks the operation (Put Block
    From URL) or cannot read the source. Nothing was committed; the bytes must be streamed through drctl.

    ``code`` is the service's error code (``APINotImplemented``, ``CannotVerifyCopySource``...);
    ``source_status`` is the HTTP status the source gave the service, when the service reports it."""

    def __init__(self, message: str, *, code: str, source_status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.source_status = source_status


class NotFound(Permanent):
    """The bucket, container, object or resource does not exist."""

    exit_code = ExitCode.NOT_FOUND


class AuthError(Permanent):
    """Credentials are missing, malformed, expired or rejected."""

    exit_code = ExitCode.AUTH


class PermissionDenied(Permanent):
    """The credentials are valid but not allowed to do this."""

    exit_code = ExitCode.PERMISSION


class WrongKey(DrError):
    """The key-encryption key given is missing, malformed, or not the one this backup set was made with."""

    exit_code = ExitCode.AUTH


class Cancelled(DrError):
    """A transfer stopped because its step timed out or its run was interrupted: what finished is journaled,
    nothing is sealed, and a rerun resumes."""

    exit_code = ExitCode.INTERRUPTED


class StateError(DrError):
    """drctl's own local state (journal, locks) is unreadable or from a newer drctl."""


class LockLost(StateError):
    """The run's lease on a shared lock ran out or was taken over: the run stops recording and acting."""

    exit_code = ExitCode.LOCK_HELD
