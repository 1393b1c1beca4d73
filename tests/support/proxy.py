"""A forward proxy for HTTPS on loopback (CONNECT tunnels only, like most corporate proxies for TLS), that
records which host:port each tunnel went to."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from tests.support.sockets import loopback_listener, pump, serve_each


@contextmanager
def connect_proxy() -> Iterator[tuple[str, list[str]]]:
    """Yields (proxy URL, list of the CONNECT targets seen so far)."""
    listener = loopback_listener()
    seen: list[str] = []

    def handle(conn: socket.socket) -> None:
        f = conn.makefile("rb")
        line = f.readline().decode()
        while f.readline() not in (b"\r\n", b""):
            pass
        method, target = [*line.split(), "", ""][:2]
        if method != "CONNECT":
            conn.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            conn.close()
            return
        seen.append(target)
        host, _, port = target.rpartition(":")
        upstream = socket.create_connection((host, int(port)))
        conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        threading.Thread(target=pump, args=(upstream, conn), daemon=True).start()
        pump(conn, upstream)

    serve_each(listener, handle)
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}", seen
    finally:
        listener.close()
