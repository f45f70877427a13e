"""A directory on the local filesystem as an ``ObjectStore``.

Writes go to a hidden temporary file beside their target and are renamed into place, so a crash never leaves
a half-written object under its real name (only a hidden ``.*.drctl-part`` file, which is never listed). User
metadata lives in a sidecar tree, because extended attributes are not portable across filesystems; that tree
is reserved and never listed. The root is created by the first write, so a failed command leaves no directory.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import stat
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, TypeVar

from orchestrator.errors import InvalidInput, NotFound, Permanent, PermissionDenied
from orchestrator.providers.base import HashType, ObjectInfo, ObjectReader, Readable
from orchestrator.providers.streams import IteratorReader, iter_chunks

_META_DIR = ".drctl-meta"
_PART = re.compile(r"^\..*\.[0-9a-f]{16}\.drctl-part$")
_CHUNK = 1024 * 1024
T = TypeVar("T")


def _escapes(key: str) -> bool:
    return not key or key.startswith("/") or "\0" in key or any(p in ("", ".", "..") for p in key.split("/"))


class LocalStore:
    """Objects as files under ``root``; a key's ``/`` separators become directories."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    @property
    def url(self) -> str:
        return f"file://{self.root}"

    @property
    def native_hashes(self) -> frozenset[HashType]:
        return frozenset()

    def key_problem(self, key: str) -> str | None:
        # A key becomes a path, so one that could leave the root is refused before a restore writes anything.
        # A backslash is refused there too: on Windows it would be a separator, and a set may be restored there.
        if _escapes(key) or "\\" in key:
            return "would escape the target"
        return None

    def _path(self, key: str) -> Path:
        parts = key.split("/")
        if _escapes(key):
            raise InvalidInput(f"object key {key!r} would escape or is not a valid path under {self.root}")
        if parts[0] == _META_DIR or _PART.match(parts[-1]):
            raise InvalidInput(f"object key {key!r} uses a name drctl reserves for its own files; rename it")
        return self.root.joinpath(*parts)

    def _meta_path(self, key: str) -> Path:
        return self.root / _META_DIR / (key + ".json")

    def ensure_root(self) -> None:
        if not _fs(str(self.root), self.root.is_dir):
            raise NotFound(f"directory {self.root} does not exist; create it or fix the location")

    def create_root(self) -> None:
        _fs(str(self.root), lambda: self.root.mkdir(parents=True, exist_ok=True))

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        self.ensure_root()
        # Start from the deepest directory the prefix names fully; the rest of the prefix filters names.
        base_parts = prefix.split("/")[:-1]
        start = self.root.joinpath(*base_parts) if base_parts else self.root
        keys: list[str] = []
        for dirpath, dirnames, filenames in os.walk(start):
            rel_dir = Path(dirpath).relative_to(self.root).as_posix()
            if rel_dir == ".":
                dirnames[:] = [d for d in dirnames if d != _META_DIR]
                rel_dir = ""
            for name in filenames:
                if _PART.match(name):
                    continue
                if not _utf8(name):
                    raise InvalidInput(
                        f"file {os.path.join(dirpath, name)!r} has a name that is not UTF-8; rename it or --exclude it"
                    )
                key = f"{rel_dir}/{name}" if rel_dir else name
                if key.startswith(prefix):
                    keys.append(key)
        for key in sorted(keys):
            with contextlib.suppress(NotFound):  # deleted while we listed: not an object any more
                yield self._file_info(key)

    def _file_info(self, key: str) -> ObjectInfo:
        """Size, time and etag from one ``stat``; no metadata, which would cost a sidecar read per file."""
        try:
            st = self._path(key).stat()
        except OSError as exc:
            raise _translate(exc, f"{self.url}/{key}") from exc
        if not stat.S_ISREG(st.st_mode):
            raise NotFound(f"{self.url}/{key} does not exist")
        return ObjectInfo(
            key=key,
            size=st.st_size,
            modified=datetime.fromtimestamp(st.st_mtime, UTC),
            etag=f"{st.st_mtime_ns:x}-{st.st_size:x}",
        )

    def stat(self, key: str) -> ObjectInfo:
        info = self._file_info(key)
        try:
            meta = json.loads(self._meta_path(key).read_text())
        except FileNotFoundError:
            return info
        except (OSError, ValueError) as exc:
            raise Permanent(f"the metadata of {self.url}/{key} ({self._meta_path(key)}) is unreadable: {exc}") from exc
        return replace(info, metadata=meta)

    def open_read(self, key: str, start: int = 0, length: int | None = None) -> ObjectReader:
        path = self._path(key)
        try:
            f = path.open("rb")
        except OSError as exc:
            raise _translate(exc, f"{self.url}/{key}") from exc
        f.seek(start)

        def chunks() -> Iterator[bytes]:
            remaining = length
            while remaining is None or remaining > 0:
                want = _CHUNK if remaining is None else min(_CHUNK, remaining)
                data = _fs(f"{self.url}/{key}", lambda n=want: f.read(n))  # type: ignore[misc]
                if not data:
                    return
                if remaining is not None:
                    remaining -= len(data)
                yield data

        return IteratorReader(chunks(), on_close=f.close)

    def write(self, key: str, source: Readable, *, metadata: Mapping[str, str] | None = None) -> ObjectInfo:
        path = self._path(key)
        name = f"{self.url}/{key}"
        # Each write has its own temporary file in the target's directory: writers never share anything but
        # directories, which they only ever create (never remove), so parallel writes cannot collide.
        tmp = path.parent / f".{path.name[:100]}.{secrets.token_hex(8)}.drctl-part"
        out = _fs(name, lambda: _open_creating_parents(tmp))
        try:
            with out:
                # Only our own filesystem calls are translated: an error raised by the source is the caller's.
                for chunk in iter_chunks(source, _CHUNK):
                    _fs(name, lambda c=chunk: out.write(c))  # type: ignore[misc]
                _fs(name, out.flush)
                _fs(name, lambda: os.fsync(out.fileno()))
            _fs(name, lambda: self._write_meta(key, metadata or {}))
            _fs(name, lambda: os.replace(tmp, path))
        finally:
            tmp.unlink(missing_ok=True)
        return self.stat(key)

    def _write_meta(self, key: str, metadata: Mapping[str, str]) -> None:
        meta_path = self._meta_path(key)
        if not metadata:
            meta_path.unlink(missing_ok=True)
            return
        meta_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = meta_path.with_suffix(f".{secrets.token_hex(4)}.tmp")
        tmp.write_text(json.dumps(dict(metadata), sort_keys=True))
        os.replace(tmp, meta_path)

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            path.unlink(missing_ok=True)
            self._meta_path(key).unlink(missing_ok=True)
        except OSError as exc:
            raise _translate(exc, f"{self.url}/{key}") from exc
        # Tidy now-empty directories so the tree mirrors the keys that exist.
        parent = path.parent
        while parent != self.root:
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent

    def set_metadata(self, key: str, metadata: Mapping[str, str]) -> None:
        self.stat(key)
        try:
            self._write_meta(key, metadata)
        except OSError as exc:
            raise _translate(exc, f"{self.url}/{key}") from exc


def _utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes that os.walk smuggled in as surrogates
        return False
    return True


def _open_creating_parents(path: Path) -> BinaryIO:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return path.open("wb")
    except FileNotFoundError:
        # A concurrent delete tidied the (then empty) directory away between our mkdir and open: once more.
        path.parent.mkdir(parents=True, exist_ok=True)
        return path.open("wb")


def _fs(what: str, fn: Callable[[], T]) -> T:
    try:
        return fn()
    except OSError as exc:
        raise _translate(exc, what) from exc


def _translate(exc: OSError, what: str) -> Permanent:
    if isinstance(exc, FileNotFoundError | NotADirectoryError):
        return NotFound(f"{what} does not exist")
    if isinstance(exc, PermissionError):
        return PermissionDenied(f"permission denied on {what}; fix the directory's owner or mode")
    return Permanent(f"filesystem error on {what}: {exc.strerror or exc}")
