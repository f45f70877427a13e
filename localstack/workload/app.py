"""The app tier: orders over the database, and (on the primary) the writer that keeps committing them."""

from __future__ import annotations

import os
import random
import threading
import time
from typing import Any

import psycopg

from localstack.pg import DB_NAME, DB_USER, PASSWORD_VAR
from localstack.workload.db import PORT as DB_PORT
from localstack.workload.http import Route, json_body, serve_routes
from localstack.workload.identity import Identity, peer_address


class Orders:
    """The shop's orders, in whichever database the db tier of this VPC (and drill) serves."""

    def __init__(self, me: Identity, password: str) -> None:
        self._me = me
        self._password = password
        self._db: str | None = None

    def connect(self) -> psycopg.Connection[Any]:
        # The address is looked up again after a failure: a db that was replaced has a new one.
        if self._db is None:
            self._db = peer_address(self._me, "db")
        if self._db is None:
            raise ConnectionError("no running db instance in this network yet")
        try:
            return psycopg.connect(
                host=self._db, port=DB_PORT, user=DB_USER, password=self._password, dbname=DB_NAME, connect_timeout=3
            )
        except psycopg.OperationalError:
            self._db = None
            raise

    def summary(self) -> dict[str, Any]:
        with self.connect() as conn:
            count, latest = conn.execute("SELECT count(*), max(committed_at) FROM orders").fetchone() or (0, None)
            rows = conn.execute(
                "SELECT id, customer, amount_cents, committed_at FROM orders ORDER BY committed_at DESC LIMIT 5"
            ).fetchall()
        return {
            "orders": {"count": count, "latest_committed_at": latest.isoformat() if latest else None},
            "latest": [{"id": r[0], "customer": r[1], "amount_cents": r[2], "committed_at": r[3]} for r in rows],
            "db": self._db,
        }

    def place(self, customer: str, amount_cents: int) -> int:
        with self.connect() as conn:
            row = conn.execute(
                "INSERT INTO orders (customer, amount_cents) VALUES (%s, %s) RETURNING id", (customer, amount_cents)
            ).fetchone()
        return int(row[0]) if row else 0


def writer(orders: Orders, rate: float, stop: threading.Event) -> None:
    """Commit ``rate`` orders a second, each stamped with its commit time by the database."""
    placed, failures = 0, 0
    while not stop.wait(1.0 / rate):
        try:
            orders.place(f"customer-{random.randrange(97)}", random.randrange(100, 10_000))  # noqa: S311 - demo data
            placed += 1
        except (psycopg.Error, ConnectionError) as err:
            failures += 1
            if failures % 20 == 1:
                print(f"app: writer could not commit ({err.__class__.__name__}); retrying", flush=True)
        if placed and placed % 200 == 0:
            print(f"app: writer committed {placed} orders", flush=True)


def serve(port: int, writer_rate: float, stop: threading.Event) -> None:
    me = Identity.from_env()
    orders = Orders(me, os.environ[PASSWORD_VAR])

    def health() -> tuple[int, str, bytes]:
        try:
            with orders.connect() as conn:
                conn.execute("SELECT 1")
        except (psycopg.Error, ConnectionError) as err:
            return json_body(503, {"ok": False, "error": err.__class__.__name__})
        return json_body(200, {"ok": True, "db": orders._db})

    def summary() -> tuple[int, str, bytes]:
        try:
            return json_body(200, orders.summary())
        except (psycopg.Error, ConnectionError) as err:
            return json_body(503, {"error": err.__class__.__name__})

    def place() -> tuple[int, str, bytes]:
        try:
            return json_body(201, {"id": orders.place("web", 1234)})
        except (psycopg.Error, ConnectionError) as err:
            return json_body(503, {"error": err.__class__.__name__})

    routes: dict[tuple[str, str], Route] = {
        ("GET", "/healthz"): health,
        ("GET", "/api/orders/summary"): summary,
        ("POST", "/api/orders"): place,
    }
    if writer_rate > 0:
        threading.Thread(target=writer, args=(orders, writer_rate, stop), daemon=True).start()
        print(f"app: writer committing {writer_rate:g} orders/s", flush=True)
    started = time.monotonic()
    serve_routes(me.private_ip, port, routes, stop)
    print(f"app: stopped after {time.monotonic() - started:.0f}s", flush=True)
