"""Public-key encryption of a set's data with age (through pyrage): writers hold only recipients.

A set made with ``--recipient age1...`` seals every blob's random file key to those recipients (blob format
``DRCTLE3``). Opening a blob needs an age identity (``AGE-SECRET-KEY-1...``), which the hosts that write
backups never hold: a compromised production host can add backups but cannot read any back. Identity files
are age's own format (``age-keygen`` writes them; so does ``drctl backup keygen --identity``), so the same
identity opens the set with drctl or decrypts a blob's key with the age tool.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.backup.sealed_stream import OpenKey, SealKey
from orchestrator.errors import IntegrityError, InvalidInput, WrongKey

DEFAULT_IDENTITY_ENV = "DRCTL_BACKUP_IDENTITY"
MAX_RECIPIENTS = 20


def _pyrage() -> Any:
    # Imported on first use: only a set with recipients needs it.
    import pyrage

    return pyrage


def check_recipients(texts: Iterable[str]) -> tuple[str, ...]:
    """The recipients as given, each parsed by age; a bad one is named (a public key is not a secret)."""
    recipients = tuple(dict.fromkeys(t.strip() for t in texts))
    if len(recipients) > MAX_RECIPIENTS:
        raise InvalidInput(f"at most {MAX_RECIPIENTS} recipients per set; {len(recipients)} were given")
    pyrage = _pyrage()
    for text in recipients:
        try:
            pyrage.x25519.Recipient.from_str(text)
        except pyrage.RecipientError as exc:
            raise InvalidInput(
                f"{text!r} is not an age X25519 recipient ({exc}); it looks like age1... (drctl backup keygen "
                "--identity FILE prints one)"
            ) from exc
    return recipients


def sealer(recipients: tuple[str, ...]) -> SealKey:
    pyrage = _pyrage()
    parsed = [pyrage.x25519.Recipient.from_str(r) for r in recipients]

    def seal(file_key: bytes) -> bytes:
        sealed: bytes = pyrage.encrypt(file_key, parsed)
        return sealed

    return seal


def _identities(text: str, origin: str) -> list[Any]:
    pyrage = _pyrage()
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            found.append(pyrage.x25519.Identity.from_str(line))
        except pyrage.IdentityError as exc:
            # The line may be a mangled secret: name where it is, never what it says.
            raise InvalidInput(f"line {number} of {origin} is not an age identity (AGE-SECRET-KEY-1...)") from exc
    if not found:
        raise InvalidInput(f"{origin} holds no age identity (AGE-SECRET-KEY-1...)")
    return found


@dataclass(frozen=True)
class IdentitySource:
    """Where a reader's age identities come from: a file (age's format), or an environment variable."""

    identity_file: Path | None = None
    identity_env: str | None = None

    def opener(self, env: Mapping[str, str], recipients: tuple[str, ...]) -> OpenKey:
        """Opens sealed file keys; the identities are read at the first blob, so writers never need them.
        Knowing the set's ``recipients`` tells a wrong identity (``WrongKey``) from a damaged sealed key
        (``IntegrityError``), which age alone reports alike ("no matching keys")."""
        loaded: list[list[Any]] = []

        def open_key(wrapped: bytes) -> bytes:
            if not loaded:
                identities = self._load(env)
                if recipients and not any(str(i.to_public()) in recipients for i in identities):
                    raise WrongKey(
                        f"no age identity given belongs to this set's recipients ({', '.join(recipients)}); pass "
                        "one that does"
                    )
                loaded.append(identities)
            pyrage = _pyrage()
            try:
                key: bytes = pyrage.decrypt(wrapped, loaded[0])
            except pyrage.DecryptError as exc:
                raise IntegrityError(
                    f"a blob's sealed key does not open with the set's identity ({exc}): corrupt or tampered"
                ) from exc
            if len(key) != 32:
                raise IntegrityError("a blob's sealed key is not a 32-byte file key: corrupt or tampered")
            return key

        return open_key

    def _load(self, env: Mapping[str, str]) -> list[Any]:
        if self.identity_file is not None:
            try:
                text = self.identity_file.read_text()
            except (OSError, UnicodeDecodeError) as exc:
                raise InvalidInput(
                    f"cannot read the identity file {self.identity_file}: {exc}; check the path"
                ) from exc
            return _identities(text, f"identity file {self.identity_file}")
        name = self.identity_env or DEFAULT_IDENTITY_ENV
        value = env.get(name)
        if not value:
            raise WrongKey(
                f"this set's data is encrypted to age recipients; pass an identity with --identity-file, or in "
                f"the environment variable {name}"
            )
        return _identities(value, f"environment variable {name}")


def new_identity() -> tuple[str, str]:
    """A fresh X25519 identity and its recipient, as text."""
    identity = _pyrage().x25519.Identity.generate()
    return str(identity), str(identity.to_public())
