"""Runbook fuzzing (issue #14): mutated and generated runbooks through ``drctl validate``.

The contract, for every file: exit 2 with every stderr line ``FILE:LINE:COL: message`` for the file as given
(and nothing on stdout), or, for a mutation that happens to leave the runbook valid, exit 0 with its one
``FILE: ok (...)`` line. Never a traceback, never another exit code, never a line without a position.

The bulk runs ``orchestrator.cli.main`` in-process (a process start costs more than the validation itself,
and the full scale is over ten thousand files); a sample runs as real processes, and must give byte for byte
what the in-process run gave, which is what lets the in-process figures stand for the command.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import re
import threading
import traceback
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator import cli
from orchestrator.actions.registry import REGISTRY
from orchestrator.errors import ExitCode
from tests.chaos.figures import record, scaled
from tests.chaos.runbook_mutations import (
    SEEDS,
    FuzzCase,
    Seed,
    generated_runbooks,
    minimal_runbook,
    mutated_runbooks,
)
from tests.support.cli import drctl, process_env

MUTATED = scaled(12_000, 400)
GENERATED = scaled(5_000, 200)
THROUGH_A_PROCESS = scaled(20, 3)

# Categories Python's default filters hide from a user's terminal; anything else would reach stderr.
_SILENT_WARNINGS = (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning)

# No health check is suppressed: generation is fast enough for all of them (measured), and the examples are
# small choice sequences even when the files are large (big values are built, not drawn).
FUZZ = settings(deadline=None, print_blob=True)


# -- running drctl validate ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    code: int
    out: str
    err: str
    crash: str | None = None
    """The traceback of an exception that escaped ``cli.main``: a real process would have printed it."""


def validate_in_process(path: Path, args: Sequence[str]) -> Outcome:
    """``drctl validate PATH ARGS`` through ``cli.main``, as close to a fresh process as one call can be."""
    out, err = io.StringIO(), io.StringIO()
    result: list[Outcome] = []
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level

    def call() -> None:
        try:
            code = cli.main(["validate", str(path), *args])
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except Exception:
            result.append(Outcome(1, out.getvalue(), err.getvalue(), traceback.format_exc()))
            return
        result.append(Outcome(int(code), out.getvalue(), err.getvalue()))

    try:
        with (
            contextlib.redirect_stdout(out),
            contextlib.redirect_stderr(err),
            warnings.catch_warnings(record=True) as caught,
        ):
            warnings.simplefilter("always")
            # A thread of its own starts with an empty Python stack, as a process does: under pytest and
            # hypothesis the stack is already some hundred frames deep, and a recursion limit would be hit
            # at a depth that a real `drctl validate` never reaches (or the reverse).
            worker = threading.Thread(target=call)
            worker.start()
            worker.join()
    finally:
        # configure_logging replaces the root logger's handlers; pytest's own must come back for later tests.
        root.handlers[:] = handlers
        root.setLevel(level)
    if not result:  # only a BaseException other than SystemExit gets here, and it ends a real process too
        return Outcome(1, out.getvalue(), err.getvalue(), "the validation ended without an exit code")
    outcome = result[0]
    shown = [w for w in caught if not issubclass(w.category, _SILENT_WARNINGS)]
    extra = "".join(f"{w.filename}:{w.lineno}: {w.category.__name__}: {w.message}\n" for w in shown)
    # A real stderr writes what UTF-8 cannot hold as backslash escapes; stdout is strict, so there it fails.
    err_text = (outcome.err + extra).encode("utf-8", "backslashreplace").decode("utf-8")
    try:
        outcome.out.encode("utf-8")
    except UnicodeEncodeError:
        return Outcome(1, outcome.out, err_text, outcome.crash or traceback.format_exc())
    return Outcome(outcome.code, outcome.out, err_text, outcome.crash)


# -- the contract ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    kind: str
    """What happened: refused (exit 2, every line positioned) or valid (exit 0), or else the breach: traceback,
    exit code, no position, output (stdout or stderr not as the contract says)."""
    why: str = ""

    @property
    def breach(self) -> bool:
        return self.kind not in ("refused", "valid")


_OK = re.compile(r"(?P<path>.+): ok \(\d+ steps?, \d+ tiers?\)\n")


def judge(outcome: Outcome, path: str) -> Verdict:
    if outcome.crash is not None or "Traceback (most recent call last)" in outcome.err:
        return Verdict("traceback", outcome.crash or outcome.err)
    if outcome.code == ExitCode.OK:
        match = _OK.fullmatch(outcome.out)
        if match is None or match["path"] != path or outcome.err:
            return Verdict("output", "exit 0 without exactly one 'FILE: ok (...)' line and an empty stderr")
        return Verdict("valid")
    if outcome.code != ExitCode.INVALID_INPUT:
        return Verdict("exit code", f"exit {outcome.code}, expected 0 or 2")
    # Split as the tools that read these lines do (editors, CI annotations): at "\n" only. str.splitlines would
    # also split at form feeds, \x1c-\x1e and \u2028, which a message may quote and a terminal shows inline.
    lines = outcome.err.removesuffix("\n").split("\n") if outcome.err else []
    if not lines:
        return Verdict("no position", "exit 2 with nothing on stderr")
    positioned = re.compile(rf"{re.escape(path)}:(\d+):(\d+): \S")
    for line in lines:
        match = positioned.match(line)
        if match is None or int(match[1]) < 1 or int(match[2]) < 1:
            return Verdict("no position", f"stderr line without {path}:LINE:COL: {line!r}")
    if outcome.out:
        return Verdict("output", f"exit 2 with output on stdout: {outcome.out!r}")
    return Verdict("refused")


# -- the tally -------------------------------------------------------------------------------------------------


@dataclass
class Tally:
    """The class's figures over this module's cases: each a different file and options (a breach that hypothesis
    runs again while shrinking counts again)."""

    refused: int = 0
    valid: int = 0
    tracebacks: int = 0
    other: int = 0
    by_origin: dict[str, int] = field(default_factory=dict)
    passed: set[bytes] = field(default_factory=set)
    """Digests of the cases that kept the contract."""
    repeats: int = 0
    """Cases hypothesis generated again, neither run nor counted a second time."""
    processes: int = 0

    def add(self, case: FuzzCase, verdict: Verdict) -> None:
        origin = "generated" if case.origin == "generated" else "mutated"
        self.by_origin[origin] = self.by_origin.get(origin, 0) + 1
        if not verdict.breach:
            self.passed.add(digest(case))
        if verdict.kind == "refused":
            self.refused += 1
        elif verdict.kind == "valid":
            self.valid += 1
        elif verdict.kind == "traceback":
            self.tracebacks += 1
        else:
            self.other += 1

    @property
    def cases(self) -> int:
        return self.refused + self.valid + self.tracebacks + self.other

    def record(self) -> None:
        if not self.cases:
            return
        record(
            "runbook fuzzing",
            cases=self.cases,
            survived=self.refused + self.valid,
            detail=(
                f"{self.refused} refused with exit 2 and FILE:LINE:COL, {self.valid} still valid (exit 0), "
                f"{self.tracebacks} tracebacks, {self.other} other breaches "
                f"({self.by_origin.get('mutated', 0)} mutated, {self.by_origin.get('generated', 0)} generated; "
                f"{self.repeats} repeats not counted; {self.processes} also as real processes, identical)"
            ),
        )


TALLY = Tally()


def digest(case: FuzzCase) -> bytes:
    return hashlib.sha256(case.data + b"\0" + "\0".join(case.args).encode()).digest()


@pytest.fixture(scope="module", autouse=True)
def _figures() -> Iterator[None]:
    yield
    TALLY.record()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("runbook-fuzz")


def _clip(text: str, head: int, tail: int) -> str:
    """``text`` with its middle cut out when it is long (a runaway recursion's traceback is thousands of lines)."""
    lines = text.splitlines()
    if len(lines) <= head + tail:
        return text
    return "\n".join([*lines[:head], f"[... {len(lines) - head - tail} lines ...]", *lines[-tail:]]) + "\n"


def _show(case: FuzzCase, path: Path, outcome: Outcome, verdict: Verdict) -> str:
    text = case.data.decode("utf-8", "backslashreplace")
    if len(text) > 4000:
        text = text[:2000] + f"\n[... {len(text) - 4000} characters ...]\n" + text[-2000:]
    return (
        f"drctl validate broke the runbook contract: {verdict.kind}\n"
        f"origin: {case.origin}; changes: {'; '.join(case.changes) or 'none'}\n"
        f"command: drctl validate {path} {' '.join(case.args)}\n"
        f"--- the runbook ({len(case.data)} bytes, undecodable bytes as \\x..):\n{text}\n"
        f"--- as bytes:\n{case.data!r:.6000}\n"
        f"--- exit {outcome.code}; stdout:\n{_clip(outcome.out, 5, 5)}--- stderr:\n{_clip(outcome.err, 5, 20)}"
        f"--- why: {_clip(verdict.why, 3, 12)}"
    )


def verify(case: FuzzCase, workdir: Path, *, count: bool = True) -> Outcome:
    """Validate ``case`` in-process, add it to the figures (unless ``count`` is false) and fail on a breach,
    with the runbook in the message for hypothesis to shrink and show."""
    path = workdir / "runbook.yaml"
    path.write_bytes(case.data)
    outcome = validate_in_process(path, case.args)
    verdict = judge(outcome, str(path))
    if count:
        TALLY.add(case, verdict)
    if verdict.breach:
        pytest.fail(_show(case, path, outcome, verdict), pytrace=False)
    return outcome


def check(case: FuzzCase, workdir: Path) -> None:
    if digest(case) in TALLY.passed:
        # hypothesis comes back to simple cases often (a fifth of the mutations, at full scale). Validation is
        # deterministic, so a file that kept the contract keeps it again: it is neither run nor counted twice,
        # and the figures count different files. (Rejecting it instead would make hypothesis see one example
        # both pass and be rejected, which it reports as flaky.) A breach is never skipped.
        TALLY.repeats += 1
        return
    verify(case, workdir)


# -- the tests -----------------------------------------------------------------------------------------------


@settings(FUZZ, max_examples=MUTATED)
@given(case=mutated_runbooks())
def test_mutated_runbooks_are_refused_with_a_position(case: FuzzCase, workdir: Path) -> None:
    check(case, workdir)


@settings(FUZZ, max_examples=GENERATED)
@given(case=generated_runbooks())
def test_generated_runbooks_are_refused_with_a_position(case: FuzzCase, workdir: Path) -> None:
    check(case, workdir)


@settings(FUZZ, max_examples=THROUGH_A_PROCESS)
@given(case=st.one_of(mutated_runbooks(), generated_runbooks()))
def test_a_real_process_gives_what_the_in_process_run_gave(case: FuzzCase, workdir: Path) -> None:
    inside = verify(case, workdir, count=digest(case) not in TALLY.passed)
    path = workdir / "runbook.yaml"
    real = drctl("validate", str(path), *case.args, env=process_env({}))
    TALLY.processes += 1
    assert (real.returncode, real.stdout, real.stderr) == (inside.code, inside.out, inside.err), _show(
        case, path, Outcome(real.returncode, real.stdout, real.stderr), Verdict("differs", "in-process run differed")
    )


@pytest.mark.parametrize("seed", SEEDS, ids=lambda s: s.name)
def test_every_seed_is_valid_before_it_is_mutated(seed: Seed, workdir: Path) -> None:
    # Mutations are only mistakes if they start from a runbook without any.
    path = workdir / "seed.yaml"
    path.write_text(seed.text, encoding="utf-8")
    outcome = validate_in_process(path, seed.args)
    assert judge(outcome, str(path)) == Verdict("valid"), (outcome.out, outcome.err)


@pytest.mark.parametrize("action", REGISTRY.names())
def test_the_generator_starts_from_valid_steps(action: str, workdir: Path) -> None:
    # Generated runbooks reach the late checks only if their well-formed values really are well formed.
    path = workdir / "generated.yaml"
    path.write_bytes(minimal_runbook(action))
    outcome = validate_in_process(path, ())
    assert judge(outcome, str(path)) == Verdict("valid"), (outcome.out, outcome.err)


@pytest.mark.parametrize(
    ("outcome", "kind"),
    [
        (Outcome(2, "", "P:3:7: kind must be 'Runbook'\n"), "refused"),
        (Outcome(0, "P: ok (1 step, 1 tier)\n", ""), "valid"),
        (Outcome(1, "", "", crash="Traceback (most recent call last):\n  RecursionError\n"), "traceback"),
        (Outcome(1, "", "Traceback (most recent call last):\nValueError: x\n"), "traceback"),
        (Outcome(1, "", "drctl: error: something\n"), "exit code"),
        (Outcome(2, "", "drctl: error: bad input\n"), "no position"),
        (Outcome(2, "", "P:3:7: first\nsecond line\n"), "no position"),
        (Outcome(2, "", "P:0:7: line zero\n"), "no position"),
        (Outcome(2, "", "other.yaml:3:7: another file\n"), "no position"),
        (Outcome(2, "", ""), "no position"),
        (Outcome(0, "P: ok (1 step, 1 tier)\n", "drctl: WARNING x\n"), "output"),
        (Outcome(2, "P: ok (1 step, 1 tier)\n", "P:1:1: x\n"), "output"),
    ],
)
def test_the_contract_check_tells_breaches_apart(outcome: Outcome, kind: str) -> None:
    assert judge(outcome, "P").kind == kind
