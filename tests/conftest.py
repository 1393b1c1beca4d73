"""Shared pytest fixtures: real registries on 127.0.0.1 (see tests/support/registries.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.registries import Registry, RegistryFactory, docker_engine_available, which

REPO = Path(__file__).resolve().parents[1]

# Tools installed by scripts/install-deps (helm, crane, zot) live in .cache/bin; make them visible even
# when pytest is run directly instead of through scripts/test.
_bin = REPO / ".cache" / "bin"
if _bin.is_dir() and str(_bin) not in os.environ.get("PATH", "").split(os.pathsep):
    os.environ["PATH"] = f"{_bin}{os.pathsep}{os.environ.get('PATH', '')}"


@pytest.fixture(scope="session")
def registry_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryFactory]:
    """registry_factory(kind="distribution"|"distribution3"|"zot", tls=False, auth=False, docker2s2=True) -> Registry.

    Registries live until reg.stop() or the end of the session; a missing binary skips the test.
    """
    factory = RegistryFactory(tmp_path_factory.mktemp("registries"))
    yield factory
    factory.close()


@pytest.fixture
def source_registry(registry_factory: RegistryFactory) -> Iterator[Registry]:
    """A fresh plain-HTTP distribution registry, stopped after the test."""
    reg = registry_factory("distribution")
    yield reg
    reg.stop()


@pytest.fixture
def target_registry(registry_factory: RegistryFactory) -> Iterator[Registry]:
    """A second fresh plain-HTTP distribution registry, stopped after the test."""
    reg = registry_factory("distribution")
    yield reg
    reg.stop()


@pytest.fixture
def tls_registry(registry_factory: RegistryFactory) -> Iterator[Registry]:
    """distribution over HTTPS with a test CA (reg.ca_file, reg.certs_dir)."""
    reg = registry_factory("distribution", tls=True)
    yield reg
    reg.stop()


@pytest.fixture
def auth_registry(registry_factory: RegistryFactory) -> Iterator[Registry]:
    """Plain-HTTP distribution with htpasswd basic auth (reg.username, reg.password)."""
    reg = registry_factory("distribution", auth=True)
    yield reg
    reg.stop()


@pytest.fixture
def zot_registry(registry_factory: RegistryFactory) -> Iterator[Registry]:
    """zot (plain HTTP, compat docker2s2); skipped when no zot binary is installed."""
    if not which("zot"):
        pytest.skip("zot is not installed (the Go module proxy refuses zotregistry.dev/zot/v2)")
    reg = registry_factory("zot", docker2s2=True)
    yield reg
    reg.stop()


@pytest.fixture
def distribution3_registry(registry_factory: RegistryFactory) -> Iterator[Registry]:
    """CNCF distribution v3 (the registry Harbor builds on), plain HTTP; skipped when it is not installed."""
    reg = registry_factory("distribution3")
    yield reg
    reg.stop()


@pytest.fixture
def docker_engine() -> None:
    """Skip unless a Docker engine answers."""
    if not docker_engine_available():
        pytest.skip("no Docker engine answers (none runs on these machines)")
