"""Runbooks for the runbook-fuzzing fault class, as hypothesis strategies.

Two sources, each a ``FuzzCase`` (the file's bytes, the options ``drctl validate`` gets, and what was done):

- ``mutated_runbooks()``: a valid runbook of the repository (``tests/runbooks/valid/``, ``runbooks/``) changed
  the ways a hand, an editor, a merge or a disk changes files: lines deleted, repeated, swapped, re-indented;
  keys misspelt; values of the wrong type; references, ``needs`` and ids broken; YAML's rarer features
  (anchors, merge keys, tags, documents, directives, tabs, BOMs); bytes flipped, NULs, truncation.
- ``generated_runbooks()``: runbook-shaped documents built from the drctl/v1 model and the action registry,
  mostly well formed so that they reach the late checks (parameters, references, the recovery graph), with a
  wrong value here and there.

Every choice is drawn so that hypothesis shrinks towards the unchanged seed and the well-formed value: a
failing case shrinks to the smallest change that still breaks the contract.
"""

from __future__ import annotations

import copy
import functools
import json
import re
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from hypothesis import strategies as st
from hypothesis.strategies import DrawFn, SearchStrategy
from pydantic import BaseModel

from orchestrator.actions.registry import REGISTRY
from orchestrator.stack_outputs import contract_field_names

REPO = Path(__file__).resolve().parents[2]
STACK_OUTPUTS = tuple(sorted((REPO / "tests" / "runbooks" / "stack-outputs").glob("*.json")))


@dataclass(frozen=True)
class Seed:
    """A valid runbook of the repository, and the ``-p`` options it needs to be valid (parameters without a
    default, such as failback's ``recovered``)."""

    name: str
    text: str
    args: tuple[str, ...]
    parameters: tuple[str, ...]
    document: dict[str, Any]
    """The text parsed, once: structural mutations change a copy."""


@dataclass(frozen=True)
class FuzzCase:
    """One runbook file for ``drctl validate``: ``origin`` says where it came from and ``changes`` what was
    done to it, in order, so a failure names both."""

    origin: str
    data: bytes
    args: tuple[str, ...]
    changes: tuple[str, ...]


# -- the seeds ----------------------------------------------------------------------------------------------


def _value_for(kind: object) -> str:
    # A location is also valid text, and parameters of the seeds end up in locations.
    return {"integer": "1", "number": "1.5", "boolean": "true"}.get(str(kind), "az://vault/restores/run-1/")


def _seed(path: Path) -> Seed:
    text = path.read_text(encoding="utf-8")
    document = yaml.safe_load(text)
    parameters = (document.get("spec") or {}).get("parameters") or {}
    args: list[str] = []
    for name, declared in parameters.items():
        if declared.get("default") is None:
            args += ["-p", f"{name}={_value_for(declared.get('type', 'string'))}"]
    return Seed(str(path.relative_to(REPO)), text, tuple(args), tuple(parameters), document)


def _load_seeds() -> tuple[Seed, ...]:
    paths = sorted([*(REPO / "tests" / "runbooks" / "valid").glob("*.yaml"), *(REPO / "runbooks").rglob("*.yaml")])
    # Smallest first: hypothesis shrinks towards the first, so a failure is shown on the shortest runbook.
    return tuple(sorted((_seed(path) for path in paths), key=lambda seed: len(seed.text)))


SEEDS = _load_seeds()


# -- pools of fragments ---------------------------------------------------------------------------------------

# YAML source text that reads as a value of some type, most of them wrong wherever they land.
WRONG_VALUES = (
    "42",
    "-1",
    "0",
    "3.5",
    "1e309",
    "-.inf",
    ".nan",
    "true",
    "no",
    "on",
    "null",
    "~",
    "''",
    '""',
    "[]",
    "{}",
    "[a, b]",
    "{a: 1}",
    "2024-02-30",
    "2026-01-01T00:00:00Z",
    "0x1F",
    "0o17",
    "1_000",
    "12:30:00",
    "!!binary aGVsbG8=",
    '"\\u0000"',
    '"\\ud800"',
    '"line\\nbreak"',
    "'${params.nope}'",
    "x" * 70,
    "9" * 30,
    "9" * 5000,
    "-" + "9" * 400,
    "1" + "0" * 400 + ".5",
    "&anchor value",
    "*undefined_alias",
    "'unterminated",
    '"bad \\q escape"',
    "@reserved",
    "`backtick",
    "%percent",
    "|",
    ">-",
    "? complex",
    "- item",
)

# Characters that trip readers, terminals and line counters: line separators YAML counts and editors may not,
# invisible and bidirectional marks, non-printable and non-characters, astral and lone surrogate code points.
ODD_CHARACTERS = (
    "\u2028",
    "\u2029",
    "\x85",
    "\r",
    "\u200b",
    "\ufeff",
    "\u202e",
    "\u00a0",
    "\uff1a",
    "é",
    "€",
    "\U0001d518",
    "\U0001f642",
    "\x00",
    "\x07",
    "\x1b",
    "\x7f",
    "\ufffe",
    "\uffff",
    "\ud800",
    "\t",
)

# Escapes of a double-quoted YAML scalar, as written in the file: line breaks of every kind, controls, NUL.
ESCAPES = (
    "\\n",
    "\\r",
    "\\r\\n",
    "\\t",
    "\\0",
    "\\e[31m",
    "\\L",
    "\\P",
    "\\N",
    "\\x0c",
    "\\x0b",
    "\\u001c",
    "\\_",
    "\\ud83d\\ude42",  # an emoji as JSON writers escape it: a surrogate pair, which YAML reads as two lone halves
    "\\ud800",
)

# Mapping keys that are text to YAML and odd to everything after it.
ODD_KEYS = ("a\nb", "tier\r", "x\u2028y", "", " ", "\x1b[31mred", "${params.x}", "a.b", "0", "with", "\x00")

TAGS = (
    "!!str",
    "!!int",
    "!!float",
    "!!bool",
    "!!null",
    "!!binary",
    "!!timestamp",
    "!!set",
    "!!omap",
    "!!pairs",
    "!!map",
    "!!seq",
    "!custom",
    "!",
    "!<tag:yaml.org,2002:str>",
    "!!python/object:os.system",
    "!!python/name:os.system",
    "!!python/tuple",
)

PREFIXES = (
    "%YAML 1.1\n---\n",
    "%YAML 1.2\n---\n",
    "%YAML 2.0\n---\n",
    "%TAG ! tag:example.com,2000:\n---\n",
    "%FOO bar\n---\n",
    "---\n",
    "--- !!map\n",
    "--- |\n",
    "...\n",
    "\ufeff",
    "\ufeff\ufeff",
    "# comment only\n",
    "\n\n\n",
)

SUFFIXES = (
    "---\n",
    "---\napiVersion: drctl/v1\n",
    "...\n",
    "...\n---\n",
    "\n--- second\n",
    "\n# trailing comment",
    "\nextra: key\n",
    "\n  stray: indented\n",
    "\n- list item\n",
    "\n[unclosed\n",
    "\nspec: again\n",
    "\nbomb0: &b0 [x, x, x, x, x, x, x, x, x, x]\nbomb1: &b1 [*b0, *b0, *b0, *b0, *b0, *b0, *b0, *b0, *b0, *b0]\n"
    "bomb2: &b2 [*b1, *b1, *b1, *b1, *b1, *b1, *b1, *b1, *b1, *b1]\n"
    "bomb3: &b3 [*b2, *b2, *b2, *b2, *b2, *b2, *b2, *b2, *b2, *b2]\n"
    "bomb4: &b4 [*b3, *b3, *b3, *b3, *b3, *b3, *b3, *b3, *b3, *b3]\n"
    "bomb5: [*b4, *b4, *b4, *b4, *b4, *b4, *b4, *b4, *b4, *b4]\n",
    "\nself: &self [*self]\n",
    "\nloop: &loop {a: *loop}\n",
    "\n? [complex, key]\n: value\n",
    "\n? {a: 1}\n: value\n",
    "\nnull: x\n",
    "\n~: x\n",
    "\n3: x\n",
    "\ntrue: x\n",
    "\n2024-01-01: x\n",
    "\n<<: {merged: true}\n",
    "\n<<: *undefined\n",
    "\n!!python/object:os.system x: y\n",
)

NAMESPACES = ("params", "stack", "steps", "env", "run")

KEY_PATTERN = re.compile(r"(?<![\w$.{-])([A-Za-z_][A-Za-z0-9_]*)(?=\s*:(?:\s|$))", re.MULTILINE)
VALUE_PATTERN = re.compile(r"(?<=: )[^\s,{}\[\]#&*!|>'\"][^,{}\[\]#\n]*|(?<=: )'[^'\n]*'|(?<=: )\"[^\"\n]*\"")
ACTION_PATTERN = re.compile(r"(?<=action: )[A-Za-z0-9_.]+")
REFERENCE_PATTERN = re.compile(r"\$\{[^}\n]*\}")
NUMBER_PATTERN = re.compile(r"(?<=[:\[,] )-?\d+(?:\.\d+)?\b")
NEEDS_PATTERN = re.compile(r"(?<=needs: \[)[^\]\n]*")


# -- small drawing helpers ---------------------------------------------------------------------------------


def _index(draw: DrawFn, size: int) -> int:
    return draw(st.integers(0, max(size - 1, 0)))


def _near_miss(draw: DrawFn, word: str) -> str:
    """``word`` with one slip of the hand (or of the character set)."""
    if not word:
        return "x"
    i = _index(draw, len(word))
    edit = draw(st.sampled_from(("drop", "insert", "swap", "replace", "upper", "plural", "homoglyph", "space")))
    if edit == "drop":
        return word[:i] + word[i + 1 :]
    if edit == "insert":
        return word[:i] + draw(st.sampled_from("aeiouxs-_")) + word[i:]
    if edit == "swap" and len(word) > 1:
        i = min(i, len(word) - 2)
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if edit == "replace":
        return word[:i] + draw(st.sampled_from("abcdeqz")) + word[i + 1 :]
    if edit == "upper":
        return word[:i] + word[i:].upper()
    if edit == "plural":
        return word + "s"
    if edit == "homoglyph":
        # Cyrillic letters that look Latin: the key reads right and is not.
        table = str.maketrans("aceopx", "\u0430\u0441\u0435\u043e\u0440\u0445")
        return word[:i] + word[i:].translate(table)
    return word[:i] + " " + word[i:]


def _lines(text: str) -> list[str]:
    return text.split("\n")


def _pick_match(draw: DrawFn, pattern: re.Pattern[str], text: str) -> re.Match[str] | None:
    matches = list(pattern.finditer(text))
    return matches[_index(draw, len(matches))] if matches else None


def _splice(text: str, match: re.Match[str], new: str) -> str:
    return text[: match.start()] + new + text[match.end() :]


# -- text mutations: each takes the text and returns the new text and what it did ----------------------------

TextMutation = Callable[[DrawFn, str], tuple[str, str]]


def delete_lines(draw: DrawFn, text: str) -> tuple[str, str]:
    lines = _lines(text)
    i, n = _index(draw, len(lines)), draw(st.integers(1, 3))
    return "\n".join(lines[:i] + lines[i + n :]), f"deleted lines {i + 1}-{i + n}"


def duplicate_line(draw: DrawFn, text: str) -> tuple[str, str]:
    lines = _lines(text)
    i = _index(draw, len(lines))
    return "\n".join([*lines[: i + 1], lines[i], *lines[i + 1 :]]), f"duplicated line {i + 1}"


def swap_lines(draw: DrawFn, text: str) -> tuple[str, str]:
    lines = _lines(text)
    i, j = _index(draw, len(lines)), _index(draw, len(lines))
    lines[i], lines[j] = lines[j], lines[i]
    return "\n".join(lines), f"swapped lines {i + 1} and {j + 1}"


def move_line(draw: DrawFn, text: str) -> tuple[str, str]:
    lines = _lines(text)
    i = _index(draw, len(lines))
    line = lines.pop(i)
    j = _index(draw, len(lines) + 1)
    lines.insert(j, line)
    return "\n".join(lines), f"moved line {i + 1} to {j + 1}"


def reindent(draw: DrawFn, text: str) -> tuple[str, str]:
    lines = _lines(text)
    i = _index(draw, len(lines))
    delta = draw(st.sampled_from((1, -1, 2, -2, 3, 4, -4, 8)))
    line = lines[i]
    indent = len(line) - len(line.lstrip(" "))
    lines[i] = " " * max(indent + delta, 0) + line.lstrip(" ")
    return "\n".join(lines), f"indented line {i + 1} by {delta}"


def tabs(draw: DrawFn, text: str) -> tuple[str, str]:
    lines = _lines(text)
    i = _index(draw, len(lines))
    where = draw(st.sampled_from(("indent", "after-colon", "end")))
    line = lines[i]
    if where == "indent":
        lines[i] = "\t" + line.lstrip(" ")
    elif where == "after-colon":
        lines[i] = line.replace(": ", ":\t", 1)
    else:
        lines[i] = line + "\t"
    return "\n".join(lines), f"tab ({where}) on line {i + 1}"


def rename_key(draw: DrawFn, text: str) -> tuple[str, str]:
    match = _pick_match(draw, KEY_PATTERN, text)
    if match is None:
        return text, "no key to rename"
    new = _near_miss(draw, match.group(1))
    return _splice(text, match, new), f"renamed key {match.group(1)!r} to {new!r}"


def escaped_key(draw: DrawFn, text: str) -> tuple[str, str]:
    # A double-quoted key may hold any character as an escape: a line break inside a key is one YAML allows.
    match = _pick_match(draw, KEY_PATTERN, text)
    if match is None:
        return text, "no key to quote"
    escape = draw(st.sampled_from(ESCAPES))
    at = draw(st.integers(0, len(match.group(1))))
    new = f'"{match.group(1)[:at]}{escape}{match.group(1)[at:]}"'
    return _splice(text, match, new), f"key {match.group(1)!r} quoted as {new}"


def replace_value(draw: DrawFn, text: str) -> tuple[str, str]:
    match = _pick_match(draw, VALUE_PATTERN, text)
    if match is None:
        return text, "no value to replace"
    new = draw(st.sampled_from(WRONG_VALUES))
    return _splice(text, match, new), f"replaced value {match.group(0)[:40]!r} with {new[:40]!r}"


def break_reference(draw: DrawFn, text: str) -> tuple[str, str]:
    match = _pick_match(draw, REFERENCE_PATTERN, text)
    if match is None:
        return insert_reference(draw, text)
    ref = match.group(0)
    inner = ref[2:-1]
    namespace, _, rest = inner.partition(".")
    how = draw(
        st.sampled_from(
            (
                "unclosed",
                "unopened",
                "namespace",
                "misspelt",
                "space",
                "nested",
                "empty",
                "escaped",
                "truncated",
                "longer",
                "unknown-namespace",
                "doubled",
            )
        )
    )
    new = {
        "unclosed": "${" + inner,
        "unopened": "{" + inner + "}",
        "namespace": "${" + _near_miss(draw, namespace) + "." + rest + "}",
        "misspelt": "${" + namespace + "." + _near_miss(draw, rest) + "}",
        "space": "${ " + inner + " }",
        "nested": "${" + namespace + ".${" + rest + "}}",
        "empty": "${}",
        "escaped": "$${" + inner + "}",
        "truncated": "${" + namespace + "}",
        "longer": "${" + inner + ".extra.parts}",
        "unknown-namespace": "${secrets." + rest + "}",
        "doubled": ref + ref + "${",
    }[how]
    return _splice(text, match, new), f"reference {ref!r} made {how}: {new!r}"


def insert_reference(draw: DrawFn, text: str) -> tuple[str, str]:
    match = _pick_match(draw, VALUE_PATTERN, text)
    if match is None:
        return text, "no value to hold a reference"
    ref = draw(references(("copies", "mode", "nope"), ("hello", "copy-db-backups", "verify", "nope")))
    new = json.dumps(ref)
    return _splice(text, match, new), f"value {match.group(0)[:40]!r} replaced by reference {new}"


def unknown_action(draw: DrawFn, text: str) -> tuple[str, str]:
    match = _pick_match(draw, ACTION_PATTERN, text)
    if match is None:
        return text, "no action to change"
    new = draw(
        st.one_of(
            st.just(_near_miss(draw, match.group(0))),
            st.sampled_from(("backup", "backup.", ".copy", "rm -rf", "Notify", "notify ", "''", "null", "[notify]")),
            st.sampled_from(REGISTRY.names()),
        )
    )
    return _splice(text, match, new), f"action {match.group(0)!r} changed to {new!r}"


def huge_number(draw: DrawFn, text: str) -> tuple[str, str]:
    new = draw(
        st.sampled_from(
            (
                "9" * 25,
                "9" * 4300,
                "9" * 5000,
                "-" + "9" * 25,
                "1e400",
                "-1e400",
                "1" + "0" * 400 + ".0",
                "0" * 50 + "1",
            )
        )
    )
    match = _pick_match(draw, NUMBER_PATTERN, text)
    if match is None:
        match = _pick_match(draw, VALUE_PATTERN, text)
    if match is None:
        return text, "no number to enlarge"
    return _splice(text, match, new), f"number {match.group(0)[:20]!r} replaced by {new[:12]}... ({len(new)} chars)"


def odd_characters(draw: DrawFn, text: str) -> tuple[str, str]:
    at = draw(st.integers(0, len(text)))
    chars = "".join(draw(st.lists(st.sampled_from(ODD_CHARACTERS), min_size=1, max_size=3)))
    return text[:at] + chars + text[at:], f"inserted {chars!r} at character {at}"


def any_text(draw: DrawFn, text: str) -> tuple[str, str]:
    at = draw(st.integers(0, len(text)))
    new = draw(st.text(max_size=12))
    return text[:at] + new + text[at:], f"inserted {new!r} at character {at}"


def make_needs_cyclic(draw: DrawFn, text: str) -> tuple[str, str]:
    ids = re.findall(r"(?<=id: )[a-z0-9-]+", text)
    match = _pick_match(draw, NEEDS_PATTERN, text)
    if not ids or match is None:
        return text, "no needs to make cyclic"
    target = ids[_index(draw, len(ids))]
    new = f"{match.group(0)}, {target}" if match.group(0).strip() else target
    return _splice(text, match, new), f"needs [{match.group(0)}] became [{new}]"


def duplicate_id(draw: DrawFn, text: str) -> tuple[str, str]:
    matches = list(re.finditer(r"(?<=id: )[a-z0-9-]+", text))
    if len(matches) < 2:
        return text, "no second id to duplicate"
    a, b = matches[_index(draw, len(matches))], matches[_index(draw, len(matches))]
    return _splice(text, b, a.group(0)), f"id {b.group(0)!r} renamed to {a.group(0)!r}"


def anchor_alias(draw: DrawFn, text: str) -> tuple[str, str]:
    matches = list(VALUE_PATTERN.finditer(text))
    if len(matches) < 2:
        return text, "no values to alias"
    i, j = sorted((_index(draw, len(matches)), _index(draw, len(matches))))
    a, b = matches[i], matches[j]
    if i == j:
        return _splice(text, a, "&a *a"), "value made an alias of itself"
    # Splice the later one first so the earlier offsets still hold.
    text = text[: b.start()] + "*a" + text[b.end() :]
    text = text[: a.start()] + "&a " + a.group(0) + text[a.end() :]
    return text, f"value {b.group(0)[:30]!r} replaced by an alias of {a.group(0)[:30]!r}"


def merge_key(draw: DrawFn, text: str) -> tuple[str, str]:
    lines = _lines(text)
    i = _index(draw, len(lines))
    line = lines[i]
    indent = " " * (len(line) - len(line.lstrip(" -")))
    body = draw(st.sampled_from(("<<: {timeout: 5m}", "<<: *a", "<<: [{a: 1}, {b: 2}]", "<<: 3")))
    lines.insert(i + 1, indent + body)
    return "\n".join(lines), f"inserted {body!r} after line {i + 1}"


def tag(draw: DrawFn, text: str) -> tuple[str, str]:
    match = _pick_match(draw, VALUE_PATTERN, text)
    if match is None:
        return text, "no value to tag"
    chosen = draw(st.sampled_from(TAGS))
    return _splice(text, match, f"{chosen} {match.group(0)}"), f"tagged {match.group(0)[:30]!r} {chosen}"


def prefix(draw: DrawFn, text: str) -> tuple[str, str]:
    chosen = draw(st.sampled_from(PREFIXES))
    return chosen + text, f"prefixed {chosen!r}"


def suffix(draw: DrawFn, text: str) -> tuple[str, str]:
    chosen = draw(st.sampled_from(SUFFIXES))
    return text + chosen, f"appended {chosen[:40]!r}"


def line_endings(draw: DrawFn, text: str) -> tuple[str, str]:
    ending = draw(st.sampled_from(("\r\n", "\r", "\u2028", "\x85", "\n\n")))
    return text.replace("\n", ending), f"line endings made {ending!r}"


def block_scalar(draw: DrawFn, text: str) -> tuple[str, str]:
    match = _pick_match(draw, VALUE_PATTERN, text)
    if match is None:
        return text, "no value to fold"
    style = draw(st.sampled_from(("|", ">", "|-", ">+", "|2", "|0")))
    return _splice(text, match, f"{style}\n  {match.group(0)}\n"), f"value {match.group(0)[:30]!r} as block {style}"


def deep_nesting(draw: DrawFn, text: str) -> tuple[str, str]:
    depth = draw(st.sampled_from((10, 50, 100, 200, 300, 400, 500, 700, 1000, 3000)))
    opener, closer = draw(st.sampled_from((("[", "]"), ("{a: ", "}"), ("[{a: ", "}]"))))
    nested = opener * depth + closer * depth
    match = _pick_match(draw, VALUE_PATTERN, text)
    if match is None:
        return text + "\nnested: " + nested + "\n", f"appended a value nested {depth} deep"
    return _splice(text, match, nested), f"value {match.group(0)[:30]!r} replaced by {opener!r} nested {depth} deep"


def long_value(draw: DrawFn, text: str) -> tuple[str, str]:
    match = _pick_match(draw, VALUE_PATTERN, text)
    if match is None:
        return text, "no value to lengthen"
    size = draw(st.sampled_from((64, 65, 1000, 100_000)))
    return _splice(text, match, "a" * size), f"value {match.group(0)[:30]!r} replaced by {size} letters"


def truncate(draw: DrawFn, text: str) -> tuple[str, str]:
    # Counted from the end, so that small draws (which hypothesis favours) cut little: an empty file is one case.
    at = len(text) - draw(st.integers(0, len(text)))
    return text[:at], f"truncated to {at} characters"


TEXT_MUTATIONS: tuple[TextMutation, ...] = (
    delete_lines,
    duplicate_line,
    swap_lines,
    move_line,
    reindent,
    tabs,
    rename_key,
    escaped_key,
    replace_value,
    break_reference,
    insert_reference,
    unknown_action,
    huge_number,
    odd_characters,
    any_text,
    make_needs_cyclic,
    duplicate_id,
    anchor_alias,
    merge_key,
    tag,
    prefix,
    suffix,
    line_endings,
    block_scalar,
    deep_nesting,
    long_value,
    truncate,
)


# -- byte mutations: what a disk, a transfer or another encoding does to a file ------------------------------

ByteMutation = Callable[[DrawFn, bytes], tuple[bytes, str]]


def flip_bit(draw: DrawFn, data: bytes) -> tuple[bytes, str]:
    if not data:
        return b"\x80", "one byte 0x80"
    i, bit = _index(draw, len(data)), draw(st.integers(0, 7))
    return data[:i] + bytes([data[i] ^ (1 << bit)]) + data[i + 1 :], f"flipped bit {bit} of byte {i}"


def insert_bytes(draw: DrawFn, data: bytes) -> tuple[bytes, str]:
    at = draw(st.integers(0, len(data)))
    new = draw(
        st.one_of(
            st.binary(min_size=1, max_size=4),
            st.sampled_from((b"\x00", b"\xef\xbb\xbf", b"\xff\xfe", b"\xc3", b"\xed\xa0\x80", b"\xf4\x90\x80\x80")),
        )
    )
    return data[:at] + new + data[at:], f"inserted bytes {new!r} at {at}"


def delete_bytes(draw: DrawFn, data: bytes) -> tuple[bytes, str]:
    at, n = _index(draw, len(data)), draw(st.integers(1, 8))
    return data[:at] + data[at + n :], f"deleted {n} bytes at {at}"


def truncate_bytes(draw: DrawFn, data: bytes) -> tuple[bytes, str]:
    at = len(data) - draw(st.integers(0, len(data)))
    return data[:at], f"truncated to {at} bytes"


BYTE_MUTATIONS: tuple[ByteMutation, ...] = (flip_bit, insert_bytes, delete_bytes, truncate_bytes)


def _encode(draw: DrawFn, text: str) -> tuple[bytes, str]:
    """The text as the file's bytes: UTF-8, and in one case of ten what another editor would have saved."""
    encoding = "utf-8"
    if draw(st.integers(0, 9)) == 9:
        encoding = draw(st.sampled_from(("utf-8-sig", "utf-16", "latin-1", "cp1252")))
    # surrogatepass writes a lone surrogate as the invalid UTF-8 a broken tool would; replace keeps the others
    # going when the text holds what they cannot encode.
    errors = "surrogatepass" if encoding.startswith("utf") else "replace"
    return text.encode(encoding, errors), encoding


# -- structural mutations, on the parsed document ---------------------------------------------------------------


def _steps_of(doc: dict[str, Any]) -> list[Any]:
    spec = doc.get("spec")
    steps = spec.get("steps") if isinstance(spec, dict) else None
    return steps if isinstance(steps, list) else []


def _paths(node: object, path: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    out = [path]
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out += _paths(value, (*path, i))
    return out


def _parent(doc: object, path: tuple[str | int, ...]) -> Any:
    node: Any = doc
    for part in path[:-1]:
        node = node[part]
    return node


def mutate_structure(draw: DrawFn, doc: dict[str, Any]) -> str:
    """Change ``doc`` in place in a way the text mutations cannot aim at; returns what was done."""
    steps = [s for s in _steps_of(doc) if isinstance(s, dict)]
    how = draw(
        st.sampled_from(("cycle", "self-need", "duplicate-id", "set", "delete", "unknown-key", "tiers", "copy-step"))
    )
    if how == "cycle" and len(steps) >= 2:
        # needs closed into a loop through every step, the longest cycle the graph can have.
        ids = [s.get("id") for s in steps]
        for step, previous in zip(steps, [ids[-1], *ids[:-1]], strict=True):
            step["needs"] = [*(step.get("needs") or []), previous]
        return f"needs closed into a cycle through {len(steps)} steps"
    if how == "self-need" and steps:
        step = steps[_index(draw, len(steps))]
        step["needs"] = [*(step.get("needs") or []), step.get("id")]
        return f"step {step.get('id')!r} needs itself"
    if how == "duplicate-id" and len(steps) >= 2:
        a, b = steps[_index(draw, len(steps))], steps[_index(draw, len(steps))]
        b["id"] = a.get("id")
        return f"two steps with id {a.get('id')!r}"
    if how == "tiers" and steps:
        tiers = draw(st.lists(st.integers(-1, 5), min_size=len(steps), max_size=len(steps)))
        for step, tier_ in zip(steps, tiers, strict=True):
            step["tier"] = tier_
        return f"tiers set to {tiers}"
    if how == "copy-step" and steps:
        # The same object twice: the dumper writes it as an anchor and an alias.
        doc["spec"]["steps"].append(steps[_index(draw, len(steps))])
        return "a step repeated as an alias"
    paths = _paths(doc)[1:]
    if not paths:
        return "nothing to change"
    path = paths[_index(draw, len(paths))]
    parent = _parent(doc, path)
    if how == "delete":
        del parent[path[-1]]
        return f"deleted {'.'.join(map(str, path))}"
    if how == "unknown-key" and isinstance(parent, dict):
        key = _near_miss(draw, str(path[-1]))
        parent[key] = parent[path[-1]]
        return f"added key {key!r} beside {'.'.join(map(str, path))}"
    value = draw(wild_values())
    parent[path[-1]] = value
    return f"set {'.'.join(map(str, path))} to {value!r:.60}"


def dump(draw: DrawFn, doc: object) -> str:
    """``doc`` as YAML in one of the styles people write (or as JSON, which is YAML too)."""
    style = draw(st.sampled_from(("block", "flow", "default", "json", "canonical")))
    if style == "json":
        return json.dumps(doc, default=str, ensure_ascii=draw(st.booleans()))
    # libyaml's emitter when there is one: the pure-Python one costs more than validating what it writes.
    return yaml.dump(
        doc,
        Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper),
        sort_keys=False,
        allow_unicode=draw(st.booleans()),
        default_flow_style={"block": False, "flow": True, "default": None, "canonical": False}[style],
        canonical=style == "canonical",
        width=draw(st.sampled_from((80, 20, 1000))),
    )


# -- values ---------------------------------------------------------------------------------------------------


# Strategies are built once and cached: building one costs more than drawing from it, and the generator
# would otherwise build thousands per example.


@functools.cache
def references(params: tuple[str, ...], steps: tuple[str, ...]) -> SearchStrategy[str]:
    """``${...}`` references, well and badly formed, alone or inside text."""
    outputs = sorted({o for spec in REGISTRY for o in spec.outputs})
    good = st.one_of(
        st.sampled_from(params).map(lambda p: f"${{params.{p}}}"),
        st.sampled_from(sorted(contract_field_names())).map(lambda s: f"${{stack.{s}}}"),
        st.tuples(st.sampled_from(steps), st.sampled_from(outputs)).map(lambda t: f"${{steps.{t[0]}.outputs.{t[1]}}}"),
        st.sampled_from(
            ("${env.HOME}", "${env.DR_WEBHOOK}", "${run.id}", "${run.mode}", "${stack.security_group_ids.db}")
        ),
    )
    bad = st.sampled_from(
        (
            "${",
            "${}",
            "${params}",
            "${params.}",
            "${steps.a.b}",
            "${steps.a.outputs}",
            "${run.other}",
            "${env.1X}",
            "${stack.nope}",
            "${stack.recovery_subnet_ids.99}",
            "${ params.x }",
            "$${params.x}",
            "${params.x",
            "}${",
            "${nope.x}",
            "${params.x}}",
            "${params.${params.x}}",
            "${steps.Bad_Id.outputs.x}",
        )
    )
    return st.one_of(good, bad, st.tuples(st.text(max_size=5), st.one_of(good, bad), st.text(max_size=5)).map("".join))


@functools.cache
def wild_values() -> SearchStrategy[object]:
    """Any value YAML can hold, leaning to the ones validators trip on."""
    scalars: SearchStrategy[object] = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.sampled_from((0, -1, 2**63, -(2**63) - 1, 10**400)),
        st.floats(),
        st.text(max_size=20),
        st.sampled_from(("", " ", "0", "true", "30", "30s", "1h30m", "-5m", "0s", "s3://", "az://", "\n", "null")),
        references(("copies", "mode", "x"), ("a", "b")),
    )
    return st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=3),
            st.dictionaries(
                st.one_of(st.text(max_size=8), st.sampled_from(("id", "action", "with"))), inner, max_size=3
            ),
        ),
        max_leaves=6,
    )


def mostly(good: SearchStrategy[Any], odd: SearchStrategy[Any], one_in: int = 10) -> SearchStrategy[Any]:
    """``good``, and ``odd`` one time in ``one_in``; shrinks to ``good``."""
    return st.integers(0, one_in - 1).flatmap(lambda n: odd if n == one_in - 1 else good)


def _sometimes_wrong(
    draw: DrawFn, good: SearchStrategy[Any], one_in: int = 12, wrong: SearchStrategy[Any] | None = None
) -> Any:
    # 0 (where hypothesis shrinks to) is the well-formed value: a failure shrinks to the one wrong value it needs.
    if draw(st.integers(0, one_in - 1)) == one_in - 1:
        return draw(wrong if wrong is not None else wild_values())
    return draw(good)


DURATIONS = ("250ms", "30s", "90s", "5m", "15m", "1h", "1h30m", "2d", "1w")
TEXTS = ("x", "us-east-1", "s3://bucket/db/", "az://vault/db/", "ami-123", "db", "https://app.example.com/health")

# The required ``with`` keys of each action, with values that pass, so generated steps reach the later checks.
GOOD_WITH: dict[str, dict[str, object]] = {
    "backup.copy": {"from": "s3://bucket/db/", "to": "az://vault/db/"},
    "backup.verify": {"set": "az://vault/db/"},
    "backup.restore": {"set": "az://vault/db/", "target": "s3://replica/db/"},
    "wait": {"duration": "30s"},
    "http.check": {"url": "https://app.example.com/health"},
    "shell": {"command": "true"},
    "notify": {"message": "hello"},
    "db.restore": {"set": "az://vault/db/", "object": "db/shop.dump", "dsn": "postgresql://shop@10.0.0.5:5432/shop"},
    "db.check": {"dsn": "postgresql://shop@10.0.0.5:5432/shop", "checks": [{"name": "n", "sql": "SELECT 1", "min": 1}]},
    "compute.start": {"tags": {"tier": "db"}},
    "compute.stop": {"tags": {"tier": "db"}},
    "compute.terminate": {"tags": {"tier": "db"}},
    "compute.wait_healthy": {"tags": {"tier": "db"}},
    "compute.launch": {"tags": {"tier": "db"}, "image": "ami-123"},
    "image.ensure": {"image": "ami-123", "source_region": "us-east-1", "region": "us-west-2"},
    "dns.failover": {"zone": "example.com", "name": "app.example.com", "type": "A", "recovery": "secondary"},
    "dns.failback": {"zone": "example.com", "name": "app.example.com", "type": "A", "primary": "primary"},
}


@functools.cache
def values_of(annotation: Any, depth: int = 0) -> SearchStrategy[Any]:
    """Values shaped like ``annotation``, a field type of an action's model (mostly of that type)."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return values_of(args[0], depth)
    if origin in (typing.Union, types.UnionType):
        return st.one_of(*(values_of(a, depth) for a in args if a is not type(None)))
    if origin is typing.Literal:
        return st.sampled_from(args)
    if origin is tuple:
        return st.lists(values_of(args[0], depth + 1), max_size=3)
    if origin in (dict, Mapping) and len(args) == 2:
        keys = mostly(st.sampled_from(("tier", "role", "NAME", "drctl:stack")), st.sampled_from(ODD_KEYS), 5)
        return st.dictionaries(keys, mostly(values_of(args[1]), wild_values()), max_size=3)
    if annotation is bool:
        return st.booleans()
    if annotation is int:
        return st.integers(0, 300)
    if annotation is float:
        return st.floats(0, 100)
    if annotation is timedelta:
        return st.sampled_from(DURATIONS)
    if annotation is datetime:
        return st.sampled_from(("2026-01-01T00:00:00Z", "2026-01-01", "2026-02-30T00:00:00Z"))
    if isinstance(annotation, type) and issubclass(annotation, BaseModel) and depth < 3:
        return model_values(annotation, depth + 1)
    return st.sampled_from(TEXTS)


def model_values(model: type[BaseModel], depth: int = 0) -> SearchStrategy[dict[str, Any]]:
    """A mapping for ``model``: its required keys and some of its optional ones (cached via ``values_of`` and
    ``WITH_VALUES``)."""
    fields = {(info.alias or name): info for name, info in model.model_fields.items()}
    required = [k for k, f in fields.items() if f.is_required()]
    optional = sorted(k for k, f in fields.items() if not f.is_required())
    # Annotations are hashable in practice (types, typing forms, frozen validator dataclasses); typeshed does
    # not say so, hence the cast for the cache.
    strategies = {k: values_of(typing.cast(Any, f.annotation), depth) for k, f in fields.items()}

    @st.composite
    def build(draw: DrawFn) -> dict[str, Any]:
        chosen = draw(st.lists(st.sampled_from(optional), max_size=3, unique=True)) if optional else []
        keys = [*required, *chosen]
        return {k: draw(strategies[k]) for k in keys}

    return build()


PARAMETER_VALUES: dict[str, SearchStrategy[Any]] = {
    "string": mostly(st.text(max_size=8), st.sampled_from(ODD_KEYS)),
    "integer": st.integers(0, 10),
    "number": st.floats(0, 2),
    "boolean": st.booleans(),
}
WITH_VALUES = {spec.name: model_values(spec.params) for spec in REGISTRY}
PARAMETER_NAMES = mostly(st.sampled_from(("mode", "copies", "deep", "share", "region")), st.sampled_from(ODD_KEYS), 30)
STEP_IDS = ("copy", "verify", "restore", "start-db", "check", "dns", "x1")
# A step's keys besides id, action, with and needs, with values that pass.
STEP_FIELDS: dict[str, SearchStrategy[Any]] = {
    "tier": st.integers(1, 3),
    "when": st.sampled_from(("always", "drill", "failover")),
    "timeout": st.sampled_from(DURATIONS),
    "retry": st.fixed_dictionaries({"attempts": st.integers(1, 5)}, optional={"backoff": st.just("5s")}),
    "on_error": st.sampled_from(("fail", "continue")),
    "approval": st.sampled_from(("required", "none")),
    "description": st.text(max_size=20),
    "compensate": st.just({"action": "notify", "with": {"message": "undone"}}),
}


# -- the strategies ----------------------------------------------------------------------------------------------


def _options(draw: DrawFn, seed_args: tuple[str, ...], declared: Sequence[str]) -> tuple[str, ...]:
    """The options of ``drctl validate``: the seed's, then sometimes stack outputs and more ``-p``."""
    args = list(seed_args)
    if STACK_OUTPUTS and draw(st.integers(0, 3)) == 3:
        args += ["--stack-outputs", str(draw(st.sampled_from(STACK_OUTPUTS)))]
    given = {a.split("=", 1)[0] for a in seed_args[1::2]}
    # Only names a shell user could mean: '-p =x' is a usage error of the command line, not of the runbook.
    names = [n for n in declared if re.fullmatch(r"[A-Za-z_]\w*", n)]
    # In one case of four: an undeclared or mistyped -p stops validation before the document's own checks.
    extra = (
        draw(st.lists(st.sampled_from([*names, "undeclared"]), max_size=2, unique=True))
        if draw(st.integers(0, 3)) == 3
        else []
    )
    for name in extra:
        if name not in given:
            value = draw(st.sampled_from(("full", "8", "-1", "1.5", "true", "maybe", "", "s3://b/")))
            args += ["-p", f"{name}={value}"]
    return tuple(args)


@st.composite
def mutated_runbooks(draw: DrawFn) -> FuzzCase:
    seed = draw(st.sampled_from(SEEDS))
    changes: list[str] = []
    text = seed.text
    if draw(st.integers(0, 3)) == 3:
        doc = copy.deepcopy(seed.document)
        for _ in range(draw(st.integers(1, 2))):
            changes.append(mutate_structure(draw, doc))
        text = dump(draw, doc)
        changes.append("re-written by the YAML dumper")
    for _ in range(draw(st.integers(0 if changes else 1, 4))):
        mutation = draw(st.sampled_from(TEXT_MUTATIONS))
        text, what = mutation(draw, text)
        changes.append(what)
    data, encoding = _encode(draw, text)
    if encoding != "utf-8":
        changes.append(f"saved as {encoding}")
    for _ in range(draw(st.integers(0, 9)) // 8):  # one in a fifth of the cases
        mutation_b = draw(st.sampled_from(BYTE_MUTATIONS))
        data, what = mutation_b(draw, data)
        changes.append(what)
    return FuzzCase(f"mutated {seed.name}", data, _options(draw, seed.args, seed.parameters), tuple(changes))


@st.composite
def generated_documents(draw: DrawFn) -> tuple[dict[str, Any], list[str]]:
    """A runbook document from the drctl/v1 model, and the parameters it declares."""
    parameters: dict[str, Any] = {}
    for name in draw(st.lists(PARAMETER_NAMES, max_size=3, unique=True)):
        kind = draw(st.sampled_from(sorted(PARAMETER_VALUES)))
        declared: dict[str, Any] = {"type": kind}
        if draw(st.integers(0, 5)) < 5:
            declared["default"] = _sometimes_wrong(draw, PARAMETER_VALUES[kind])
        if draw(st.integers(0, 4)) == 4:
            declared["enum"] = [declared.get("default"), *draw(st.lists(PARAMETER_VALUES[kind], max_size=2))]
        parameters[name] = declared
    names = tuple(parameters)
    ids = draw(st.lists(st.sampled_from(STEP_IDS), min_size=1, max_size=6, unique=True))
    if len(ids) > 1 and draw(st.integers(0, 15)) == 15:
        ids[-1] = ids[0]  # a duplicate id, now and then: most runbooks should get past the graph checks
    steps: list[dict[str, Any]] = []
    for i, step_id in enumerate(ids):
        action = _sometimes_wrong(draw, st.sampled_from(REGISTRY.names()), one_in=20)
        spec = REGISTRY.get(action) if isinstance(action, str) else None
        with_: dict[str, Any] = dict(GOOD_WITH.get(action, {})) if isinstance(action, str) else {}
        if spec is not None:
            extra = draw(WITH_VALUES[spec.name])
            for key, value in extra.items():
                if key not in with_ or draw(st.integers(0, 5)) == 5:
                    with_[key] = value
        for key in list(with_):
            if draw(st.integers(0, 7)) == 7:
                with_[key] = draw(references(names or ("nope",), tuple(ids[:i]) or ("nope",)))
            elif draw(st.integers(0, 15)) == 15:
                with_[key] = draw(wild_values())
        step: dict[str, Any] = {"id": _sometimes_wrong(draw, st.just(step_id), one_in=25), "action": action}
        empty_with, some_needs = draw(st.booleans()), draw(st.booleans())
        if with_ or empty_with:
            step["with"] = with_
        earlier = ids[:i]
        if earlier and some_needs:
            step["needs"] = draw(st.lists(st.sampled_from(earlier), max_size=2))
        if draw(st.integers(0, 15)) == 15:
            step["needs"] = draw(st.lists(st.sampled_from(ids), max_size=3))  # may point forward: a cycle
        for key in draw(st.lists(st.sampled_from(sorted(STEP_FIELDS)), max_size=3, unique=True)):
            step[key] = _sometimes_wrong(draw, STEP_FIELDS[key])
        steps.append(step)
    spec_doc: dict[str, Any] = {"steps": steps}
    if parameters:
        spec_doc["parameters"] = parameters
    if draw(st.booleans()):
        odd = st.sampled_from(ODD_KEYS)
        primary, vault = (_sometimes_wrong(draw, st.just(n), 20, odd) for n in ("primary", "vault"))
        spec_doc["providers"] = {
            primary: _sometimes_wrong(draw, st.just({"type": "aws", "region": "us-east-1"})),
            vault: _sometimes_wrong(draw, st.just({"type": "azure", "account": "${stack.vault_account}"})),
        }
    if draw(st.integers(0, 3)) == 3:
        spec_doc["objectives"] = {"rto": _sometimes_wrong(draw, st.sampled_from(DURATIONS))}
    if draw(st.integers(0, 3)) == 3:
        spec_doc["compensation"] = [{"action": "notify", "with": {"message": "${steps.copy.outputs.recovery_point}"}}]
    doc: dict[str, Any] = {
        "apiVersion": _sometimes_wrong(draw, st.just("drctl/v1"), one_in=40),
        "kind": _sometimes_wrong(draw, st.just("Runbook"), one_in=40),
        "metadata": {"name": _sometimes_wrong(draw, st.sampled_from(("generated", "a", "x" * 63)), one_in=20)},
        "spec": spec_doc,
    }
    if draw(st.integers(0, 20)) == 20:
        doc[_near_miss(draw, draw(st.sampled_from(("metadata", "spec", "kind"))))] = {}
    return doc, list(names)


@st.composite
def generated_runbooks(draw: DrawFn) -> FuzzCase:
    doc, declared = draw(generated_documents())
    return FuzzCase("generated", dump(draw, doc).encode("utf-8", "surrogatepass"), _options(draw, (), declared), ())


def minimal_runbook(action: str) -> bytes:
    """One step of ``action`` with its ``GOOD_WITH`` keys: the generator's starting point, which must be valid."""
    doc = {
        "apiVersion": "drctl/v1",
        "kind": "Runbook",
        "metadata": {"name": "generated"},
        "spec": {"steps": [{"id": "only", "action": action, "with": GOOD_WITH[action]}]},
    }
    return yaml.safe_dump(doc, sort_keys=False).encode("utf-8")
