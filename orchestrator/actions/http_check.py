"""``http.check``: GET a URL and expect a status (and optionally a text in the body, and values in its JSON),
retrying every ``interval`` until ``timeout``.

``expect_json`` asserts values of a JSON body by dotted path (``orders.count``, ``items.0.id``: integer parts
index lists): each assertion gives one of ``equals`` (the value equals this; ``true`` is not ``1``), ``min`` (the
value is a number at least this) or ``exists: true``; ``equals: null`` is refused (use ``exists``), because a
null is how an unset field comes back. A body that is not JSON, or a path that is missing, fails
naming the path; the ``checked`` output counts the assertions that passed.

Idempotent: it only sends GET requests, which change nothing on a well-behaved server.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from datetime import timedelta
from typing import Any, Literal, Self

from pydantic import Field, JsonValue, StrictFloat, StrictInt, StrictStr, model_validator

from orchestrator.actions.base import ActionContext, ActionParams, ActionSpec, OutputValue, StepResult, Touch
from orchestrator.actions.polling import poll_until_passed
from orchestrator.runbook.fields import Duration, HttpUrlText, Strict, drctl_error

MISSING = object()


class JsonAssertion(Strict):
    """One value of the JSON body: at ``path`` (dotted, integer parts index lists), ``equals``, ``min`` or
    ``exists: true``."""

    context_phrase = "in an expect_json assertion"

    path: StrictStr = Field(min_length=1)
    equals: JsonValue = None
    min: StrictInt | StrictFloat | None = None
    exists: Literal[True] | None = None

    @model_validator(mode="after")
    def _one_expectation(self) -> Self:
        if any(part == "" for part in self.path.split(".")):
            raise drctl_error(f"{self.path!r} is not a dotted path, e.g. orders.count or items.0.id", key="path")
        # Unset and null are one: the executor re-validates resolved parameters with every field present.
        given = [k for k in ("equals", "min", "exists") if getattr(self, k) is not None]
        if len(given) != 1:
            which = " and ".join(given) if given else "none"
            raise drctl_error(f"assertion on {self.path!r} gives {which}: give one of equals, min or exists: true")
        return self

    def expectation(self) -> str:
        if self.equals is not None:
            return f"= {json.dumps(self.equals)}"
        if self.min is not None:
            return f">= {self.min}"
        return "present"


def lookup(document: object, path: str) -> object:
    """The value at a dotted ``path`` (integer parts index lists), or ``MISSING``."""
    current = document
    for part in path.split("."):
        if isinstance(current, dict):
            if part not in current:
                return MISSING
            current = current[part]
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return MISSING
    return current


def _same(value: object, expected: object) -> bool:
    """JSON equality: ``true`` is not ``1`` (as Python would have it), ``1`` is ``1.0``; at any depth."""
    if isinstance(value, bool) or isinstance(expected, bool):
        return isinstance(value, bool) and isinstance(expected, bool) and value == expected
    if isinstance(value, dict) and isinstance(expected, dict):
        return value.keys() == expected.keys() and all(_same(value[k], expected[k]) for k in value)
    if isinstance(value, list) and isinstance(expected, list):
        return len(value) == len(expected) and all(_same(a, b) for a, b in zip(value, expected, strict=True))
    if isinstance(value, int | float) and isinstance(expected, int | float):
        return value == expected
    return type(value) is type(expected) and value == expected


def assert_json(body: str, assertions: tuple[JsonAssertion, ...]) -> tuple[int, list[str]]:
    """How many assertions passed, and a reason for each that failed."""
    try:
        document: Any = json.loads(body)
    except ValueError:
        return 0, [f"the body is not JSON, so {', '.join(a.path for a in assertions)} cannot be checked"]
    passed, problems = 0, []
    for a in assertions:
        value = lookup(document, a.path)
        if value is MISSING:
            problems.append(f"{a.path} is missing from the JSON body")
            continue
        if a.equals is not None:
            ok = _same(value, a.equals)
        elif a.min is not None:
            ok = isinstance(value, int | float) and not isinstance(value, bool) and value >= a.min
        else:
            ok = True
        if ok:
            passed += 1
        else:
            problems.append(f"{a.path} is {json.dumps(value)[:200]}, expected {a.expectation()}")
    return passed, problems


class Params(ActionParams):
    """Without ``interval`` one request is made; with it, requests repeat until one passes or time is up."""

    url: HttpUrlText
    expect_status: StrictInt = Field(default=200, ge=100, le=599)
    expect_body: str | None = None
    expect_json: tuple[JsonAssertion, ...] = ()
    interval: Duration | None = None
    timeout: Duration = timedelta(seconds=30)


def _touches(p: Params) -> tuple[Touch, ...]:
    return (Touch("calls", f"GET {p.url} (expects {p.expect_status})"),)


def _probe(p: Params, limit: float) -> tuple[int | None, str, int]:
    """One GET: the status (None when nothing answered), why it did not pass ("" when it did), and how many
    ``expect_json`` assertions passed."""
    try:
        with urllib.request.urlopen(p.url, timeout=max(0.1, limit)) as response:  # noqa: S310 - http(s) only
            status, body = int(response.status), response.read(1 << 20).decode("utf-8", "replace")
    except urllib.error.HTTPError as err:
        status, body = err.code, ""
    except (OSError, ValueError) as err:
        return None, f"no answer ({type(err).__name__})", 0
    if status != p.expect_status:
        return status, f"answered {status}, expected {p.expect_status}", 0
    if p.expect_body is not None and p.expect_body not in body:
        return status, f"answered {status} without the expected text in the body", 0
    if p.expect_json:
        checked, problems = assert_json(body, p.expect_json)
        if problems:
            return status, f"answered {status}, but {'; '.join(problems)}", checked
        return status, "", checked
    return status, "", 0


def run(p: Params, ctx: ActionContext) -> StepResult:
    """GET until the answer passes, every ``interval`` up to ``timeout`` (one request without ``interval``).
    A check that never passes fails with the last reason, not retryable: the polling already was the retry."""
    started = time.monotonic()

    def attempt(left: float) -> tuple[dict[str, OutputValue], str]:
        status, problem, checked = _probe(p, left)
        elapsed_ms = int((time.monotonic() - started) * 1000)
        outputs: dict[str, OutputValue] = {"status": status or 0, "elapsed_ms": elapsed_ms, "checked": checked}
        return outputs, f"GET {p.url}: {problem}" if problem else ""

    return poll_until_passed(ctx, p.interval, p.timeout, attempt)


SPEC = ActionSpec(
    name="http.check",
    params=Params,
    description="GET a URL until it answers with the expected status (and body text, and JSON values)",
    touches=_touches,
    idempotent=True,
    outputs=frozenset({"status", "elapsed_ms", "checked"}),
    run=run,
)
