from __future__ import annotations

import io

from rich.console import Console

from orchestrator.engine.events import RunEvent
from orchestrator.engine.live import LiveView


def test_the_live_view_shows_each_step_with_its_state_and_time() -> None:
    out = io.StringIO()
    now = [0.0]
    console = Console(file=out, force_terminal=True, width=120)
    view = LiveView(console, [("copy", 1), ("start-db", 2)], lambda: now[0])
    with view:
        now[0] = 1.0
        view(RunEvent("r1", "running", "started", "copy"))
        now[0] = 3.5
        view(RunEvent("r1", "succeeded", '{"recovery_point": "p1"}', "copy"))
        view(RunEvent("r1", "running", "started", "start-db"))
        now[0] = 4.0
        view(RunEvent("r1", "finished", "run succeeded"))
    final = Console(file=io.StringIO(), width=120, record=True)
    final.print(view.render())
    text = final.export_text()
    assert "succeeded" in text
    assert "2.5s" in text  # copy ran from t=1.0 to t=3.5
    assert "0.5s" in text  # start-db has been running since t=3.5
    assert "running" in text
    assert "run succeeded" in text
    assert out.getvalue()  # something was drawn on the terminal while it ran
