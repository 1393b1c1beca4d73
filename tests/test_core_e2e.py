"""End to end with real registries on loopback: export the sample content into a split bundle, check the bundle
with standard tools (sha256sum, zstd, tar, skopeo), verify, inspect, import under a base path (plain HTTP,
TLS, basic auth, distribution v3, zot), and check digests, receipt, mirror string, idempotence and mounts."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from mirror.bundle import BundleInfo, BundleReader
from mirror.layout import LayoutStore, blob_path
from mirror.mediatypes import DOCKER_TYPES, children, parse_manifest
from mirror.reference import parse
from tests.support import flow
from tests.support.registries import Registry, RegistryFactory

PART = 1 << 20
LEAK = "pw-that-must-not-leak"


@pytest.fixture(scope="module")
def world(registry_factory: RegistryFactory, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One source registry seeded with the sample content, and one export of it split at 1M."""
    source = registry_factory("distribution")
    yield flow.exported_world(tmp_path_factory.mktemp("core"), source)
    source.stop()


@pytest.fixture(scope="module")
def imported(world: dict[str, Any], registry_factory: RegistryFactory) -> dict[str, Any]:
    """The bundle imported once into a fresh plain-HTTP target under airgap-images (timed)."""
    target = registry_factory("distribution")
    receipt = world["tmp"] / "receipt.json"
    t0 = time.monotonic()
    res = flow.run_cli(flow.import_args(world["bundle"], target, "airgap-images", "--receipt", str(receipt),
                                        "--username", "someone", "--password-stdin"), stdin=LEAK + "\n")
    took = time.monotonic() - t0
    assert res.code == 0, res.err
    yield {"target": target, "receipt": receipt, "res": res, "seconds": took}
    target.stop()


def reachable(layout: Path, refs: list[str]) -> set[str]:
    """Every digest (manifests, configs, layers) the refs reach in the sample layout."""
    store = LayoutStore(layout)
    out: set[str] = set()
    todo = [(d.media_type, d.digest) for name, d in store.refs() if name in refs]
    while todo:
        mt, dg = todo.pop()
        if dg in out:
            continue
        out.add(dg)
        mt, doc = parse_manifest(blob_path(layout, dg).read_bytes(), mt)
        kids, blobs = children(mt, doc)
        todo += [(k.media_type, k.digest) for k in kids]
        out.update(b.digest for b in blobs)
    return out


# -- the bundle ------------------------------------------------------------------------------------------

def test_export_summary(world: dict[str, Any]) -> None:
    out = world["export"].out
    assert "export: 6 artifacts ok, 0 failed" in out
    assert "MB/s" in out and "part(s)" in out
    assert world["export"].err.strip() == ""


def test_parts_named_and_capped(world: dict[str, Any]) -> None:
    info: BundleInfo = world["info"]
    bundle: Path = world["bundle"]
    names = sorted(p.name for p in bundle.iterdir())
    parts = [n for n in names if ".tar.zst." in n]
    assert names == sorted(["SHA256SUMS", "bundle.json", *parts])
    assert parts == [f"content.tar.zst.{i:03d}" for i in range(len(parts))]
    assert len(parts) >= 4                                        # the 3 MB layer alone needs 3
    assert all((bundle / n).stat().st_size <= PART for n in parts)
    assert [p.name for p in info.parts] == parts
    big = max(info.blobs.values(), key=lambda e: e.size)
    assert big.size > PART
    spanned = [p for p, s, e in info.part_bounds() if s < big.offset + big.length and e > big.offset]
    assert len(spanned) >= 3


def test_sha256sum_check(world: dict[str, Any]) -> None:
    r = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=world["bundle"], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count(": OK") == len(world["info"].parts)


def test_standard_tools_unpack_an_oci_layout_skopeo_reads(world: dict[str, Any], tmp_path: Path) -> None:
    if not shutil.which("skopeo"):
        pytest.skip("skopeo not installed")
    info: BundleInfo = world["info"]
    out = tmp_path / "unpacked"
    out.mkdir()
    parts = " ".join(p.name for p in info.parts)
    subprocess.run(f"cat {parts} | zstd -d -q | tar -x -C {out}", shell=True, cwd=world["bundle"], check=True)
    assert json.loads((out / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads((out / "index.json").read_text())
    names = {m["annotations"]["org.opencontainers.image.ref.name"]: m for m in index["manifests"]}
    assert set(names) == set(flow.SAMPLE_REFS)
    for a in info.artifacts:
        assert names[a["ref"]]["digest"] == a["digest"]
    # every blob file is there with the right hash
    for dg in info.blobs:
        data = (out / "blobs" / "sha256" / dg.split(":")[1]).read_bytes()
        assert "sha256:" + hashlib.sha256(data).hexdigest() == dg
    # skopeo reads OCI media types from a layout (not Docker v2 ones, a skopeo 1.9 limit)
    oci_refs = [r for r, m in names.items() if m["mediaType"] not in DOCKER_TYPES]
    assert "docker.io/library/nginx:1.25" in oci_refs
    for ref in ("docker.io/library/nginx:1.25", "docker.io/example/big:v1"):
        raw = subprocess.run(["skopeo", "inspect", "--raw", f"oci:{out}:{ref}"], check=True,
                             capture_output=True).stdout
        assert "sha256:" + hashlib.sha256(raw).hexdigest() == names[ref]["digest"]
    # a full copy out of the layout works (reads every blob of the multi-arch index)
    subprocess.run(["skopeo", "copy", "--all", "--preserve-digests", "--quiet",
                    f"oci:{out}:docker.io/library/nginx:1.25", f"oci:{tmp_path / 'copy'}:nginx"], check=True)


def test_each_unique_blob_stored_once(world: dict[str, Any]) -> None:
    info: BundleInfo = world["info"]
    unique = reachable(world["layout"], world["refs"])
    assert set(info.blobs) == unique
    assert len(info.blobs) == len(unique)
    unique_bytes = sum(blob_path(world["layout"], d).stat().st_size for d in unique)
    assert info.unique_bytes() == unique_bytes
    bundle_bytes = sum(p.size for p in info.parts)
    metadata = 1024 * len(info.blobs) + 64 * 1024                 # tar headers, padding, frame headers, index
    assert bundle_bytes <= 1.01 * unique_bytes + metadata
    # artifacts that share the base layer all list it; it is stored once
    shared = [d for d in unique if sum(d in a["contents"] for a in info.artifacts) >= 4]
    assert shared


def test_bundle_json_describes_artifacts(world: dict[str, Any]) -> None:
    info: BundleInfo = world["info"]
    doc = json.loads((world["bundle"] / "bundle.json").read_text())
    assert doc["format_version"] == 1 and doc["id"] and doc["created"] and doc["tool_version"]
    arts = {a["ref"]: a for a in info.artifacts}
    assert set(arts) == set(flow.SAMPLE_REFS)
    src = world["source"]
    for ref, a in arts.items():
        repo, tag = parse(ref).repository, parse(ref).tag
        assert a["digest"] == flow.head_digest(src, repo, tag or "")        # identical to the source
    assert sorted(arts["docker.io/library/nginx:1.25"]["platforms"]) == ["linux/amd64", "linux/arm64/v8"]
    assert arts["ghcr.io/example/artifact:v1"]["artifact_type"] == "application/vnd.example.thing.v1"


def test_verify_ok(world: dict[str, Any]) -> None:
    res = flow.run_cli(["verify", str(world["bundle"])])
    assert res.code == 0, res.err
    assert res.out.startswith(f"ok: {len(world['info'].blobs)} blobs")


def test_inspect(world: dict[str, Any]) -> None:
    res = flow.run_cli(["inspect", str(world["bundle"]), "--json"])
    assert res.code == 0, res.err
    doc = json.loads(res.out)
    assert {a["ref"] for a in doc["artifacts"]} == set(flow.SAMPLE_REFS)
    assert doc["unique_bytes"] == world["info"].unique_bytes()
    assert len(doc["parts"]) == len(world["info"].parts)
    for a in doc["artifacts"]:
        assert {"digest", "media_type", "platforms", "size"} <= set(a)
    res = flow.run_cli(["inspect", str(world["bundle"])])
    assert res.code == 0
    for ref in flow.SAMPLE_REFS:
        assert ref in res.out
    assert "unique blob bytes:" in res.out and "content.tar.zst.000" in res.out
    # a column as wide as its longest value: every row's digest starts under the header's DIGEST
    lines = res.out.splitlines()
    header = next(line for line in lines if line.startswith("SOURCE"))
    rows = [line for line in lines if line.split(" ")[0] in flow.SAMPLE_REFS]
    assert len(rows) == len(flow.SAMPLE_REFS)
    assert {row.index("sha256:") for row in rows} == {header.index("DIGEST")}


# -- import ----------------------------------------------------------------------------------------------

def check_target(world: dict[str, Any], target: Registry, base: str = "airgap-images") -> None:
    for a in world["info"].artifacts:
        repo, tag = flow.mirrored_name(a["ref"], target, base)
        assert flow.head_digest(target, repo, tag) == a["digest"], a["ref"]
        assert flow.skopeo_raw_digest(target, repo, tag) == a["digest"], a["ref"]


def test_import_lands_every_artifact_with_identical_digests(world: dict[str, Any], imported: dict[str, Any]
                                                            ) -> None:
    target = imported["target"]
    check_target(world, target)
    repos = set(flow.catalog(target))
    assert repos == {flow.mirrored_name(r, target)[0] for r in flow.SAMPLE_REFS}
    assert "airgap-images/docker.io/library/nginx" in repos
    assert "airgap-images/registry.k8s.io/pause" in repos


def test_import_output_summary_mounts_and_mirror_string(world: dict[str, Any], imported: dict[str, Any]
                                                       ) -> None:
    out = imported["res"].out
    host = imported["target"].host
    assert "6 artifacts ok, 0 failed" in out
    # the base layer is shared by five repositories: pushed once, then mounted
    mounted = int(out.split("mounted ")[1].split(";")[0])
    assert mounted >= 4
    fetched = int(out.split("blobs fetched ")[1].split(",")[0])
    assert 0 < fetched < len(world["info"].blobs)                # each blob pushed once; manifests are not blobs
    want = ",".join(f"{h}::{host}/airgap-images/{h}" for h in sorted(flow.SOURCE_HOSTS))
    assert want in out.splitlines()
    assert LEAK not in out and LEAK not in imported["res"].err


def test_receipt(world: dict[str, Any], imported: dict[str, Any]) -> None:
    text = imported["receipt"].read_text()
    assert LEAK not in text
    doc = json.loads(text)
    host = imported["target"].host
    assert doc["format"] == "airgap-mirror/receipt/v1"
    assert doc["target"] == {"registry": host, "base": "airgap-images", "plain_http": True, "insecure": False,
                             "ca_file": None, "username": "someone", "pack_base": None}
    assert doc["hosts"] == {h: h for h in flow.SOURCE_HOSTS}
    arts = {a["source"]: a for a in doc["artifacts"]}
    assert set(arts) == set(flow.SAMPLE_REFS)
    for a in world["info"].artifacts:
        r = arts[a["ref"]]
        assert r["digest"] == a["digest"] and r["media_type"] == a["media_type"]
        assert r["target"] == f"{host}/airgap-images/{a['ref']}"
    assert doc["bundles"] == [world["info"].id]
    assert set(doc["blobs"]) == set(world["info"].blobs)


def test_second_import_skips_everything_and_is_fast(world: dict[str, Any], imported: dict[str, Any]) -> None:
    target = imported["target"]
    t0 = time.monotonic()
    res = flow.run_cli(flow.import_args(world["bundle"], target, "airgap-images"))
    took = time.monotonic() - t0
    assert res.code == 0, res.err
    assert "6 artifacts ok, 0 failed; blobs fetched 0, skipped 0, mounted 0; 0.0 MB" in res.out
    assert took < max(0.5 * imported["seconds"], 1.0), (took, imported["seconds"])
    check_target(world, target)


def test_import_dry_run_says_what_the_target_lacks_and_writes_nothing(world: dict[str, Any],
                                                                       imported: dict[str, Any],
                                                                       target_registry: Registry) -> None:
    info: BundleInfo = world["info"]
    blobs = {d for d, e in info.blobs.items() if "manifest" not in e.media_type and "index" not in e.media_type}
    fresh = flow.run_cli([*flow.import_args(world["bundle"], target_registry), "--dry-run"])
    assert fresh.code == 0, fresh.err
    assert "6 artifacts (6 new, 0 to tag, 0 in place)" in fresh.out
    assert f"blobs to push {len(blobs)} ({sum(info.blobs[d].size for d in blobs) / 1e6:.1f} MB" in fresh.out
    assert "nothing was written (--dry-run)" in fresh.out and "receipt" not in fresh.out
    assert flow.catalog(target_registry) == []
    done = flow.run_cli([*flow.import_args(world["bundle"], imported["target"]), "--dry-run"])
    assert done.code == 0, done.err
    assert "6 artifacts (0 new, 0 to tag, 6 in place); blobs to push 0" in done.out


def test_import_without_base_path(world: dict[str, Any], target_registry: Registry) -> None:
    res = flow.run_cli(flow.import_args(world["bundle"], target_registry, ""))
    assert res.code == 0, res.err
    assert flow.head_digest(target_registry, "docker.io/library/nginx", "1.25") == next(
        a["digest"] for a in world["info"].artifacts if a["ref"] == "docker.io/library/nginx:1.25")
    assert f"docker.io::{target_registry.host}/docker.io" in res.out


def test_import_into_tls_registry_with_ca_file(world: dict[str, Any], tls_registry: Registry,
                                               tmp_path: Path) -> None:
    res = flow.run_cli(flow.import_args(world["bundle"], tls_registry, "airgap/images",
                                        "--receipt", str(tmp_path / "r.json")))
    assert res.code == 0, res.err
    check_target(world, tls_registry, "airgap/images")
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["target"]["ca_file"] == tls_registry.ca_file and doc["target"]["plain_http"] is False


def test_import_into_auth_registry(world: dict[str, Any], auth_registry: Registry, tmp_path: Path) -> None:
    assert auth_registry.password
    res = flow.run_cli(flow.import_args(world["bundle"], auth_registry, "airgap-images",
                                        "--username", auth_registry.username or "", "--password-stdin",
                                        "--receipt", str(tmp_path / "r.json")),
                       stdin=auth_registry.password + "\n")
    assert res.code == 0, res.err
    check_target(world, auth_registry)
    text = (tmp_path / "r.json").read_text()
    assert auth_registry.password not in text
    assert json.loads(text)["target"]["username"] == auth_registry.username
    assert auth_registry.password not in res.out + res.err


def test_export_platform_filter(world: dict[str, Any], tmp_path: Path) -> None:
    src = world["source"]
    content = flow.write_content(tmp_path / "arm.yaml", src, ["nginx:1.25"])
    flow.export(content, tmp_path / "B", "--platform", "linux/arm64")
    info = BundleInfo.load(tmp_path / "B")
    (a,) = info.artifacts
    assert a["platforms"] == ["linux/arm64/v8"]
    assert a["source_digest"] == flow.head_digest(src, "library/nginx", "1.25")
    assert a["digest"] != a["source_digest"]                     # a filtered index is a new document
    assert len(info.blobs) < len(world["info"].blobs)
    entries = json.loads(BundleReader(tmp_path / "B").read_blob(a["digest"]))["manifests"]
    assert [e["platform"]["architecture"] for e in entries] == ["arm64"]    # amd64's attestation went too
    # BuildKit's attestation of the amd64 image goes with it: the index keeps it, the bundle holds it.
    flow.export(content, tmp_path / "A", "--platform", "linux/amd64")
    (a,) = BundleInfo.load(tmp_path / "A").artifacts
    assert a["platforms"] == ["linux/amd64"]
    entries = json.loads(BundleReader(tmp_path / "A").read_blob(a["digest"]))["manifests"]
    assert [e["platform"]["architecture"] for e in entries] == ["amd64", "unknown"]
    assert entries[1]["annotations"]["vnd.docker.reference.digest"] == entries[0]["digest"]
    assert entries[1]["digest"] in a["contents"]


# -- distribution v3 (the registry Harbor builds on) ----------------------------------------------------

def test_import_into_distribution3(world: dict[str, Any], distribution3_registry: Registry,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    res = flow.run_cli(flow.import_args(world["bundle"], distribution3_registry, "airgap-images"))
    assert res.code == 0, res.err
    check_target(world, distribution3_registry)
    # A repeated import writes nothing: every tag already names its digest (one HEAD per artifact).
    sent: list[str] = []
    real_send = httpx.Client.send

    def counting_send(self: httpx.Client, request: httpx.Request, **kw: Any) -> httpx.Response:
        sent.append(f"{request.method} {request.url.path}")
        return real_send(self, request, **kw)

    monkeypatch.setattr(httpx.Client, "send", counting_send)
    again = flow.run_cli(flow.import_args(world["bundle"], distribution3_registry, "airgap-images"))
    assert again.code == 0, again.err
    assert "blobs fetched 0," in again.out
    writes = [r for r in sent if not r.startswith(("HEAD ", "GET "))]
    assert writes == [], writes
    assert sum(r.startswith("HEAD ") and "/manifests/" in r for r in sent) == len(world["info"].artifacts)


def test_distribution3_as_source_gives_the_same_bundle(world: dict[str, Any], distribution3_registry: Registry,
                                                       tmp_path: Path) -> None:
    """The bundle layout depends only on the content: exported from another registry implementation,
    the parts are byte-identical."""
    refs = flow.seed_source(world["layout"], distribution3_registry)
    content = flow.write_content(tmp_path / "content.yaml", distribution3_registry, refs)
    res = flow.export(content, tmp_path / "B", "--split-size", "1M")
    assert res.code == 0, res.err
    info = BundleInfo.load(tmp_path / "B")
    assert [(p.name, p.sha256) for p in info.parts] == [(p.name, p.sha256) for p in world["info"].parts]


# -- zot -------------------------------------------------------------------------------------------------

def test_import_into_zot(world: dict[str, Any], zot_registry: Registry) -> None:
    res = flow.run_cli(flow.import_args(world["bundle"], zot_registry, "airgap-images"))
    assert res.code == 0, res.err
    check_target(world, zot_registry)


def test_zot_without_docker2s2_explains(world: dict[str, Any], registry_factory: RegistryFactory) -> None:
    if not shutil.which("zot"):
        pytest.skip("zot is not installed (the Go module proxy refuses zotregistry.dev/zot/v2)")
    zot = registry_factory("zot", docker2s2=False)
    try:
        res = flow.run_cli(flow.import_args(world["bundle"], zot, "airgap-images"))
        assert res.code != 0
        assert "docker2s2" in res.err and "Docker v2" in res.err
        for a in world["info"].artifacts:
            repo, tag = flow.mirrored_name(a["ref"], zot)
            if a["media_type"] in DOCKER_TYPES:
                assert flow.head_digest(zot, repo, tag) is None       # no converted copy, no partial tag
    finally:
        zot.stop()


def test_chunked_upload_of_a_big_layer(world: dict[str, Any], registry_factory: RegistryFactory,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Blobs above the monolithic limit go up in PATCH chunks (Content-Range), then one PUT with the digest."""
    from mirror import defaults

    monkeypatch.setattr(defaults, "MONOLITHIC_UPLOAD_MAX", 256 * 1024)
    monkeypatch.setattr(defaults, "UPLOAD_CHUNK_SIZE", 1 << 20)         # the 3 MB layer: 3+ PATCHes
    from mirror.registry import RegistryStore

    calls: list[int] = []
    real = RegistryStore._put_chunked

    def counting(self: RegistryStore, repo: str, location: str, desc: Any, chunks: Any) -> Any:
        calls.append(desc.size)
        return real(self, repo, location, desc, chunks)

    monkeypatch.setattr(RegistryStore, "_put_chunked", counting)
    target = registry_factory("distribution")
    try:
        res = flow.run_cli(flow.import_args(world["bundle"], target, "chunked"))
        assert res.code == 0, res.err
        for ref in world["refs"]:
            repo, tag = flow.mirrored_name(ref, target, "chunked")
            r = parse(ref)
            src_repo = r.repository
            assert flow.head_digest(target, repo, tag) == flow.head_digest(world["source"], src_repo, r.tag)
        assert any(size > 2 << 20 for size in calls), calls       # the big layer really went up in chunks
    finally:
        target.stop()
