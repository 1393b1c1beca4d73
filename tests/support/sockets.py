"""Bare HTTP/1.1 on real loopback sockets, for the cases httpx's MockTransport cannot show (it hands
whole bodies to its handler and has no network stream)."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

from mirror.http import HostSettings


def loopback_listener() -> socket.socket:
    """A listening socket on a free 127.0.0.1 port (`.getsockname()[1]` is the port)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    return listener


def serve_each(listener: socket.socket, handle: Callable[[socket.socket], None]) -> None:
    """Accept on `listener` until it is closed, each connection handled on a daemon thread of its own."""
    def accept() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()


@contextmanager
def serving(srv: Any, tls_dir: Path | None = None) -> Iterator[Any]:
    """`srv.handle(conn)` for every connection to a free 127.0.0.1 port, set as `srv.port`; with `tls_dir`,
    `srv.tls` is a server context for a test CA's certificate (made there) that `srv.handle` wraps its
    connections in, and `srv.ca_file` that CA, for the client."""
    if tls_dir is not None:
        from tests.support.registries import make_tls

        ca, crt, key = make_tls(tls_dir)
        srv.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        srv.tls.load_cert_chain(crt, key)
        srv.ca_file = str(ca)
    listener = loopback_listener()
    srv.port = listener.getsockname()[1]
    serve_each(listener, srv.handle)
    try:
        yield srv
    finally:
        listener.close()


def client_settings(srv: Any) -> HostSettings:
    """How a client reaches a server of `serving`: its CA over TLS, else plain HTTP."""
    return HostSettings(ca_file=srv.ca_file) if srv.tls else HostSettings(plain_http=True)


def read_request(f: BinaryIO) -> tuple[str, str, dict[str, str]] | None:
    """(method, target, lower-cased headers) of the next request on a server-side socket file; None when
    the client closed the connection. The body, if any, is left to read."""
    line = f.readline()
    if not line:
        return None
    method, target = line.decode().split()[:2]
    headers: dict[str, str] = {}
    while (h := f.readline()) not in (b"\r\n", b""):
        k, _, v = h.decode().partition(":")
        headers[k.strip().lower()] = v.strip()
    return method, target, headers


def pump(src: socket.socket, dst: socket.socket, *, size: int = 1 << 16,
         pace: Callable[[int], None] | None = None) -> None:
    """Copy src to dst until either side closes, then shut both down (the proxies of the tests). `pace`
    is called with each chunk's length after it is sent (a throttle)."""
    try:
        while data := src.recv(size):
            dst.sendall(data)
            if pace is not None:
                pace(len(data))
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
