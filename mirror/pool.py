"""The connection pool under the one httpx client: idle HTTP/1.1 connections kept per origin, taken and
given back in O(1).

Why hand-written: httpcore 1.0's ConnectionPool, which httpx uses, re-examines every connection for every
queued request under one lock, and on each request start and end (O(N^2 + N*M); encode/httpcore#1035 and
#1110, still open; pydantic/httpx2 rewrote it the same way). With the 32 threads that export and import run
for manifests and small blobs and a 64-connection pool, that bookkeeping cost more CPU than the requests:
an export of 1000 small images spent most of its time queued on that lock. The connections themselves
stay httpcore's (`httpcore.HTTPConnection`: h11, TLS, keep-alive expiry), and so do httpx's request and
error mapping; only the choice of a connection is done here, and their sockets come from httpcore's own
backend wrapped in a stream that can send a body chunk from a file (`_Stream`, see mirror.filesend).
Proxied hosts keep httpcore's own pool (`httpcore.HTTPProxy`), whose connections tunnel.
"""

from __future__ import annotations

import os
import select
import ssl
import threading
import time
from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import Any

import httpcore

from . import filesend

_Key = tuple[bytes, bytes, int]


class Pool:
    """What httpx.HTTPTransport expects of its pool: handle_request(), close(), a context manager.

    The cap is per origin, not for all together (httpcore's): a copy holds its source's response open
    while it waits for a connection to the target, always in that order, so with a budget per origin no
    number of threads can hold every connection of one while waiting for the other.
    """

    def __init__(self, *, ssl_context: ssl.SSLContext | None, max_connections: int,
                 keepalive_expiry: float | None, socket_options: Iterable[Any] | None = None) -> None:
        self._ssl_context = ssl_context
        self._max = max(1, max_connections)
        self._keepalive_expiry = keepalive_expiry
        self._socket_options = socket_options
        self._cond = threading.Condition()
        # keyed by (scheme, host, port): httpcore.Origin compares equal but does not hash
        self._idle: dict[_Key, list[httpcore.HTTPConnection]] = {}
        self._open: dict[httpcore.HTTPConnection, _Key] = {}     # idle and in use
        self._count: dict[_Key, int] = {}                        # of those, per origin: capped at max
        self._closed = False

    # -- taking and giving back --------------------------------------------------------------------------
    def _take(self, origin: httpcore.Origin, timeout: float | None) -> httpcore.HTTPConnection:
        key = (origin.scheme, origin.host, origin.port)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._cond:
                while True:
                    if self._closed:
                        raise RuntimeError("the connection pool is closed")
                    stack = self._idle.get(key)
                    if stack:
                        conn = stack.pop()              # the most recently used: the least likely expired
                        break
                    if self._count.get(key, 0) < self._max:
                        conn = self._new(origin)
                        self._open[conn] = key
                        self._count[key] = self._count.get(key, 0) + 1
                        return conn
                    left = None if deadline is None else deadline - time.monotonic()
                    if left is not None and left <= 0:
                        raise httpcore.PoolTimeout("no connection became free in time")
                    self._cond.wait(left)
            # Outside the lock: the expiry check polls the socket (the server may have closed it).
            if not conn.has_expired():
                return conn
            conn.close()
            self._forget(conn)

    def _new(self, origin: httpcore.Origin) -> httpcore.HTTPConnection:
        return httpcore.HTTPConnection(origin, ssl_context=self._ssl_context, keepalive_expiry=self._keepalive_expiry,
                                       socket_options=self._socket_options, network_backend=_BACKEND)

    def _forget(self, conn: httpcore.HTTPConnection) -> None:
        with self._cond:
            key = self._open.pop(conn, None)
            if key is not None:
                self._count[key] -= 1
            self._cond.notify_all()             # the waiter may be for any origin

    def _give_back(self, conn: httpcore.HTTPConnection) -> None:
        """After a response is closed: a connection left idle (keep-alive) is kept, any other dropped."""
        if conn.is_idle():
            with self._cond:
                key = self._open.get(conn)
                if not self._closed and key is not None:
                    self._idle.setdefault(key, []).append(conn)
                    self._cond.notify_all()
                    return
        conn.close()
        self._forget(conn)

    # -- the interface httpx uses ------------------------------------------------------------------------
    def handle_request(self, request: httpcore.Request) -> httpcore.Response:
        timeout = (request.extensions.get("timeout") or {}).get("pool")
        origin = request.url.origin
        for attempt in range(2):
            conn = self._take(origin, timeout)
            try:
                response = conn.handle_request(request)
            except httpcore.ConnectionNotAvailable:
                # a kept connection that could not take the request after all: once more
                conn.close()
                self._forget(conn)
                if attempt:
                    raise
                continue
            except BaseException:
                conn.close()
                self._forget(conn)
                raise
            assert isinstance(response.stream, Iterable)
            return httpcore.Response(status=response.status, headers=response.headers,
                                     content=_Returning(response.stream, conn, self), extensions=response.extensions)
        raise AssertionError("unreachable")

    def close(self) -> None:
        with self._cond:
            self._closed = True
            conns = list(self._open)
            self._open.clear()
            self._count.clear()
            self._idle.clear()
            self._cond.notify_all()
        for c in conns:
            c.close()

    def __enter__(self) -> Pool:
        return self

    def __exit__(self, exc_type: type[BaseException] | None = None, exc_value: BaseException | None = None,
                 traceback: TracebackType | None = None) -> None:
        self.close()


class _Stream(httpcore.NetworkStream):
    """httpcore's socket stream, which sends a body chunk that stands for file ranges (mirror.filesend)
    from the files: by sendfile(2) on a plain socket, read and written where TLS is in the way."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, timeout)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        spans = filesend.take(buffer) if buffer else None
        if spans is None:
            self._inner.write(buffer, timeout)
            return
        sock = self._inner.get_extra_info("socket")
        if sock is None or isinstance(sock, ssl.SSLSocket) or not hasattr(os, "sendfile"):
            for fd, offset, n in spans:
                self._inner.write(os.pread(fd, n, offset), timeout)
            return
        self._sendfile(sock.fileno(), spans, timeout)

    @staticmethod
    def _sendfile(out: int, spans: list[filesend.Span], timeout: float | None) -> None:
        # httpcore gives the socket a timeout before each operation, which makes it non-blocking
        # underneath: a full send buffer is waited for here, as socket.send would.
        poller: Any = None
        for fd, offset, n in spans:
            while n:
                try:
                    sent = os.sendfile(out, fd, offset, n)
                except BlockingIOError:
                    if poller is None:
                        poller = select.poll()
                        poller.register(out, select.POLLOUT)
                    if not poller.poll(None if timeout is None else timeout * 1000):
                        raise httpcore.WriteTimeout("timed out sending a blob") from None
                    continue
                except OSError as e:
                    raise httpcore.WriteError(str(e)) from e
                if not sent:
                    raise httpcore.WriteError(f"the file ended {n} bytes early")
                offset += sent
                n -= sent

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        return _Stream(self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _Backend(httpcore.SyncBackend):
    """httpcore's own sockets, each in a _Stream."""

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Iterable[Any] | None = None) -> httpcore.NetworkStream:
        return _Stream(super().connect_tcp(host, port, timeout, local_address, socket_options))


_BACKEND = _Backend()


class _Returning:
    """A response body that gives its connection back to the pool when it is closed."""

    def __init__(self, stream: Iterable[bytes], conn: httpcore.HTTPConnection, pool: Pool) -> None:
        self._stream = stream
        self._conn = conn
        self._pool = pool
        self._done = False

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self._stream
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self._done:
            return
        self._done = True
        try:
            close = getattr(self._stream, "close", None)
            if close is not None:
                close()
        finally:
            self._pool._give_back(self._conn)
