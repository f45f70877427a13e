"""``db.check``: run named SQL checks against a PostgreSQL database and report the values found, retrying every
``interval`` until all pass or ``timeout`` is up.

Each check is one read-only query that returns one value, and one expectation: ``min`` (the value is a number
at least this), ``equals`` (the value equals this; text compares with the value's text form) or ``not_null``.
Queries run in a ``READ ONLY`` transaction each, under a ``statement_timeout``, as prepared statements (which
refuses several statements in one check). One check may be marked ``data_timestamp: true``: its value must be
a ``timestamptz`` (e.g. ``SELECT max(committed_at) FROM orders``), the newest committed data found, and it is
output in UTC so the report can measure RPO from the data itself.

Idempotent: it only reads, in read-only transactions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Self

import psycopg
from pydantic import Field, StrictBool, StrictFloat, StrictInt, StrictStr, model_validator

from orchestrator.actions.base import ActionContext, ActionSpec, OutputValue, StepResult, Touch
from orchestrator.actions.pg_target import PgTarget, PgTargetParams, connect, translate
from orchestrator.actions.polling import poll_until_passed
from orchestrator.errors import Transient
from orchestrator.runbook.fields import Duration, Name, Strict, drctl_error

Number = StrictInt | StrictFloat
Scalar = StrictBool | StrictInt | StrictFloat | StrictStr


class Check(Strict):
    """One named query and what its value must be."""

    context_phrase = "in a check"

    name: Name
    sql: StrictStr = Field(min_length=1)
    min: Number | None = None
    equals: Scalar | None = None
    not_null: StrictBool = False
    data_timestamp: StrictBool = False

    @model_validator(mode="after")
    def _one_expectation(self) -> Self:
        given = [k for k, set_ in (("min", self.min is not None), ("equals", self.equals is not None)) if set_]
        given += ["not_null"] if self.not_null else []
        if len(given) > 1:
            raise drctl_error(f"check {self.name!r} gives {' and '.join(given)}: give one expectation")
        if not given and not self.data_timestamp:
            raise drctl_error(f"check {self.name!r} needs an expectation: min, equals or not_null: true")
        if self.data_timestamp and self.min is not None:
            raise drctl_error(
                f"check {self.name!r} is a data_timestamp (a time) and min compares numbers: use not_null: true"
            )
        return self

    def expectation(self) -> str:
        if self.min is not None:
            return f">= {self.min}"
        if self.equals is not None:
            return f"= {_text(self.equals)}"
        return "a timestamptz" if self.data_timestamp else "not null"


class Params(PgTargetParams):
    """Without ``interval`` the checks run once; with it, they repeat until all pass or time is up."""

    checks: tuple[Check, ...] = Field(min_length=1)
    interval: Duration | None = None
    timeout: Duration = timedelta(seconds=30)

    @model_validator(mode="after")
    def _names_and_timestamp(self) -> Self:
        names = [c.name for c in self.checks]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise drctl_error(f"check name {twice[0]!r} is used twice: names key the 'values' output", key="checks")
        marked = [c.name for c in self.checks if c.data_timestamp]
        if len(marked) > 1:
            raise drctl_error(
                f"checks {', '.join(map(repr, marked))} are all marked data_timestamp: mark at most one", key="checks"
            )
        return self


def _touches(p: Params) -> tuple[Touch, ...]:
    return (Touch("reads", f"{p.dsn} ({len(p.checks)} read-only check{'s' if len(p.checks) != 1 else ''})"),)


# -- values --------------------------------------------------------------------------------------------------


def _text(value: object) -> str:
    """A value as text: booleans as ``true``/``false``, times in ISO 8601, everything else as Python prints it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _number(value: object) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return None
    return Decimal(str(value)) if isinstance(value, float) else Decimal(value)


def _equal(value: object, expected: bool | int | float | str) -> bool:
    if isinstance(expected, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(expected, bool) and value == expected
    if isinstance(expected, int | float) and (number := _number(value)) is not None:
        return number == Decimal(str(expected))
    return _text(value) == _text(expected)


def utc_text(value: datetime) -> str:
    """``2026-12-03T15:04:05.123456+00:00``: always UTC, always microseconds, so outputs compare as text."""
    return value.astimezone(UTC).isoformat(timespec="microseconds")


@dataclass(frozen=True)
class Outcome:
    name: str
    value: object
    problem: str
    """Why the check failed, "" when it passed."""

    @property
    def shown(self) -> str | None:
        return None if self.value is None else _text(self.value)


def judge(check: Check, value: object) -> str:
    """ "" when ``value`` meets the check's expectation, else why not."""
    if check.data_timestamp:
        if value is None:
            return "is null, expected a timestamptz"
        if not isinstance(value, datetime):
            return f"is a {type(value).__name__}, expected a timestamptz"
        if value.tzinfo is None:
            return "is a timestamp without time zone: cast it to timestamptz (AT TIME ZONE 'UTC')"
    if check.min is not None:
        number = _number(value)
        if number is None:
            return f"is {'null' if value is None else 'not a number'}, expected >= {check.min}"
        return "" if number >= Decimal(str(check.min)) else f"expected >= {check.min}"
    if check.equals is not None:
        return "" if value is not None and _equal(value, check.equals) else f"expected = {_text(check.equals)}"
    if check.not_null and value is None:
        return "expected not null"
    return ""


# -- one round of checks -------------------------------------------------------------------------------------


def _one(conn: psycopg.Connection[Any], check: Check, p: Params, target: PgTarget, pw: str | None) -> Outcome:
    sql = check.sql.strip().rstrip(";").strip()
    try:
        with conn.transaction():  # BEGIN READ ONLY: the connection is read-only
            cur = conn.execute(sql, prepare=True)  # a prepared statement holds exactly one statement
            if cur.description is None:
                return Outcome(check.name, None, "returns no rows: a check is one query that returns one value")
            if len(cur.description) != 1:
                return Outcome(check.name, None, f"returns {len(cur.description)} columns; a check returns one value")
            rows = cur.fetchmany(2)
    except psycopg.Error as err:
        state = err.sqlstate or ""
        if conn.broken or state.startswith(("08", "57P0")):
            raise translate(err, target, p.password_source(), pw, lost=conn.broken) from None
        if state == "57014":  # query_canceled: the statement_timeout
            return Outcome(check.name, None, "was cancelled by the statement timeout (timeout)")
        detail = (str(err).strip().splitlines() or ["no detail"])[0]
        return Outcome(check.name, None, f"failed: {detail}")
    if len(rows) > 1:
        return Outcome(check.name, None, "returns more than one row; a check returns one value")
    value = rows[0][0] if rows else None
    return Outcome(check.name, value, judge(check, value))


def run_checks(p: Params, target: PgTarget, password: str | None, budget_s: float) -> list[Outcome]:
    """Every check once, on one connection; connection failures raise (``Transient`` when worth another try)."""
    statement_ms = int(min(max(budget_s, 0.1), 300.0) * 1000)
    with connect(
        target, password, p.password_source(), timeout_s=budget_s, read_only=True, statement_timeout_ms=statement_ms
    ) as conn:
        return [_one(conn, check, p, target, password) for check in p.checks]


def outputs_of(p: Params, outcomes: list[Outcome]) -> dict[str, OutputValue]:
    failed = sum(1 for o in outcomes if o.problem)
    out: dict[str, OutputValue] = {
        "values": json.dumps({o.name: o.shown for o in outcomes}, separators=(",", ":"), ensure_ascii=False),
        "passed": len(outcomes) - failed,
        "failed": failed,
    }
    for check, outcome in zip(p.checks, outcomes, strict=True):
        if check.data_timestamp and not outcome.problem and isinstance(outcome.value, datetime):
            out["data_timestamp"] = utc_text(outcome.value)
    return out


def describe_failures(p: Params, target: PgTarget, outcomes: list[Outcome]) -> str:
    failing = [(c, o) for c, o in zip(p.checks, outcomes, strict=True) if o.problem]
    parts = []
    for check, outcome in failing:
        value = "null" if outcome.value is None else _text(outcome.value)
        if outcome.problem.startswith(("expected", "is ")):
            parts.append(f"{check.name} = {value} ({outcome.problem})")
        else:
            parts.append(f"{check.name} {outcome.problem} (expected {check.expectation()})")
    return f"{len(failing)} of {len(outcomes)} checks failed on {target.url}: {'; '.join(parts)}"


def run(p: Params, ctx: ActionContext) -> StepResult:
    """Run the checks until all pass, every ``interval`` up to ``timeout`` (once without ``interval``). A
    database that cannot be reached is retried like a failing check while polling; without ``interval`` it is
    raised as ``Transient`` for the step's own retry. Wrong credentials fail at once."""
    target = p.target()
    password = p.password(ctx.env)

    def attempt(left: float) -> tuple[dict[str, OutputValue], str]:
        try:
            outcomes = run_checks(p, target, password, left)
        except Transient as err:
            if p.interval is None:
                raise
            return {"values": "{}", "passed": 0, "failed": len(p.checks)}, str(err)
        outputs = outputs_of(p, outcomes)
        return outputs, describe_failures(p, target, outcomes) if outputs["failed"] else ""

    return poll_until_passed(ctx, p.interval, p.timeout, attempt)


SPEC = ActionSpec(
    name="db.check",
    params=Params,
    description="run named read-only SQL checks against a PostgreSQL database until their values pass",
    touches=_touches,
    idempotent=True,
    outputs=frozenset({"values", "passed", "failed", "data_timestamp"}),
    run=run,
)
