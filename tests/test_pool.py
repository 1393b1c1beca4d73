"""mirror.pool.Pool, the connection pool under the httpx client, on real loopback sockets: connections are
reused, capped per origin, replaced when the server has closed them, and waited for no longer than the pool
timeout; proxied transports keep httpcore's own pool."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpcore
import httpx
import pytest

from mirror.http import HostSettings, Http
from mirror.pool import Pool
from tests.support.sockets import loopback_listener, read_request, serve_each


@dataclass
class Server:
    """HTTP/1.1 keep-alive server: GET /slow waits `hold` seconds; /close answers, then closes the connection."""

    port: int
    hold: float = 0.3
    accepted: int = 0
    active: int = 0
    most_active: int = 0
    conns: list[socket.socket] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def serve(self, conn: socket.socket) -> None:
        with self.lock:
            self.conns.append(conn)
            self.accepted += 1
            self.active += 1
            self.most_active = max(self.most_active, self.active)
        f = conn.makefile("rb")
        try:
            while (req := read_request(f)) is not None:
                _, target, _ = req
                if target == "/slow":
                    time.sleep(self.hold)
                body = target.encode()
                last = target == "/close"
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s"
                             % (len(body), b"Connection: close\r\n" if last else b"", body))
                if last:
                    break
        except OSError:
            pass
        finally:
            with self.lock:
                self.active -= 1
            conn.close()


@contextmanager
def server(**kw: float) -> Iterator[Server]:
    listener = loopback_listener()
    srv = Server(listener.getsockname()[1], **kw)

    serve_each(listener, srv.serve)
    try:
        yield srv
    finally:
        listener.close()
        for c in srv.conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def client(max_connections: int = 8) -> httpx.Client:
    transport = httpx.HTTPTransport()
    transport._pool = Pool(ssl_context=None, max_connections=max_connections, keepalive_expiry=5.0)
    return httpx.Client(transport=transport, timeout=httpx.Timeout(5.0, pool=2.0))


def test_sequential_requests_reuse_one_connection() -> None:
    with server() as srv, client() as c:
        for i in range(20):
            assert c.get(f"http://127.0.0.1:{srv.port}/r{i}").text == f"/r{i}"
        assert srv.accepted == 1


def test_concurrent_requests_stay_under_the_cap_and_all_complete() -> None:
    with server(hold=0.1) as srv, client(max_connections=3) as c:
        results: list[str] = []

        def one(i: int) -> None:
            results.append(c.get(f"http://127.0.0.1:{srv.port}/slow").text)

        threads = [threading.Thread(target=one, args=(i,)) for i in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert results == ["/slow"] * 12
        assert srv.most_active <= 3 and srv.accepted == 3      # waited for a free one, never a fourth


def test_a_connection_the_server_closed_is_replaced_without_an_error() -> None:
    with server() as srv, client() as c:
        assert c.get(f"http://127.0.0.1:{srv.port}/close").text == "/close"     # server closes after it
        time.sleep(0.05)
        assert c.get(f"http://127.0.0.1:{srv.port}/next").text == "/next"
        assert srv.accepted == 2
        # the server drops an idle kept connection on its own (a keep-alive timeout): found before use
        for conn in srv.conns[1:]:
            conn.shutdown(socket.SHUT_RDWR)
        time.sleep(0.05)
        assert c.get(f"http://127.0.0.1:{srv.port}/again").text == "/again"
        assert srv.accepted == 3


def test_waiting_for_a_connection_ends_at_the_pool_timeout() -> None:
    with server() as srv, client(max_connections=1) as c:
        held = c.send(c.build_request("GET", f"http://127.0.0.1:{srv.port}/held"), stream=True)
        try:
            started = time.monotonic()
            with pytest.raises(httpx.PoolTimeout):
                c.get(f"http://127.0.0.1:{srv.port}/other", timeout=httpx.Timeout(5.0, pool=0.2))
            assert time.monotonic() - started < 1.5
        finally:
            held.read()
            held.close()
        assert c.get(f"http://127.0.0.1:{srv.port}/after").text == "/after"   # given back once read
        assert srv.accepted == 1


def test_the_cap_is_per_origin_so_a_held_source_never_starves_the_target() -> None:
    # a copy holds the source's response open while it writes to the target: with one connection allowed,
    # a cap shared by both origins would wait forever here (until the pool timeout)
    with server() as src, server() as dst, client(max_connections=1) as c:
        held = c.send(c.build_request("GET", f"http://127.0.0.1:{src.port}/blob"), stream=True)
        try:
            assert c.get(f"http://127.0.0.1:{dst.port}/put").text == "/put"
        finally:
            held.read()
            held.close()
        assert c.get(f"http://127.0.0.1:{src.port}/again").text == "/again"
        assert (src.accepted, dst.accepted) == (1, 1)


def test_http_client_uses_it_except_where_a_proxy_tunnels(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    plain = Http({"reg.example": HostSettings(insecure=True)}, use_docker_config=False)
    pools = [plain.client._transport._pool, *(t._pool for t in plain.client._mounts.values()  # type: ignore
                                              if t is not None)]
    assert pools and all(isinstance(p, Pool) for p in pools)
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    proxied = Http({"reg.example": HostSettings(insecure=True)}, use_docker_config=False)
    kinds = {type(t._pool) for t in proxied.client._mounts.values() if t is not None}  # type: ignore
    assert httpcore.HTTPProxy in kinds


def test_many_threads_over_several_origins_with_closing_servers_all_complete() -> None:
    with server(hold=0.002) as a, server(hold=0.002) as b, server(hold=0.002) as d, client(max_connections=2) as c:
        pool = c._transport._pool  # type: ignore[attr-defined]
        errors: list[BaseException] = []

        def worker(n: int) -> None:
            try:
                for k in range(40):
                    srv = (a, b, d)[(n + k) % 3]
                    path = "/close" if (n * 7 + k) % 5 == 0 else "/slow"     # every fifth: the server hangs up
                    assert c.get(f"http://127.0.0.1:{srv.port}{path}").text == path
                    assert max(pool._count.values()) <= 2          # never more than the cap open to one origin
            except BaseException as e:          # reported below: a thread's failure must fail the test
                errors.append(e)

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert not errors and not any(t.is_alive() for t in threads)
        # (the servers' own count can run ahead: they see a client's close only when they next read)
        assert all(n <= 2 for n in pool._count.values()) and len(pool._open) == sum(pool._count.values())
