"""The small HTTP plumbing app and web share: a threaded server on the instance's address, JSON answers."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Route = Callable[[], tuple[int, str, bytes]]


def json_body(status: int, document: Any) -> tuple[int, str, bytes]:
    return status, "application/json", json.dumps(document, default=str).encode()


def serve_routes(host: str, port: int, routes: dict[tuple[str, str], Route], stop: threading.Event) -> None:
    """Serve ``routes`` ((method, path) -> handler) until ``stop`` is set."""

    class Handler(BaseHTTPRequestHandler):
        def _answer(self, method: str) -> None:
            route = routes.get((method, self.path.split("?", 1)[0]))
            status, kind, body = route() if route else json_body(404, {"error": f"no route {method} {self.path}"})
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            self._answer("GET")

        def do_POST(self) -> None:
            self._answer("POST")

        def log_message(self, format: str, *args: Any) -> None:
            pass  # health probes every second would drown the instance log

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
    thread.start()
    print(f"listening on http://{host}:{port}/", flush=True)
    stop.wait()
    server.shutdown()
    server.server_close()
