"""How each step's path has been verified, for the report: ``lab`` (exercised on the emulators, the lab's
PostgreSQL and instance runner, by the suite), ``unit`` (only against fakes or recorded requests, because no
emulator exists) or ``unverified``. The README's table says the same, action by action."""

from __future__ import annotations

from typing import Literal

Verified = Literal["lab", "unit", "unverified"]

BY_ACTION: dict[str, Verified] = {
    "backup.copy": "lab",
    "backup.verify": "lab",
    "backup.restore": "lab",
    "db.restore": "lab",
    "db.check": "lab",
    "http.check": "lab",
    "shell": "lab",
    "wait": "lab",
    "notify": "lab",
}
AZURE_PLACES = frozenset({"azure", "azure_dns", "traffic_manager"})
"""Where no emulator exists: Azure compute, Azure DNS and Traffic Manager are tested with the SDK's transport
faked, and against a subscription only when one is configured."""


def verification(action: str | None, place: str | None) -> Verified:
    """The label of a step running ``action`` at ``place`` (its ``cloud`` or DNS ``provider``; None: the default,
    AWS or Route53)."""
    if action is None:
        return "unverified"
    if action.startswith(("compute.", "image.", "dns.")):
        return "unit" if place in AZURE_PLACES else "lab"
    return BY_ACTION.get(action, "unverified")
