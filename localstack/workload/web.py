"""The web tier: the shop's page, rendered from what the app tier answers."""

from __future__ import annotations

import html
import json
import threading
import urllib.error
import urllib.request
from typing import Any

from localstack.workload.http import Route, json_body, serve_routes
from localstack.workload.identity import Identity, peer_address


def app_get(me: Identity, path: str, app_port: int) -> tuple[int, Any]:
    """GET ``path`` from this network's app tier: (status, decoded JSON); 502 when no app answers."""
    app = peer_address(me, "app")
    if app is None:
        return 502, {"error": "no running app instance in this network yet"}
    try:
        with urllib.request.urlopen(f"http://{app}:{app_port}{path}", timeout=5) as answer:
            return int(answer.status), json.loads(answer.read())
    except urllib.error.HTTPError as err:
        return err.code, {"error": f"app answered {err.code}"}
    except (OSError, ValueError) as err:
        return 502, {"error": f"app unreachable ({err.__class__.__name__})"}


def page(summary: dict[str, Any]) -> bytes:
    rows = "".join(
        f"<tr><td>{o['id']}</td><td>{html.escape(str(o['customer']))}</td><td>{o['amount_cents'] / 100:.2f}</td>"
        f"<td>{html.escape(str(o['committed_at']))}</td></tr>"
        for o in summary.get("latest", [])
    )
    orders = summary.get("orders", {})
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>drctl demo shop</title></head><body>"
        "<h1>drctl demo shop</h1>"
        f"<p>{orders.get('count', 0)} orders; the newest committed at "
        f"{html.escape(str(orders.get('latest_committed_at')))}</p>"
        f"<table><tr><th>order</th><th>customer</th><th>amount</th><th>committed</th></tr>{rows}</table>"
        "</body></html>"
    ).encode()


def serve(port: int, app_port: int, stop: threading.Event) -> None:
    me = Identity.from_env()

    def index() -> tuple[int, str, bytes]:
        status, summary = app_get(me, "/api/orders/summary", app_port)
        if status != 200:
            return status, "text/plain", f"the shop is unavailable: {summary.get('error')}\n".encode()
        return 200, "text/html; charset=utf-8", page(summary)

    def api_summary() -> tuple[int, str, bytes]:
        return json_body(*app_get(me, "/api/orders/summary", app_port))

    def health() -> tuple[int, str, bytes]:
        status, answer = app_get(me, "/healthz", app_port)
        return json_body(200 if status == 200 else 503, {"ok": status == 200, "app": answer})

    routes: dict[tuple[str, str], Route] = {("GET", "/"): index, ("GET", "/api/summary"): api_summary}
    routes[("GET", "/healthz")] = health
    serve_routes(me.private_ip, port, routes, stop)
