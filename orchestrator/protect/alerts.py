"""Lag alerts: one when the lag passes the objective, one resolve when it is back within it.

Each goes to the service's log, and to a Slack-compatible webhook when one is given. A webhook that fails
is counted and logged, never fatal: the service's job is the backups, and the metrics still show the lag.
"""

from __future__ import annotations

from collections.abc import Callable

from orchestrator.errors import DrError
from orchestrator.webhook import post_text


class LagAlerts:
    def __init__(
        self,
        set_url: str,
        rpo_s: float,
        log: Callable[[str], None],
        webhook: str | None = None,
        on_error: Callable[[str], None] = lambda _: None,
    ) -> None:
        self._set = set_url
        self._rpo = rpo_s
        self._log = log
        self._webhook = webhook
        self._on_error = on_error
        self.firing = False

    def check(self, lag_s: float) -> None:
        if not self.firing and lag_s > self._rpo:
            self.firing = True
            self._send(
                f"ALERT drctl protect: {self._set} lags {lag_s:.0f}s behind its source, past its RPO of {self._rpo:g}s"
            )
        elif self.firing and lag_s <= self._rpo:
            self.firing = False
            self._send(
                f"RESOLVED drctl protect: {self._set} is back within its RPO of {self._rpo:g}s (lag {lag_s:.0f}s)"
            )

    def _send(self, text: str) -> None:
        self._log(text)
        if self._webhook is None:
            return
        try:
            post_text(self._webhook, text, timeout=10.0)
        except DrError as err:
            self._on_error("alert")
            self._log(f"the alert webhook failed: {err}")
