"""A connected side behind a corporate proxy: HTTPS_PROXY is honoured for every registry, also one with its own
CA file (a per-host TLS setting must not route around the proxy), and NO_PROXY exempts a host. A real TLS
registry on loopback behind a CONNECT proxy that records its tunnels."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mirror import defaults
from mirror import http as http_module
from tests.support import flow
from tests.support.proxy import connect_proxy
from tests.support.registries import Registry, RegistryFactory


@pytest.fixture(scope="module")
def tls_source(registry_factory: RegistryFactory, tmp_path_factory: pytest.TempPathFactory) -> Any:
    reg, refs = flow.seeded(registry_factory, tmp_path_factory.mktemp("proxy"), tls=True)
    yield reg, refs
    reg.stop()


@pytest.mark.parametrize("trust", ["ca_file", "SSL_CERT_FILE"])
def test_export_goes_through_https_proxy(tls_source: tuple[Registry, list[str]], tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch, trust: str) -> None:
    reg, refs = tls_source
    # the 3 MB layer is read past h11 (straight from the TLS stream inside the tunnel), as 32 MB+ ones are
    monkeypatch.setattr(defaults, "HTTP_DIRECT_BODY_MIN", 1 << 20)
    direct = []
    real = http_module._direct_body

    def counted(*a: Any) -> Any:
        direct.append(1)
        return real(*a)

    monkeypatch.setattr(http_module, "_direct_body", counted)
    content = tmp_path / "c.yaml"
    text = flow.content_yaml(reg, [*refs[:2], "docker.io/example/big:v1"])
    if trust == "SSL_CERT_FILE":            # trusted without a per-host setting: httpx routes it itself
        assert reg.ca_file
        text = text.replace(f"    ca_file: {reg.ca_file}\n", "")
        monkeypatch.setenv("SSL_CERT_FILE", reg.ca_file)
    content.write_text(text)
    with connect_proxy() as (url, seen):
        monkeypatch.setenv("HTTPS_PROXY", url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        flow.export(content, tmp_path / "B")
        assert seen and set(seen) == {reg.host}, seen
        assert direct, "the big layer was not read past h11"
        seen.clear()
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        flow.export(content, tmp_path / "C")
        assert seen == []                   # exempted: straight to the registry
