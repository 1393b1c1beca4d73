"""Reference parsing and normalisation (Docker rules), the host path-segment rule, mirrored()."""

from __future__ import annotations

import pytest

from mirror.errors import ReferenceError_
from mirror.reference import Reference, host_segment, join_path, mirrored, parse

D = "sha256:" + "a" * 64


@pytest.mark.parametrize("text, want", [
    ("nginx", "docker.io/library/nginx:latest"),
    ("nginx:1.25", "docker.io/library/nginx:1.25"),
    ("library/nginx:1.25", "docker.io/library/nginx:1.25"),
    ("docker.io/nginx:1.25", "docker.io/library/nginx:1.25"),
    ("docker.io/library/nginx:1.25", "docker.io/library/nginx:1.25"),
    ("index.docker.io/nginx:1.25", "docker.io/library/nginx:1.25"),
    ("registry-1.docker.io/library/nginx:1.25", "docker.io/library/nginx:1.25"),
    ("registry.hub.docker.com/bitnami/redis:7", "docker.io/bitnami/redis:7"),
    ("bitnami/redis:7", "docker.io/bitnami/redis:7"),
    ("quay.io/coreos/etcd:v3.5.9", "quay.io/coreos/etcd:v3.5.9"),
    ("registry.k8s.io/pause:3.9", "registry.k8s.io/pause:3.9"),
    ("localhost/foo:1", "localhost/foo:1"),
    ("localhost:5000/foo/bar:1", "localhost:5000/foo/bar:1"),
    ("127.0.0.1:5000/a/b/c:v1", "127.0.0.1:5000/a/b/c:v1"),
    ("harbor.corp:8443/proj/app", "harbor.corp:8443/proj/app:latest"),
    ("  nginx:1.25  ", "docker.io/library/nginx:1.25"),
    ("gcr.io/x/y:tag_with.dots-and_underscores", "gcr.io/x/y:tag_with.dots-and_underscores"),
])
def test_normalise(text: str, want: str) -> None:
    assert str(parse(text)) == want


def test_fields_and_identifier() -> None:
    r = parse("harbor.corp:8443/proj/app:1.0")
    assert r == Reference("harbor.corp:8443", "proj/app", "1.0", None)
    assert r.identifier == "1.0"
    assert r.name == "harbor.corp:8443/proj/app"


def test_digest_only_has_no_tag() -> None:
    r = parse(f"registry.k8s.io/pause@{D}")
    assert r.tag is None and r.digest == D
    assert r.identifier == D
    assert str(r) == f"registry.k8s.io/pause@{D}"


def test_tag_and_digest() -> None:
    r = parse(f"nginx:1.25@{D}")
    assert (r.registry, r.repository, r.tag, r.digest) == ("docker.io", "library/nginx", "1.25", D)
    assert r.identifier == D                       # the digest wins for fetching
    assert str(r) == f"docker.io/library/nginx:1.25@{D}"


def test_port_is_not_a_tag() -> None:
    r = parse("127.0.0.1:5000/app")
    assert r.registry == "127.0.0.1:5000" and r.repository == "app" and r.tag == "latest"


def test_with_helpers() -> None:
    r = parse("nginx:1.25")
    assert r.with_digest(D).digest == D
    assert r.with_tag(None).tag is None
    assert str(r.in_repo("h:1", "x/y")) == "h:1/x/y:1.25"


@pytest.mark.parametrize("text, fragment", [
    ("", "empty image reference"),
    ("   ", "empty image reference"),
    ("https://quay.io/coreos/etcd:v1", "is a URL"),
    ("nginx@sha256:abc", "invalid digest"),
    ("nginx@md5", "invalid digest"),
    ("nginx:bad tag", "invalid tag"),
    ("nginx:-lead", "invalid tag"),
    ("nginx:" + "a" * 129, "invalid tag"),
    ("quay.io/CoreOS/etcd:v1", "invalid repository name"),
    ("quay.io/a//b:v1", "invalid repository name"),
    ("quay.io/a-:v1", "invalid repository name"),
    ("bad_host.io:abc/x:1", "invalid"),
])
def test_bad_input(text: str, fragment: str) -> None:
    with pytest.raises(ReferenceError_) as ei:
        parse(text, where="content.yaml:7")
    msg = str(ei.value)
    assert fragment in msg
    assert msg.startswith("content.yaml:7: ")
    assert "\n" not in msg
    assert ei.value.exit_code == 2


def test_bad_input_hints() -> None:
    with pytest.raises(ReferenceError_) as ei:
        parse("https://quay.io/x:1")
    assert "drop the scheme" in ei.value.hint
    with pytest.raises(ReferenceError_) as ei:
        parse("nginx@sha256:123")
    assert "sha256:<64 hex>" in ei.value.hint
    with pytest.raises(ReferenceError_) as ei:
        parse("Quay.io/UPPER/x:1")
    assert "lowercase" in ei.value.hint


@pytest.mark.parametrize("host, seg", [
    ("docker.io", "docker.io"),
    ("quay.io", "quay.io"),
    ("harbor.corp:8443", "harbor.corp_8443"),
    ("127.0.0.1:5000", "127.0.0.1_5000"),
    ("Registry.Example.COM", "registry.example.com"),
    ("localhost:5000", "localhost_5000"),
])
def test_host_segment(host: str, seg: str) -> None:
    assert host_segment(host) == seg


def test_host_segment_refuses_what_cannot_be_a_path() -> None:
    # IPv6 brackets are dropped and ':' becomes '-'; '::1' gives a leading '-', not a valid component
    with pytest.raises(ReferenceError_, match="cannot become a repository path segment"):
        host_segment("[::1]:5000")


def test_host_segment_ipv6_full() -> None:
    assert host_segment("[fd00:1::2]:5000") == "fd00-1--2_5000"


def test_join_path() -> None:
    assert join_path("airgap-images/", "/docker.io", "library/nginx") == "airgap-images/docker.io/library/nginx"
    assert join_path("", "docker.io", "x") == "docker.io/x"


@pytest.mark.parametrize("src, target, base, want", [
    ("nginx:1.25", "harbor.example.org", "airgap-images",
     "harbor.example.org/airgap-images/docker.io/library/nginx:1.25"),
    ("quay.io/coreos/etcd:v3.5.9", "127.0.0.1:5000", "a/b",
     "127.0.0.1:5000/a/b/quay.io/coreos/etcd:v3.5.9"),
    ("harbor.corp:8443/proj/app:1", "h", "airgap-images", "h/airgap-images/harbor.corp_8443/proj/app:1"),
    ("registry.k8s.io/pause:3.9", "h:1", "", "h:1/registry.k8s.io/pause:3.9"),
    (f"registry.k8s.io/pause@{D}", "h", "base", f"h/base/registry.k8s.io/pause@{D}"),
])
def test_mirrored(src: str, target: str, base: str, want: str) -> None:
    assert str(mirrored(parse(src), target, base)) == want
