"""The offline sample generator: valid, deterministic layouts; seeding a real registry keeps digests."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import subprocess
import tarfile
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from mirror import sample
from mirror.layout import LayoutStore, blob_path
from mirror.mediatypes import (
    ACCEPT,
    DOCKER_LIST,
    DOCKER_MANIFEST,
    OCI_EMPTY_JSON,
    OCI_INDEX,
    OCI_MANIFEST,
    children,
    parse_manifest,
)
from mirror.reference import parse
from tests.support.registries import Registry, RegistryFactory

TEST_REFS = {
    "docker.io/library/nginx:1.25": OCI_INDEX,
    "quay.io/coreos/etcd:v3.5.9": DOCKER_LIST,
    "registry.k8s.io/pause:3.9": DOCKER_MANIFEST,
    "ghcr.io/example/tool:v1": DOCKER_MANIFEST,
    "ghcr.io/example/artifact:v1": OCI_MANIFEST,
    "docker.io/example/big:v1": OCI_MANIFEST,
}
BIG = 300_000


@pytest.fixture(scope="module")
def test_layout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sample") / "layout"
    sample.build(out, "test", big_layer_bytes=BIG)
    return out


def _read(layout: Path, digest: str) -> bytes:
    return blob_path(layout, digest).read_bytes()


def _walk(layout: Path, media_type: str, digest: str) -> list[tuple[str, dict[str, Any]]]:
    """(media type, doc) of every image manifest under a manifest or index."""
    mt, doc = parse_manifest(_read(layout, digest), media_type)
    kids, _ = children(mt, doc)
    if not kids:
        return [(mt, doc)]
    out = []
    for k in kids:
        out += _walk(layout, k.media_type, k.digest)
    return out


def _digests(layout: Path) -> dict[str, str]:
    return {name: d.digest for name, d in LayoutStore(layout).refs()}


def test_test_profile_refs_and_types(test_layout: Path) -> None:
    refs = {name: d.media_type for name, d in LayoutStore(test_layout).refs()}
    assert refs == TEST_REFS
    assert json.loads((test_layout / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    nginx = json.loads(_read(test_layout, _digests(test_layout)["docker.io/library/nginx:1.25"]))
    assert [m["platform"]["architecture"] for m in nginx["manifests"]] == ["amd64", "arm64", "unknown"]
    attestation = nginx["manifests"][2]["annotations"]                  # BuildKit's, for amd64
    assert attestation == {"vnd.docker.reference.digest": nginx["manifests"][0]["digest"],
                           "vnd.docker.reference.type": "attestation-manifest"}
    etcd = json.loads(_read(test_layout, _digests(test_layout)["quay.io/coreos/etcd:v3.5.9"]))
    assert {m["mediaType"] for m in etcd["manifests"]} == {DOCKER_MANIFEST}
    assert [m["platform"]["architecture"] for m in etcd["manifests"]] == ["amd64", "arm64"]


def test_layers_are_real_tars_with_matching_diff_ids(test_layout: Path) -> None:
    for name, desc in LayoutStore(test_layout).refs():
        for mt, doc in _walk(test_layout, desc.media_type, desc.digest):
            if doc.get("artifactType"):
                continue
            cfg = json.loads(_read(test_layout, doc["config"]["digest"]))
            if doc["layers"][0]["mediaType"] == sample.IN_TOTO:       # an attestation: no file system
                assert cfg["os"] == "unknown"
                continue
            assert cfg["os"] == "linux" and cfg["rootfs"]["type"] == "layers"
            assert len(cfg["rootfs"]["diff_ids"]) == len(doc["layers"]), name
            for layer, diff_id in zip(doc["layers"], cfg["rootfs"]["diff_ids"], strict=True):
                data = _read(test_layout, layer["digest"])
                assert hashlib.sha256(data).hexdigest() == layer["digest"].split(":")[1]
                assert len(data) == layer["size"]
                if layer["mediaType"].endswith("gzip"):
                    data = gzip.decompress(data)
                assert "sha256:" + hashlib.sha256(data).hexdigest() == diff_id, name
                with tarfile.open(fileobj=io.BytesIO(data)) as tf:
                    members = tf.getmembers()
                assert members and all(m.mtime == sample.MTIME for m in members)
                assert [m.name.rstrip("/") for m in members] == sorted(m.name.rstrip("/") for m in members)
            if mt == DOCKER_MANIFEST:
                assert doc["config"]["mediaType"] == sample.DOCKER_CONFIG
                assert all(la["mediaType"] == sample.DOCKER_LAYER_GZIP for la in doc["layers"])


def test_shared_base_layer_is_shared(test_layout: Path) -> None:
    users: Counter[str] = Counter()          # layer digest -> number of tagged images using it
    for _name, desc in LayoutStore(test_layout).refs():
        users.update({la["digest"] for _, doc in _walk(test_layout, desc.media_type, desc.digest)
                      for la in doc.get("layers", [])})
    assert max(users.values()) >= 5          # nginx, etcd, pause, tool, big share the base layer


def test_artifact_shape(test_layout: Path) -> None:
    doc = json.loads(_read(test_layout, _digests(test_layout)["ghcr.io/example/artifact:v1"]))
    assert doc["artifactType"] == "application/vnd.example.thing.v1"
    assert doc["config"] == {"mediaType": OCI_EMPTY_JSON, "size": 2,
                             "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"}
    assert _read(test_layout, doc["config"]["digest"]) == b"{}"
    (layer,) = doc["layers"]
    assert layer["annotations"]["org.opencontainers.image.title"] == "thing.txt"


def test_big_layer_has_requested_size(test_layout: Path) -> None:
    doc = json.loads(_read(test_layout, _digests(test_layout)["docker.io/example/big:v1"]))
    sizes = []
    for layer in doc["layers"]:
        with tarfile.open(fileobj=io.BytesIO(gzip.decompress(_read(test_layout, layer["digest"])))) as tf:
            sizes += [m.size for m in tf.getmembers() if m.isfile()]
    assert BIG in sizes


def test_builds_are_deterministic(tmp_path: Path, test_layout: Path) -> None:
    again = tmp_path / "again"
    refs = sample.build(again, "test", big_layer_bytes=BIG)
    assert set(refs) == set(TEST_REFS)
    assert (again / "index.json").read_bytes() == (test_layout / "index.json").read_bytes()
    assert sorted(p.name for p in (again / "blobs" / "sha256").iterdir()) == \
        sorted(p.name for p in (test_layout / "blobs" / "sha256").iterdir())


@pytest.mark.skipif(not shutil.which("skopeo"), reason="skopeo is not installed")
def test_skopeo_reads_oci_items(test_layout: Path) -> None:
    # skopeo 1.9 only resolves index.json entries with OCI media types; Docker items are checked after
    # seeding a registry (test_seed_distribution).
    for ref in ("docker.io/library/nginx:1.25", "docker.io/example/big:v1"):
        out = subprocess.run(["skopeo", "inspect", f"oci:{test_layout}:{ref}"], check=True,
                             capture_output=True, text=True).stdout
        info = json.loads(out)
        assert info["Os"] == "linux" and len(info["Layers"]) >= 2
    raw = subprocess.run(["skopeo", "inspect", "--raw", f"oci:{test_layout}:ghcr.io/example/artifact:v1"],
                         check=True, capture_output=True).stdout
    assert "sha256:" + hashlib.sha256(raw).hexdigest() == _digests(test_layout)["ghcr.io/example/artifact:v1"]


@pytest.mark.skipif(not shutil.which("skopeo"), reason="skopeo is not installed")
def test_seed_distribution(test_layout: Path, source_registry: Registry) -> None:
    dests = sample.seed(test_layout, source_registry.url, quiet=True)
    assert f"{source_registry.host}/library/nginx:1.25" in dests
    raw = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false",
                          f"docker://{source_registry.host}/library/nginx:1.25"],
                         check=True, capture_output=True).stdout
    digests = _digests(test_layout)
    assert "sha256:" + hashlib.sha256(raw).hexdigest() == digests["docker.io/library/nginx:1.25"]
    with httpx.Client(base_url=source_registry.url) as c:
        for name, digest in digests.items():
            r = parse(name)
            resp = c.get(f"/v2/{r.repository}/manifests/{r.tag}", headers={"Accept": ACCEPT})
            assert resp.status_code == 200, name
            assert "sha256:" + hashlib.sha256(resp.content).hexdigest() == digest, name
            assert resp.headers["Docker-Content-Digest"] == digest
    # a Docker v2 item is a runnable image as far as skopeo is concerned
    info = json.loads(subprocess.run(["skopeo", "inspect", "--tls-verify=false",
                                      f"docker://{source_registry.host}/coreos/etcd:v3.5.9"],
                                     check=True, capture_output=True, text=True).stdout)
    assert info["Digest"] == digests["quay.io/coreos/etcd:v3.5.9"]


@pytest.mark.skipif(not shutil.which("skopeo"), reason="skopeo is not installed")
def test_seed_tls_auth_registry(test_layout: Path, registry_factory: RegistryFactory) -> None:
    reg = registry_factory("distribution", tls=True, auth=True)
    try:
        sample.seed(test_layout, reg.url, cert_dir=reg.certs_dir, creds=f"{reg.username}:{reg.password}",
                    quiet=True)
        with reg.client() as c:
            for name, digest in _digests(test_layout).items():
                r = parse(name)
                resp = c.head(f"/v2/{r.repository}/manifests/{r.tag}", headers={"Accept": ACCEPT})
                assert resp.headers["Docker-Content-Digest"] == digest, name
    finally:
        reg.stop()


def test_demo_profile(tmp_path: Path) -> None:
    refs = sample.build(tmp_path / "demo", "demo")
    hosts = {parse(r).registry for r in refs}
    assert {"docker.io", "quay.io", "registry.k8s.io"} <= hosts
    assert 4 <= len(refs) <= 10


def test_bench_profile_scaled_down(tmp_path: Path) -> None:
    scale = 8_000_000
    refs = sample.build(tmp_path / "bench", "bench", scale_bytes=scale)
    assert len(refs) >= 30
    blobs = list((tmp_path / "bench" / "blobs" / "sha256").iterdir())
    assert sum(p.stat().st_size for p in blobs) >= scale
    store = LayoutStore(tmp_path / "bench")
    users: Counter[str] = Counter()
    for _name, desc in store.refs():
        for _, doc in _walk(tmp_path / "bench", desc.media_type, desc.digest):
            users.update({la["digest"] for la in doc.get("layers", [])})
    assert sum(1 for n in users.values() if n >= 5) >= 4       # the shared base layers


def test_unknown_profile(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown sample profile"):
        sample.build(tmp_path / "x", "nope")


def test_cli_build(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert sample.main(["build", str(tmp_path / "l"), "--profile", "test"]) == 0
    printed = capsys.readouterr().out.split()
    assert set(printed) == set(TEST_REFS) - {"docker.io/example/big:v1"}


def test_random_bytes_past_one_randbytes_call() -> None:
    # one randbytes() call stops at 2**31 bits (256 MiB): the bench at 4 GB needs bigger layers
    size = (256 << 20) + 12345
    data = sample.random_bytes("big", size)
    assert len(data) == size and data[:1000] == sample.random_bytes("big", 1000)
    assert data == sample.random_bytes("big", size)          # deterministic


def test_many_profile_is_small_images_sharing_bases(tmp_path: Path) -> None:
    refs = sample.build(tmp_path / "a", "many", count=6)
    assert len(refs) == 6 and refs[0] == "docker.io/library/svc0000:v1"
    index = json.loads((tmp_path / "a" / "index.json").read_text())
    kinds = [m["mediaType"] for m in index["manifests"]]
    assert kinds.count(sample.OCI_INDEX) == 2                  # svc0000 and svc0005: two arches
    blobs = list((tmp_path / "a" / "blobs" / "sha256").iterdir())
    # 8 images' worth of manifests, configs and 3 own layers each, plus the 6 bases the first images use
    assert len(blobs) == 2 + 8 * 5 + 6
    assert sample.build(tmp_path / "b", "many", count=6) == refs
    assert sorted(p.name for p in (tmp_path / "b" / "blobs" / "sha256").iterdir()) == sorted(p.name for p in blobs)
