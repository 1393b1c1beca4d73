"""Chunked uploads (blobs above MONOLITHIC_UPLOAD_MAX) stream every PATCH span from the source: memory stays
at a chunk, not a span. Needs a real socket (httpx's MockTransport reads whole bodies before its handler)."""

from __future__ import annotations

import hashlib
import socket
import threading
import tracemalloc
from collections.abc import Iterator

import pytest

from mirror import defaults
from mirror.http import HostSettings, Http
from mirror.mediatypes import Descriptor
from mirror.registry import RegistryStore
from tests.support.sockets import loopback_listener, read_request

SIZE = 96 << 20
SPAN = 32 << 20


def _serve(listener: socket.socket, got: dict[str, object]) -> None:
    """POST -> 202, PATCH -> hash the body as it arrives (never held) -> 202, PUT ?digest= -> 201."""
    conn, _ = listener.accept()
    h = hashlib.sha256()
    with conn, conn.makefile("rb") as f:
        while (req := read_request(f)) is not None:
            method, target, headers = req
            left = int(headers.get("content-length", "0"))
            while left:
                piece = f.read(min(left, 1 << 20))
                h.update(piece)
                left -= len(piece)
            status = b"201 Created" if method == "PUT" else b"202 Accepted"
            if method == "PUT":
                got["digest"] = target.split("digest=")[1]
                got["hash"] = "sha256:" + h.hexdigest()
            conn.sendall(b"HTTP/1.1 " + status + b"\r\nLocation: /v2/a/blobs/uploads/u\r\nContent-Length: 0\r\n\r\n")


def _source() -> Iterator[bytes]:
    block = bytes(range(256)) * 4096                    # 1 MiB, made once: only the upload's memory is measured
    for _ in range(SIZE // len(block)):
        yield block


def test_chunked_upload_holds_a_chunk_not_a_span(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(defaults, "MONOLITHIC_UPLOAD_MAX", 1 << 20)
    monkeypatch.setattr(defaults, "UPLOAD_CHUNK_SIZE", SPAN)
    listener = loopback_listener()
    got: dict[str, object] = {}
    server = threading.Thread(target=_serve, args=(listener, got), daemon=True)
    server.start()
    host = f"127.0.0.1:{listener.getsockname()[1]}"
    http = Http({host: HostSettings(plain_http=True)}, use_docker_config=False)
    digest = "sha256:" + hashlib.sha256(b"".join(_source())).hexdigest()
    try:
        tracemalloc.start()
        RegistryStore(http, host).put_blob("a", Descriptor("application/octet-stream", digest, SIZE), _source())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        http.close()
        listener.close()
    server.join(5)
    assert got == {"digest": digest, "hash": digest}
    assert peak < SPAN // 4, f"the upload held {peak / 2**20:.0f} MiB (a span is {SPAN >> 20} MiB)"
