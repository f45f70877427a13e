"""Print the chaos figures at the end of any pytest run that collected the chaos suite."""

from __future__ import annotations

import pytest

from tests.chaos.figures import FIGURES, full_scale


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not FIGURES:
        return
    scale = "full (make chaos)" if full_scale() else "short (the make test subset)"
    terminalreporter.write_sep("=", f"chaos figures, {scale} scale")
    for name in sorted(FIGURES):
        terminalreporter.write_line(FIGURES[name].line())
