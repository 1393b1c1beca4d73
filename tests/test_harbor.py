"""Harbor project creation at the protocol level (httpx.MockTransport), and against a real Harbor through
docker-py when an engine answers (none runs here, so that test skips)."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest

from mirror import harbor
from mirror.copy import CopyItem
from mirror.errors import RegistryError, UsageError
from mirror.http import HostSettings, Http
from mirror.reference import parse

HOST = "harbor.test"


class FakeHarbor:
    """Just enough of Harbor's API: systeminfo, HEAD/POST projects; records every request."""

    def __init__(self, *, projects: set[str] | None = None, post_status: int | None = None,
                 harbor: bool = True, user: tuple[str, str] = ("admin", "Harbor12345")) -> None:
        self.projects = set(projects or ())
        self.post_status = post_status
        self.harbor = harbor
        self.user = user
        self.requests: list[httpx.Request] = []

    def authorized(self, request: httpx.Request) -> bool:
        want = "Basic " + base64.b64encode(":".join(self.user).encode()).decode()
        return request.headers.get("authorization") == want

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        if path == "/api/v2.0/systeminfo":
            if not self.harbor:
                return httpx.Response(404)
            return httpx.Response(200, json={"auth_mode": "db_auth", "harbor_version": "v2.10.0"})
        if path == "/api/v2.0/projects" and request.method == "HEAD":
            return httpx.Response(200 if request.url.params.get("project_name") in self.projects else 404)
        if path == "/api/v2.0/projects" and request.method == "POST":
            if not self.authorized(request):
                return httpx.Response(401, json={"errors": [{"code": "UNAUTHORIZED", "message": "unauthorized"}]})
            if self.post_status:
                return httpx.Response(self.post_status)
            name = json.loads(request.content)["project_name"]
            if name in self.projects:
                return httpx.Response(409)
            self.projects.add(name)
            return httpx.Response(201)
        return httpx.Response(404)

    def calls(self) -> list[str]:
        return [f"{r.method} {r.url.path}" + (f"?{r.url.query.decode()}" if r.url.query else "")
                for r in self.requests]


def _http(fake: FakeHarbor, creds: tuple[str, str] | None = ("admin", "Harbor12345")) -> Http:
    s = HostSettings(username=creds[0], password=creds[1]) if creds else HostSettings()
    return Http({HOST: s}, transport=httpx.MockTransport(fake), sleep=lambda _: None, use_docker_config=False)


def _items(*repos: str) -> list[CopyItem]:
    return [CopyItem(parse(f"docker.io/library/x{i}:1"), parse(f"{HOST}/{r}:1")) for i, r in enumerate(repos)]


def test_creates_missing_project_once() -> None:
    fake = FakeHarbor()
    http = _http(fake)
    harbor.prepare_target(http, HOST, _items("airgap/docker.io/library/nginx", "airgap/quay.io/a/b"))
    assert fake.projects == {"airgap"}
    post = next(r for r in fake.requests if r.method == "POST")
    assert json.loads(post.content) == {"project_name": "airgap", "metadata": {"public": "false"}}
    assert fake.calls() == ["GET /api/v2.0/systeminfo", "HEAD /api/v2.0/projects?project_name=airgap",
                            "POST /api/v2.0/projects"]


def test_existing_project_is_left_alone() -> None:
    fake = FakeHarbor(projects={"airgap"})
    assert harbor.ensure_projects(_http(fake), HOST, ["airgap/spectro-packs/archive/x"]) == {"airgap": "exists"}
    assert not [r for r in fake.requests if r.method == "POST"]


def test_conflict_means_someone_else_created_it() -> None:
    fake = FakeHarbor(post_status=409)
    assert harbor.ensure_projects(_http(fake), HOST, ["p1/x"]) == {"p1": "exists"}


def test_without_credentials_nothing_is_created(caplog: pytest.LogCaptureFixture) -> None:
    fake = FakeHarbor()
    assert harbor.ensure_projects(_http(fake, None), HOST, ["airgap/x"]) == {"airgap": "skipped"}
    assert not [r for r in fake.requests if r.method == "POST"]
    assert "no credentials" in caplog.text


def test_forbidden_is_a_warning_not_a_failure(caplog: pytest.LogCaptureFixture) -> None:
    fake = FakeHarbor(post_status=403)
    assert harbor.ensure_projects(_http(fake), HOST, ["airgap/x"]) == {"airgap": "skipped"}
    assert "Harbor admin" in caplog.text


def test_server_error_is_reported() -> None:
    fake = FakeHarbor(post_status=500)
    with pytest.raises(RegistryError, match="creating Harbor project airgap: HTTP 500"):
        harbor.ensure_projects(_http(fake), HOST, ["airgap/x"])


def test_not_a_harbor_is_not_touched() -> None:
    fake = FakeHarbor(harbor=False)
    assert harbor.ensure_projects(_http(fake), HOST, ["airgap/x"]) == {}
    assert fake.calls() == ["GET /api/v2.0/systeminfo"]


def test_invalid_project_name() -> None:
    with pytest.raises(UsageError, match="Harbor project"):
        harbor.ensure_project(_http(FakeHarbor()), f"https://{HOST}", "Bad_", ("a", "b"))


def test_ecr_repositories_include_the_pack_parent() -> None:
    items = [CopyItem(parse("s.io/p/spectro-packs/archive/calico:1"), parse("e.io/b/spectro-packs/archive/calico:1"),
                      kind="pack"), *_items("b/docker.io/library/nginx")]
    assert harbor.ecr_repositories(items) == ["b/docker.io/library/nginx", "b/spectro-packs/archive",
                                              "b/spectro-packs/archive/calico"]


# -- a real Harbor, only where a Docker engine runs one ----------------------------------------------------------

@pytest.mark.e2e
def test_real_harbor_project_creation(docker_engine: None) -> None:
    """Uses a Harbor already running in the local Docker engine (its nginx proxy on 127.0.0.1); Harbor needs
    a dozen containers and an installer, so this test does not start one."""
    import docker

    client = docker.from_env(timeout=5)
    try:
        port = None
        for c in client.containers.list():
            if any("goharbor/nginx-photon" in t for t in c.image.tags):
                for binding in (c.ports.get("8080/tcp") or []):
                    if binding.get("HostIp") in ("127.0.0.1", "0.0.0.0", ""):
                        port = int(binding["HostPort"])
        if port is None:
            pytest.skip("no Harbor runs in the local Docker engine (goharbor/nginx-photon on 127.0.0.1)")
    finally:
        client.close()
    host = f"127.0.0.1:{port}"
    http = Http({host: HostSettings(plain_http=True, username="admin", password="Harbor12345")},
                use_docker_config=False)
    try:
        assert harbor.is_harbor(http, http.endpoint(host))
        name = "airgap-mirror-test"
        first: dict[str, Any] = harbor.ensure_projects(http, host, [f"{name}/x"])
        assert first[name] in ("created", "exists")
        assert harbor.ensure_projects(http, host, [f"{name}/x"]) == {name: "exists"}
    finally:
        http.close()
