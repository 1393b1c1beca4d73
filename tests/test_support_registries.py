"""The registry fixtures themselves: plain, TLS, basic auth, zot (skips without a binary)."""

from __future__ import annotations

import time

import httpx

from tests.support.registries import Registry, RegistryFactory, docker_engine_available


def test_plain_registry(source_registry: Registry, target_registry: Registry) -> None:
    assert source_registry.host != target_registry.host
    assert source_registry.plain_http and source_registry.url == f"http://{source_registry.host}"
    assert source_registry.host.startswith("127.0.0.1:")
    r = httpx.get(f"{source_registry.url}/v2/")
    assert r.status_code == 200
    assert r.headers["Docker-Distribution-Api-Version"] == "registry/2.0"
    assert source_registry.root.is_dir()


def test_tls_registry(tls_registry: Registry) -> None:
    assert not tls_registry.plain_http and tls_registry.url.startswith("https://127.0.0.1:")
    assert tls_registry.ca_file
    assert httpx.get(f"{tls_registry.url}/v2/", verify=tls_registry.verify).status_code == 200
    port = tls_registry.host.split(":")[1]
    assert httpx.get(f"https://localhost:{port}/v2/", verify=tls_registry.verify).status_code == 200
    try:
        httpx.get(f"{tls_registry.url}/v2/")
    except httpx.ConnectError as e:
        assert "CERTIFICATE_VERIFY_FAILED" in str(e)
    else:
        raise AssertionError("the test CA must not be trusted by default")


def test_auth_registry(auth_registry: Registry) -> None:
    assert auth_registry.username and auth_registry.password
    r = httpx.get(f"{auth_registry.url}/v2/")
    assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Basic ")
    with auth_registry.client() as c:
        assert c.get("/v2/").status_code == 200
    assert httpx.get(f"{auth_registry.url}/v2/", auth=("tester", "wrong")).status_code == 401


def test_factory_tls_and_auth_together(registry_factory: RegistryFactory) -> None:
    reg = registry_factory("distribution", tls=True, auth=True)
    try:
        with reg.client() as c:
            assert c.get("/v2/").status_code == 200
    finally:
        reg.stop()
    assert not reg.alive()


def test_zot_registry(zot_registry: Registry) -> None:  # skipped unless a zot binary is installed
    assert httpx.get(f"{zot_registry.url}/v2/").status_code == 200


def test_docker_engine_probe_is_fast() -> None:
    t = time.monotonic()
    docker_engine_available()
    assert time.monotonic() - t < 10
