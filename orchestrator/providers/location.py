"""Parse the locations users type (``s3://bucket/prefix``, ``az://container/prefix``, ``file:///path`` or a
plain path) in one place, with errors that say what is wrong and what a valid location looks like."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import unquote

from orchestrator.errors import InvalidInput

Scheme = Literal["s3", "az", "file"]

_S3_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_AZ_CONTAINER = re.compile(r"^[a-z0-9](?:[a-z0-9]|-(?!-)){1,61}[a-z0-9]$")
_EXAMPLES = "s3://bucket/prefix, az://container/prefix, file:///abs/path or a plain path"


@dataclass(frozen=True)
class Location:
    """A parsed location. ``root`` is the bucket, container or absolute directory; ``prefix`` ends in ``/``
    or is empty, so ``prefix + key`` is always the full name."""

    scheme: Scheme
    root: str
    prefix: str = ""

    def __str__(self) -> str:
        if self.scheme == "file":
            return f"file://{self.root}" + (f"/{self.prefix}" if self.prefix else "")
        return f"{self.scheme}://{self.root}/{self.prefix}"


def _normal_prefix(raw: str, text: str) -> str:
    prefix = raw.lstrip("/")
    if not prefix:
        return ""
    parts = prefix.rstrip("/").split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise InvalidInput(f"location {text!r} has an empty, '.' or '..' path segment; remove it")
    return "/".join(parts) + "/"


def parse_location(text: str) -> Location:
    """Parse ``text`` or raise ``InvalidInput`` naming the problem and the accepted forms."""
    try:
        return _parse(text)
    except (OSError, RuntimeError, ValueError) as exc:
        # Path resolution: unknown ~user, symlink loops, names too long, NUL bytes.
        raise InvalidInput(f"location {text!r} is not a usable path ({exc}); fix the path") from exc


def _parse(text: str) -> Location:
    if not text or text.strip() != text:
        raise InvalidInput(f"location {text!r} is empty or has surrounding spaces; use {_EXAMPLES}")
    scheme, sep, rest = text.partition("://")
    if not sep:
        if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", text) and not Path(text).exists():
            raise InvalidInput(f"location {text!r} is missing '//' after the scheme; use {_EXAMPLES}")
        return Location("file", str(Path(text).expanduser().resolve()))
    scheme = scheme.lower()
    if scheme == "file":
        path = unquote(rest)
        if not path.startswith("/"):
            raise InvalidInput(f"location {text!r} must be an absolute path, e.g. file:///srv/backups")
        return Location("file", str(Path(path).resolve()))
    if scheme not in ("s3", "az"):
        raise InvalidInput(f"location {text!r} has unknown scheme {scheme!r}; use {_EXAMPLES}")
    root, _, path = rest.partition("/")
    if scheme == "s3":
        if not _S3_BUCKET.match(root) or ".." in root:
            raise InvalidInput(
                f"location {text!r}: {root!r} is not a valid S3 bucket name "
                "(3-63 lowercase letters, digits, '.' or '-')"
            )
        return Location("s3", root, _normal_prefix(path, text))
    if not _AZ_CONTAINER.match(root):
        raise InvalidInput(
            f"location {text!r}: {root!r} is not a valid Azure container name "
            "(3-63 lowercase letters, digits or single '-', starting and ending with a letter or digit)"
        )
    return Location("az", root, _normal_prefix(path, text))
