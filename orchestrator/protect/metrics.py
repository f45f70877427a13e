"""``drctl protect``'s state as Prometheus metrics, served on ``--metrics-addr`` in the text format.

The lag and the last point's age are computed when scraped, so they keep growing while the service is stuck
(an unreachable vault, a copy that hangs): exactly when someone needs to see them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server


class ProtectMetrics:
    def __init__(self, set_url: str, rpo_s: float, lag: Callable[[], float], last_point_age: Callable[[], float]):
        self.registry = CollectorRegistry()
        labels = {"set": set_url}

        def gauge(name: str, doc: str) -> Gauge:
            return Gauge(name, doc, list(labels), registry=self.registry).labels(**labels)

        gauge("drctl_protect_rpo_objective_seconds", "The RPO objective the service keeps the set within.").set(rpo_s)
        gauge("drctl_protect_lag_seconds", "Age of the oldest source change not yet in a sealed point.").set_function(
            lag
        )
        gauge("drctl_protect_last_point_age_seconds", "Seconds since the newest point was sealed.").set_function(
            last_point_age
        )
        self.feasible = gauge(
            "drctl_protect_objective_feasible", "1 when the measured copy time lets the schedule meet the RPO."
        )
        self.points = Counter(
            "drctl_protect_points", "Recovery points sealed.", list(labels), registry=self.registry
        ).labels(**labels)
        self.bytes = Counter(
            "drctl_protect_bytes", "Bytes copied into the set.", list(labels), registry=self.registry
        ).labels(**labels)
        self._errors = Counter(
            "drctl_protect_errors", "Failed attempts, by kind of error.", [*labels, "kind"], registry=self.registry
        )
        self._set = set_url
        self._server: WSGIServer | None = None

    def error(self, kind: str) -> None:
        self._errors.labels(set=self._set, kind=kind).inc()

    def serve(self, address: str) -> int:
        """Serve ``/metrics`` on ``HOST:PORT`` (port 0 picks a free one); returns the port."""
        host, _, port = address.rpartition(":")
        server, _ = start_http_server(int(port), host.strip("[]") or "127.0.0.1", registry=self.registry)
        self._server = server
        return int(server.server_port)

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


def age_since(moment: float | None, clock: Callable[[], float] = time.time) -> float:
    """Seconds since ``moment`` (a wall-clock timestamp); 0 when there is none."""
    return max(0.0, clock() - moment) if moment is not None else 0.0
