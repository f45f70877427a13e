"""Loopback ports nothing listens on, for servers a test starts and for endpoints that must refuse."""

from __future__ import annotations

import socket


def free_ports(count: int) -> list[int]:
    """``count`` different ports free now (the sockets are held together so the ports differ)."""
    socks = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


def free_port() -> int:
    """One port nothing listens on: a server may take it, and a client's connection to it is refused."""
    return free_ports(1)[0]
