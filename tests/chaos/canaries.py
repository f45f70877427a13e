"""Secret canaries: fresh random credentials, every form in which one could plausibly leak, and a scan for them.

A canary is a credential value made for one run only, so finding any form of it anywhere afterwards can only mean
that drctl (or something it drove) wrote it there. The forms searched are the value itself and the encodings a
leak would take on its way out: URL- and form-encoding (a SAS in a URL, a query string), JSON and HTML escaping
(the reports), Python's ``repr`` (an exception message quoting a header value), hex and base64 at each of the three
byte alignments (a value inside a longer base64 blob, such as a Basic credential), the key material a base64 key
encodes, and each half of the random part, so that a truncated or half-masked value is found too.

Two lab secrets are not fresh but are checked the same way, because drctl uses them for real on successful paths
and must not write them either: Azurite's published account key and the lab databases' password. Each may have a
``home``, the place it lives by design (the lab's own secrets directory), which is not searched for it.
"""

from __future__ import annotations

import base64
import binascii
import html
import json
import os
import secrets
import sqlite3
import stat
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, quote_plus, unquote

MIN_NEEDLE = 12
"""Shorter forms are not searched: 12 characters of a random value cannot occur by chance, fewer might."""
SQLITE_MAGIC = b"SQLite format 3\x00"
EXCERPT = 40
"""Bytes shown on each side of a leak in a failure message (the leaked value itself is shown masked)."""


@dataclass(frozen=True)
class Secret:
    """A credential whose every form must stay out of what a run writes. ``core`` is its random part (whose halves
    are searched for too), ``material`` the binary key its text encodes, ``home`` where it lives by design."""

    kind: str
    value: str = field(repr=False)
    fresh: bool = True
    core: str = field(default="", repr=False)
    material: bytes = field(default=b"", repr=False)
    home: Path | None = None

    def needles(self) -> dict[bytes, str]:
        """Every form to search for, strongest first, mapped to its name: the full value's encodings before the
        halves of its random part, so a finding names the most complete form that leaked."""
        found: dict[bytes, str] = {}

        def add(form: str, needle: bytes) -> None:
            if len(needle) >= MIN_NEEDLE and needle not in found:
                found[needle] = form

        for text in dict.fromkeys((self.value, self.value.strip())):
            for form, needle in text_forms(text).items():
                add(form, needle)
        if self.material:
            for form, needle in binary_forms(self.material, "the key material").items():
                add(form, needle)
        if self.core:
            half = len(self.core) // 2
            for i, part in enumerate((self.core[:half], self.core[half:])):
                for form, needle in text_forms(part, with_base64=False).items():
                    add(f"{('first', 'second')[i]} half, {form}", needle)
            # A value cut short, or masked but for its ends: the shortest unique pieces, as they are.
            add("its first characters", self.core[:MIN_NEEDLE].encode())
            add("its last characters", self.core[-MIN_NEEDLE:].encode())
        return found


def text_forms(text: str, *, with_base64: bool = True) -> dict[str, bytes]:
    raw = text.encode()
    forms = {
        "raw": raw,
        "URL-encoded": quote(text, safe="").encode(),
        "form-encoded": quote_plus(text, safe="").encode(),
        "Python repr": repr(text)[1:-1].encode(),
        "JSON-escaped": json.dumps(text)[1:-1].encode(),
        "JSON-escaped, slashes too": json.dumps(text)[1:-1].replace("/", "\\/").encode(),
        "HTML-escaped": html.escape(text).encode(),
        "hex": raw.hex().encode(),
        "upper-case hex": raw.hex().upper().encode(),
    }
    if with_base64:
        forms |= base64_forms(raw, "base64")
    return forms


def binary_forms(data: bytes, label: str) -> dict[str, bytes]:
    return {
        f"{label}, raw bytes": data,
        f"{label}, hex": data.hex().encode(),
        f"{label}, upper-case hex": data.hex().upper().encode(),
        **base64_forms(data, f"{label}, base64"),
    }


def base64_forms(data: bytes, label: str) -> dict[str, bytes]:
    """The base64 characters that encode ``data`` alone, at each of the three alignments it may have inside a
    longer encoded blob, in the standard and the URL-safe alphabets."""
    forms: dict[str, bytes] = {}
    for shift in range(3):
        encoded = base64.b64encode(bytes(shift) + data)
        # Character i encodes bits [6i, 6i + 6); keep those that lie wholly within ``data``'s bytes.
        first = -(-8 * shift // 6)
        last = (8 * (shift + len(data))) // 6
        middle = encoded[first:last]
        forms[f"{label} at byte offset {shift}"] = middle
        forms[f"{label} (URL-safe) at byte offset {shift}"] = middle.translate(bytes.maketrans(b"+/", b"-_"))
    return forms


# -- making canaries ----------------------------------------------------------------------------------------------


def token_canary(kind: str, hex_bytes: int = 20) -> Secret:
    """A text credential: ``canary-`` and random hex (anything passes as an AWS secret or a password)."""
    core = secrets.token_hex(hex_bytes)
    return Secret(kind, f"canary-{core}", core=core)


def key_canary(kind: str, size: int) -> Secret:
    """A base64 key of ``size`` random bytes (a backup KEK is 32, an Azure storage account key 64)."""
    material = os.urandom(size)
    text = base64.b64encode(material).decode()
    return Secret(kind, text, core=text.rstrip("="), material=material)


def sas_canary(kind: str, sas: str) -> Secret:
    """A SAS token (real or forged); its signature is the unique part."""
    signature = unquote(next(p[4:] for p in sas.split("&") if p.startswith("sig=")))
    try:
        material = base64.b64decode(signature, validate=True)
    except binascii.Error:
        material = b""
    return Secret(kind, sas, core=signature.rstrip("="), material=material)


def forged_sas() -> str:
    """A well-formed account SAS whose signature is random: Azurite refuses it (an auth error, never a 200)."""
    signature = quote(base64.b64encode(os.urandom(32)).decode(), safe="")
    return f"sv=2025-01-05&ss=b&srt=sco&sp=rwdlac&se=2099-12-31T23:59:59Z&spr=https,http&sig={signature}"


def well_known(kind: str, value: str, home: Path | None = None) -> Secret:
    """A lab secret that is not fresh but is used for real; base64 keys are searched as key material too."""
    try:
        material = base64.b64decode(value, validate=True) if len(value) >= 40 else b""
    except binascii.Error:
        material = b""
    return Secret(kind, value, fresh=False, core=value.rstrip("="), material=material, home=home)


# -- scanning -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Leak:
    kind: str
    form: str
    place: str
    where: str
    line: int
    offset: int
    excerpt: str

    def describe(self) -> str:
        fresh = "" if "well-known" not in self.kind else " (not fresh: another process may have written it)"
        return (
            f"{self.kind} ({self.form}) in {self.place}: {self.where}, line {self.line} "
            f"(byte {self.offset}){fresh}: …{self.excerpt}…"
        )


def _excerpt(data: bytes, at: int, length: int) -> str:
    before = data[max(0, at - EXCERPT) : at].decode(errors="replace")
    after = data[at + length : at + length + EXCERPT].decode(errors="replace")
    return f"{before}<LEAKED VALUE>{after}".replace("\n", "⏎")


def find_in(data: bytes, candidates: Sequence[Secret], place: str, where: str) -> list[Leak]:
    """The first (strongest) form of each secret found in ``data``."""
    leaks: list[Leak] = []
    for secret in candidates:
        for needle, form in secret.needles().items():
            at = data.find(needle)
            if at >= 0:
                line = data.count(b"\n", 0, at) + 1
                leaks.append(Leak(secret.kind, form, place, where, line, at, _excerpt(data, at, len(needle))))
                break
    return leaks


def sqlite_rows(path: Path) -> Iterator[tuple[str, int, bytes]]:
    """Every row of every table of the SQLite database at ``path`` (read-only) as (table, row number, bytes): a
    value longer than a page is stored split across overflow pages, where a byte search of the file cannot see it
    whole."""
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        tables = [str(r[0]) for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            quoted = table.replace('"', '""')
            # The table names come from sqlite_master, quoted: no value of the run is interpolated.
            for number, row in enumerate(conn.execute(f'SELECT * FROM "{quoted}"'), start=1):
                cells = [c if isinstance(c, bytes) else str(c).encode() for c in row if c is not None]
                yield table, number, b"\x1f".join(cells)
    finally:
        conn.close()


@dataclass
class TreeScan:
    files: int = 0
    bytes: int = 0
    leaks: list[Leak] = field(default_factory=list)


def scan_tree(
    root: Path,
    place: str,
    candidates: Sequence[Secret],
    *,
    since: float | None = None,
    prune: Iterable[str] = (),
    rows: bool = False,
) -> TreeScan:
    """Scan every regular file under ``root`` (those modified at or after ``since``, if given; never below a
    directory named in ``prune``), and with ``rows`` every row of each SQLite database there. Files that vanish
    while the tree is walked (another test's instance disk, say) are skipped: they held nothing of this run."""
    result = TreeScan()
    pruned = set(prune)
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in pruned]
        for name in filenames:
            path = Path(dirpath) / name
            try:
                info = path.stat()
                if not stat.S_ISREG(info.st_mode) or (since is not None and info.st_mtime < since):
                    continue
                data = path.read_bytes()
            except FileNotFoundError:
                continue
            result.files += 1
            result.bytes += len(data)
            here = [s for s in candidates if s.home is None or not path.is_relative_to(s.home)]
            result.leaks += find_in(data, here, place, str(path))
            if rows and data.startswith(SQLITE_MAGIC):
                for table, number, cells in sqlite_rows(path):
                    for leak in find_in(cells, here, place, f"{path} [table {table}]"):
                        result.leaks.append(
                            Leak(leak.kind, leak.form, leak.place, leak.where, number, leak.offset, leak.excerpt)
                        )
    return result
