"""The default TLS context loads its CAs on the first handshake (not at start-up) and still verifies:
a server whose CA is unknown is refused with a TLSError; SSL_CERT_FILE is honoured like httpx does."""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from mirror.errors import TLSError
from mirror.http import Http
from tests.support.registries import make_tls
from tests.support.sockets import loopback_listener


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """A one-line HTTPS server on 127.0.0.1 with a test CA; yields (port, CA file)."""
    ca, crt, key = make_tls(tmp_path)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(crt, key)
    listener = loopback_listener()
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            try:
                with ctx.wrap_socket(conn, server_side=True) as s:
                    s.recv(4096)
                    s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            except (OSError, ssl.SSLError):
                conn.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield listener.getsockname()[1], ca
    stop.set()
    listener.close()


def test_unknown_ca_is_refused(tls_server: tuple[int, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    port, _ = tls_server
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    http = Http(use_docker_config=False)
    try:
        with pytest.raises(TLSError, match="CERTIFICATE_VERIFY_FAILED"):
            http.request("GET", f"https://127.0.0.1:{port}/v2/", retry=False)
    finally:
        http.close()


def test_ssl_cert_file_is_trusted(tls_server: tuple[int, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    port, ca = tls_server
    monkeypatch.setenv("SSL_CERT_FILE", str(ca))
    http = Http(use_docker_config=False)
    try:
        assert http.request("GET", f"https://127.0.0.1:{port}/v2/", retry=False).status_code == 200
    finally:
        http.close()
