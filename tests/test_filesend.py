"""A bundle's layer goes up by sendfile(2) from its part file (mirror.filesend): the bytes that arrive are
the blob's, over plain HTTP by sendfile, over TLS (where sendfile cannot be used) read and written; a
placeholder chunk that no stream sent fails the upload rather than sending zeros. A real socket is needed
(httpx's MockTransport has no network stream), so a small HTTP/1.1 server on 127.0.0.1 takes the uploads."""

from __future__ import annotations

import os
import random
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from mirror import filesend
from mirror.bundle import RAW_BLOCK, BundleReader, BundleWriter
from mirror.digest import sha256_digest
from mirror.errors import BundleError
from mirror.http import Http
from mirror.mediatypes import Descriptor
from mirror.registry import RegistryStore
from tests.support.sockets import client_settings, read_request, serving

SIZE = 40 * RAW_BLOCK + 12_345              # several whole groups of 8 blocks between the first and last


@dataclass
class Uploads:
    """POST opens an upload, a mount answers 201, PUT ?digest= takes the body: what arrived is kept."""

    tls: ssl.SSLContext | None = None
    ca_file: str | None = None
    port: int = 0
    bodies: list[bytes] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handle(self, conn: socket.socket) -> None:
        if self.tls is not None:
            conn = self.tls.wrap_socket(conn, server_side=True)
        with conn:
            f = conn.makefile("rb")
            while (req := read_request(f)) is not None:
                method, target, headers = req
                body = f.read(int(headers.get("content-length", "0")))
                if method == "POST" and "mount=" in target:
                    answer = b"201 Created\r\nContent-Length: 0\r\n\r\n"
                elif method == "POST":
                    answer = b"202 Accepted\r\nLocation: /v2/r/blobs/uploads/u1\r\nContent-Length: 0\r\n\r\n"
                else:
                    with self.lock:
                        self.bodies.append(body)
                    answer = b"201 Created\r\nContent-Length: 0\r\n\r\n"
                conn.sendall(b"HTTP/1.1 " + answer)


@pytest.fixture(params=["http", "https"])
def uploads(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Uploads]:
    with serving(Uploads(), tmp_path / "tls" if request.param == "https" else None) as srv:
        yield srv


def _bundle(d: Path, split: int | None = None) -> tuple[BundleReader, Descriptor, bytes]:
    data = random.Random(3).randbytes(SIZE)
    desc = Descriptor("application/vnd.oci.image.layer.v1.tar+gzip", sha256_digest(data), SIZE)
    w = BundleWriter(d, name="b", split_size=split)
    w.prepare([desc])                       # a gzip layer: a raw frame, whose blocks sendfile can send
    w.put_blob("docker.io/library/x", desc, [data])
    w.finalize([{"ref": "docker.io/library/x:1", "digest": desc.digest, "media_type": desc.media_type,
                 "manifest_size": 0, "contents": [desc.digest]}])
    return BundleReader(d), desc, data


@pytest.fixture
def sendfiles(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many bytes each os.sendfile call sent."""
    sent: list[int] = []
    real = os.sendfile

    def counting(out: int, fd: int, offset: int | None, n: int) -> int:
        sent.append(real(out, fd, offset, n))
        return sent[-1]

    monkeypatch.setattr(os, "sendfile", counting)
    return sent


@pytest.mark.parametrize("split", [None, 2 * 1024 * 1024 + 777])     # unsplit, and groups across parts
def test_a_bundle_layer_goes_up_from_its_part_files(uploads: Uploads, sendfiles: list[int], tmp_path: Path,
                                                    split: int | None, monkeypatch: pytest.MonkeyPatch) -> None:
    reader, desc, data = _bundle(tmp_path / "B", split)
    host = f"127.0.0.1:{uploads.port}"
    http = Http({host: client_settings(uploads)}, use_docker_config=False, sleep=lambda s: None)
    if uploads.tls:     # file chunks are never offered over TLS; were they, the stream reads and writes them
        monkeypatch.setattr(http, "sends_files", lambda url: True)
    store = RegistryStore(http, host)
    with reader.open_blob("docker.io/library/x", desc) as chunks:
        store.put_blob("r", desc, chunks)
    assert uploads.bodies == [data]
    if uploads.tls:
        assert not sendfiles                    # TLS: read and written, as any other chunk
    else:
        # whole blocks of blob bytes by sendfile (not those of the first and last groups, nor of a group
        # that crosses a part), the rest read and written
        assert sum(sendfiles) and sum(sendfiles) % RAW_BLOCK == 0 and sum(sendfiles) < SIZE


def test_a_placeholder_no_stream_sent_fails_the_read(tmp_path: Path) -> None:
    """A consumer that says it takes file chunks but whose stream never sends them (here: nobody) gets an
    error right after the first, not a run of zeros."""
    reader, desc, _ = _bundle(tmp_path / "B")
    with filesend.accepting(), reader.open_blob("", desc) as chunks, pytest.raises(BundleError, match="not sent"):
        for _ in chunks:
            pass


def test_only_plain_connections_of_the_own_pool_take_file_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    http = Http(use_docker_config=False)
    assert http.sends_files(httpx.URL("http://127.0.0.1:5000/v2/r/blobs/uploads/u1"))
    assert not http.sends_files(httpx.URL("https://127.0.0.1:5000/v2/r/blobs/uploads/u1"))
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:3128")          # a proxy's connections are not ours
    assert not Http(use_docker_config=False).sends_files(httpx.URL("http://10.0.0.1:5000/v2/"))
    mocked = Http(transport=httpx.MockTransport(lambda r: httpx.Response(201)), use_docker_config=False)
    assert not mocked.sends_files(httpx.URL("http://127.0.0.1:5000/v2/"))
