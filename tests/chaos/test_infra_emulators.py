"""The restart harness itself: a graceful stop must give the emulator its shutdown, every time.

A stand-in emulator (a few lines of Python) saves on SIGTERM, slowly, then says it closed and lingers with its
work done, as Azurite does. If the harness took an earlier stop's "closed" line for this one, it would SIGKILL
before the save, and the chaos suite would blame drctl for writes the harness threw away.
"""

from __future__ import annotations

import sys
from pathlib import Path

from tests.chaos.infra_emulators import PrivateEmulator

CLOSED = "stand-in successfully closed"

STAND_IN = f"""
import pathlib, signal, sys, time

saves = pathlib.Path(sys.argv[1])
ready = pathlib.Path(sys.argv[2])

def shut_down(signum, frame):
    time.sleep(0.5)  # the save takes a while, as a big metadata file does
    with saves.open("a") as out:
        out.write("saved\\n")
    print({CLOSED!r}, flush=True)
    time.sleep(60)  # lingers, as Azurite does: only the harness's SIGKILL ends it

signal.signal(signal.SIGTERM, shut_down)
ready.touch()
while True:
    time.sleep(1)
"""


def test_each_graceful_stop_waits_for_its_own_shutdown(tmp_path: Path) -> None:
    script = tmp_path / "stand_in.py"
    script.write_text(STAND_IN)
    saves, ready = tmp_path / "saves", tmp_path / "ready"

    def is_ready() -> bool:
        return ready.exists()

    emulator = PrivateEmulator(
        "stand-in",
        [sys.executable, str(script), str(saves), str(ready)],
        {},
        tmp_path,
        ready=is_ready,
        ready_timeout_s=30,
        closed_marker=CLOSED,
    )
    try:
        emulator.start()
        for restart in range(1, 4):
            ready.unlink()
            emulator.restart(graceful=True)
            assert saves.read_text().splitlines() == ["saved"] * restart, f"restart {restart} was not graceful"
    finally:
        emulator.close()
