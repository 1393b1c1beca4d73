"""Big blob bodies are read past h11 (mirror.http._direct_body). A real socket is needed for that path
(httpx's MockTransport has no network stream), so these tests run a small HTTP/1.1 server on 127.0.0.1
that can cut an answer short, count connections, and honour Range."""

from __future__ import annotations

import hashlib
import os
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from mirror import defaults
from mirror.errors import UnreachableError
from mirror.http import Http
from mirror.mediatypes import Descriptor
from mirror.registry import RegistryStore
from tests.support.sockets import client_settings, read_request, serving

BIG = os.urandom(defaults.HTTP_DIRECT_BODY_MIN + 3_000_017)      # direct path, not a multiple of a read
SMALL = os.urandom(200_000)                                       # through h11, connection pooled


def _desc(data: bytes) -> Descriptor:
    return Descriptor("application/octet-stream", "sha256:" + hashlib.sha256(data).hexdigest(), len(data))


BODIES = {_desc(b).digest: b for b in (BIG, SMALL, SMALL * 20)}


@dataclass
class Server:
    """Serves /v2/r/blobs/<digest> for BIG and SMALL; `cuts` lists byte counts after which successive
    answers drop the connection (then answers are whole)."""

    cuts: list[int] = field(default_factory=list)
    connections: int = 0
    ranges: list[str | None] = field(default_factory=list)
    port: int = 0
    tls: ssl.SSLContext | None = None
    ca_file: str | None = None

    def handle(self, conn: socket.socket) -> None:
        self.connections += 1
        if self.tls is not None:
            conn = self.tls.wrap_socket(conn, server_side=True)
        with conn:
            f = conn.makefile("rb")
            while (req := read_request(f)) is not None:
                _, target, headers = req
                data = BODIES[target.rsplit("/", 1)[1]]
                rng = headers.get("range")
                self.ranges.append(rng)
                start = int(rng.removeprefix("bytes=").rstrip("-")) if rng else 0
                status = b"206 Partial Content" if rng else b"200 OK"
                body = data[start:]
                conn.sendall(b"HTTP/1.1 " + status + b"\r\nContent-Type: application/octet-stream\r\n"
                             + f"Content-Length: {len(body)}\r\n\r\n".encode())
                if self.cuts:
                    conn.sendall(body[:self.cuts.pop(0)])
                    if self.tls is None:
                        conn.shutdown(socket.SHUT_RDWR)
                    return
                conn.sendall(body)


@pytest.fixture(params=["http", "https"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    # over https the network stream decrypts: same bytes either way
    with serving(Server(), tmp_path if request.param == "https" else None) as srv:
        yield srv


def _store(srv: Server) -> tuple[Http, RegistryStore]:
    host = f"127.0.0.1:{srv.port}"
    http = Http({host: client_settings(srv)}, use_docker_config=False, sleep=lambda s: None)
    return http, RegistryStore(http, host)


def _get(store: RegistryStore, data: bytes) -> bytes:
    with store.open_blob("r", _desc(data)) as chunks:
        return b"".join(chunks)


def test_big_body_is_exact_and_its_connection_is_not_reused(server: Server) -> None:
    http, store = _store(server)
    try:
        assert _get(store, BIG) == BIG
        assert _get(store, BIG) == BIG
        assert server.connections == 2            # h11 never saw the end of the first: closed, not pooled
    finally:
        http.close()


def test_small_bodies_keep_the_connection(server: Server) -> None:
    http, store = _store(server)
    try:
        assert [_get(store, SMALL) for _ in range(3)] == [SMALL] * 3
        assert server.connections == 1
    finally:
        http.close()


def test_big_body_dropped_mid_way_resumes_with_range(server: Server) -> None:
    server.cuts = [5_000_000, 2_000_000]          # two drops past the first chunk, then whole
    http, store = _store(server)
    try:
        assert _get(store, BIG) == BIG
    finally:
        http.close()
    assert server.ranges[0] is None and len(server.ranges) == 3
    first, second = (int(r.removeprefix("bytes=").rstrip("-")) for r in server.ranges[1:])  # type: ignore[union-attr]
    assert 0 < first <= 5_000_000 and first < second <= first + 2_000_000


def test_big_body_that_keeps_dropping_is_a_clear_error(server: Server) -> None:
    server.cuts = [1_000_000] * (defaults.RETRIES + 1)
    http, store = _store(server)
    try:
        with pytest.raises(UnreachableError, match="dropped at"):
            _get(store, BIG)
    finally:
        http.close()


@pytest.mark.parametrize("data", [BIG, SMALL * 20], ids=["past-h11", "through-h11"])
def test_chunks_are_joined_to_half_a_read(server: Server, data: bytes) -> None:
    # over TLS a read returns one 16 KiB record; every later stage pays per chunk, so they are joined
    http, store = _store(server)
    try:
        with store.open_blob("r", _desc(data)) as chunks:
            sizes = [len(c) for c in chunks]
    finally:
        http.close()
    assert sum(sizes) == len(data)
    assert all(n >= defaults.HTTP_READ_SIZE // 2 for n in sizes[:-1]), sizes[:20]
