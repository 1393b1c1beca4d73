"""Palette packs: reading pack artifacts, building them, and export -> import end to end on loopback."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from mirror import packs
from mirror.cli import import_items, main
from mirror.errors import MirrorError, UsageError
from mirror.mediatypes import ACCEPT
from mirror.receipt import Receipt, Target

NAME, VERSION = "cni-calico", "3.25.1"
VALUES = """\
pack:
  content:
    images:
      - image: docker.io/library/nginx:1.25
      - image: registry.k8s.io/pause:3.9
manifests:
  calico: {}
"""


def _tar(files: dict[str, bytes], *, gz: bool) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue()) if gz else raw.getvalue()


def _pack_dir(root: Path, **overrides: Any) -> Path:
    d = root / NAME
    d.mkdir(parents=True, exist_ok=True)
    doc = {"name": NAME, "displayName": "Calico", "version": VERSION, "layer": "cni", "addonType": "network",
           "cloudTypes": ["all"], **overrides}
    (d / "pack.json").write_text(json.dumps(doc))
    (d / "values.yaml").write_text(VALUES)
    return d


PACK_JSON = json.dumps({"name": NAME, "displayName": "Calico", "version": VERSION, "layer": "cni"}).encode()


# -- reading ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("form", ["targz", "plain-folder-tar", "tar-holding-targz"])
def test_read_pack_files_every_layer_form(form: str) -> None:
    folder = {f"{NAME}/pack.json": PACK_JSON, f"{NAME}/values.yaml": VALUES.encode()}
    if form == "targz":
        blob = _tar(folder, gz=True)
    elif form == "plain-folder-tar":
        blob = _tar(folder, gz=False)
    else:
        blob = _tar({f"{NAME}-{VERSION}.tar.gz": _tar(folder, gz=True)}, gz=False)
    files = packs.read_pack_files(blob)
    assert files.pack["name"] == NAME
    assert packs.declared_images(files.values) == ["docker.io/library/nginx:1.25", "registry.k8s.io/pause:3.9"]


def test_read_pack_files_without_pack_json_says_so() -> None:
    with pytest.raises(MirrorError, match=r"no pack\.json"):
        packs.read_pack_files(_tar({"x/readme.md": b"hi"}, gz=True))
    with pytest.raises(MirrorError, match="not a readable archive"):
        packs.read_pack_files(b"definitely not a tar")


def test_declared_images_and_charts() -> None:
    values = """
pack:
  content:
    images:
      - image: quay.io/a/b:1
      - quay.io/a/b:1
      - image: quay.io/c/d:2
    charts:
      - {repo: "https://charts.example.com", name: redis, version: 1.2.3}
      - {repo: "oci://registry.example.com/charts", name: nginx, version: 4.0.0}
      - {name: broken}
"""
    assert packs.declared_images(values) == ["quay.io/a/b:1", "quay.io/c/d:2"]
    assert [c["name"] for c in packs.declared_charts(values)] == ["redis", "nginx"]
    assert packs.declared_images("") == []
    assert packs.declared_images("{{ not yaml") == []


def test_pack_layer_accepts_oras_1_0_and_newer_oras() -> None:
    from mirror.store import Manifest

    layer = {"mediaType": packs.ORAS_LAYER, "digest": "sha256:" + "a" * 64, "size": 5,
             "annotations": {"org.opencontainers.image.title": f"{NAME}-{VERSION}.tar.gz"}}
    old = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
           "config": {"mediaType": packs.ORAS_CONFIG, "digest": packs.EMPTY_CONFIG_DIGEST, "size": 2},
           "layers": [layer]}
    new = {**old, "artifactType": packs.ORAS_ARTIFACT,
           "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": packs.EMPTY_CONFIG_DIGEST,
                      "size": 2}}
    for doc in (old, new):
        data = json.dumps(doc).encode()
        assert packs.pack_layer(Manifest(data, doc["mediaType"], "sha256:x")).digest == layer["digest"]


# -- building -----------------------------------------------------------------------------------------------

def test_build_is_the_oras_1_0_form_and_reproducible(tmp_path: Path) -> None:
    d = _pack_dir(tmp_path)
    a, b = packs.build_pack(d), packs.build_pack(d)
    assert a.manifest.digest == b.manifest.digest
    doc = json.loads(a.manifest.data)
    assert "artifactType" not in doc
    assert doc["config"] == {"mediaType": packs.ORAS_CONFIG, "digest": packs.EMPTY_CONFIG_DIGEST, "size": 2}
    (layer,) = doc["layers"]
    assert layer["mediaType"] == "application/vnd.oci.image.layer.v1.tar"
    assert layer["annotations"] == {"org.opencontainers.image.title": f"{NAME}-{VERSION}.tar.gz"}
    blob = a.store.blobs[layer["digest"]]
    assert blob[:2] == b"\x1f\x8b"
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        assert f"{NAME}/pack.json" in tar.getnames()
    assert packs.read_pack_files(blob).pack["layer"] == "cni"


def test_build_writes_an_oci_archive_and_a_layout_dir(tmp_path: Path) -> None:
    d = _pack_dir(tmp_path)
    assert main(["pack", "build", str(d), "-o", str(tmp_path / "pack.tar")]) == 0
    with tarfile.open(tmp_path / "pack.tar") as tar:
        names = tar.getnames()
        index = json.loads(tar.extractfile("index.json").read())  # type: ignore[union-attr]
    assert "oci-layout" in names
    (entry,) = index["manifests"]
    assert entry["annotations"]["org.opencontainers.image.ref.name"] == VERSION
    assert f"blobs/sha256/{entry['digest'].split(':')[1]}" in names
    out = tmp_path / "layout"
    out.mkdir()
    assert main(["pack", "build", str(d), "-o", str(out)]) == 0
    assert json.loads((out / "index.json").read_text())["manifests"][0]["digest"] == entry["digest"]


@pytest.mark.parametrize(("change", "message"), [
    ({"layer": "network"}, "is not one of"),
    ({"displayName": ""}, "lacks displayName"),
    ({"name": "Bad Name"}, "cannot be a repository name"),
    ({"charts": ["charts/missing-1.0.0.tgz"]}, "not in the folder"),
])
def test_build_validates_pack_json(tmp_path: Path, change: dict[str, Any], message: str) -> None:
    d = _pack_dir(tmp_path, **change)
    with pytest.raises(UsageError, match=message):
        packs.validate_pack_dir(d)


def test_build_requires_values_yaml(tmp_path: Path) -> None:
    d = _pack_dir(tmp_path)
    (d / "values.yaml").unlink()
    with pytest.raises(UsageError, match=r"values\.yaml is missing"):
        packs.validate_pack_dir(d)
    assert main(["pack", "build", str(d), "-o", str(tmp_path / "x.tar")]) == 2


# -- import placement and palette values ---------------------------------------------------------------------

def _reader(artifacts: list[dict[str, Any]]) -> Any:
    return SimpleNamespace(info=SimpleNamespace(artifacts=artifacts))


def test_import_items_default_pack_base_is_the_to_base() -> None:
    arts = [{"ref": f"src.example.com/production/spectro-packs/archive/{NAME}:{VERSION}", "kind": "pack",
             "digest": "sha256:" + "1" * 64, "meta": {"target_path": f"spectro-packs/archive/{NAME}"}},
            {"ref": "docker.io/library/nginx:1.25", "kind": "image", "digest": "sha256:" + "2" * 64}]
    default = import_items(_reader(arts), "h:5000", "airgap")
    assert str(default[0].target) == f"h:5000/airgap/spectro-packs/archive/{NAME}:{VERSION}"
    assert str(default[1].target) == "h:5000/airgap/docker.io/library/nginx:1.25"
    other = import_items(_reader(arts), "h:5000", "airgap", "spectro-packs")
    assert str(other[0].target) == f"h:5000/spectro-packs/spectro-packs/archive/{NAME}:{VERSION}"
    assert str(other[1].target) == "h:5000/airgap/docker.io/library/nginx:1.25"


def test_render_palette_packs() -> None:
    from mirror.mirrorconfig import render_text

    r = Receipt(Target("h.corp:443", "airgap-images", False, True, None, "bob", "spectro-packs"),
                hosts={"docker.io": "docker.io"})
    text = render_text(r, "palette-packs")
    import yaml

    reg = yaml.safe_load(text)["config"]["ociPackRegistry"]
    assert reg["endpoint"] == "h.corp:443"
    assert reg["baseContentPath"] == "spectro-packs"
    assert reg["insecureSkipVerify"] is True
    assert "mirrorRegistries" not in reg
    r.target.pack_base = None
    assert yaml.safe_load(render_text(r, "palette-packs"))["config"]["ociPackRegistry"]["baseContentPath"] == \
        "airgap-images"


# -- end to end: oras-py pushes, we export and import ----------------------------------------------------------

def _manifest_digest(url: str, repo: str, tag: str) -> str | None:
    r = httpx.head(f"{url}/v2/{repo}/manifests/{tag}", headers={"Accept": ACCEPT}, trust_env=False)
    return r.headers.get("docker-content-digest") if r.status_code == 200 else None


def oras_push_pack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, host: str, base: str,
                   auth: tuple[str, str] | None = None) -> str:
    """Push `<name>-<version>.tar.gz` with oras-py defaults; returns the manifest digest."""
    import oras.client

    work = tmp_path / "oras"
    _pack_dir(work)
    archive = work / f"{NAME}-{VERSION}.tar.gz"
    archive.write_bytes(_tar({f"{NAME}/pack.json": PACK_JSON, f"{NAME}/values.yaml": VALUES.encode()}, gz=True))
    monkeypatch.chdir(work)
    # oras-py's default token backend misreads a Basic challenge as a token realm: use its basic backend.
    client = oras.client.OrasClient(hostname=host, insecure=True, auth_backend="basic" if auth else "token")
    if auth:
        client.auth.set_basic_auth(*auth)
    resp = client.push(files=[archive.name], target=f"{host}/{base}/spectro-packs/archive/{NAME}:{VERSION}")
    return str(resp.headers["Docker-Content-Digest"])


@pytest.fixture
def seeded(source_registry: Any, tmp_path: Path) -> Any:
    from mirror import sample

    sample.build(tmp_path / "sample", "test")
    sample.seed(tmp_path / "sample", f"http://{source_registry.host}", quiet=True)
    return source_registry


@pytest.mark.e2e
def test_oras_pack_export_import_digest_unchanged(seeded: Any, target_registry: Any, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    src = seeded
    digest = oras_push_pack(tmp_path, monkeypatch, src.host, "production")
    content = tmp_path / "content.yaml"
    content.write_text(f"""\
apiVersion: airgap-mirror/v1
kind: Content
registries:
  docker.io: {{endpoint: "http://{src.host}"}}
  registry.k8s.io: {{endpoint: "http://{src.host}"}}
  "{src.host}": {{plain_http: true}}
packs:
  - registry: {src.host}/production
    name: {NAME}
    version: {VERSION}
""")
    bundle = tmp_path / "bundle"
    assert main(["export", "-f", str(content), "-o", str(bundle)]) == 0
    info = json.loads((bundle / "bundle.json").read_text())
    arts = {a["ref"]: a for a in info["artifacts"]}
    pack_ref = f"{src.host}/production/spectro-packs/archive/{NAME}:{VERSION}"
    assert arts[pack_ref]["kind"] == "pack" and arts[pack_ref]["digest"] == digest
    assert arts["docker.io/library/nginx:1.25"]["meta"]["from"] == f"pack {NAME}:{VERSION}"
    assert "registry.k8s.io/pause:3.9" in arts

    capsys.readouterr()
    assert main(["inspect", str(bundle)]) == 0
    assert f"needed by pack {NAME}:{VERSION}" in capsys.readouterr().out

    receipt = tmp_path / "receipt.json"
    assert main(["import", str(bundle), "--to", f"{target_registry.host}/airgap", "--plain-http",
                 "--receipt", str(receipt)]) == 0
    tgt = target_registry.url
    assert _manifest_digest(tgt, f"airgap/spectro-packs/archive/{NAME}", VERSION) == digest
    assert _manifest_digest(tgt, "airgap/docker.io/library/nginx", "1.25") == \
        _manifest_digest(src.url, "library/nginx", "1.25")
    assert _manifest_digest(tgt, "airgap/registry.k8s.io/pause", "3.9") is not None

    # An explicit pack base moves only the packs.
    assert main(["import", str(bundle), "--to", f"{target_registry.host}/airgap", "--plain-http",
                 "--pack-base", "spectro-packs"]) == 0
    assert _manifest_digest(tgt, f"spectro-packs/spectro-packs/archive/{NAME}", VERSION) == digest

    capsys.readouterr()
    assert main(["mirrors", "--receipt", str(receipt), "--format", "palette-packs"]) == 0
    out = capsys.readouterr().out
    assert "ociPackRegistry" in out and "baseContentPath: airgap" in out

    # sync lands the pack where import does (under the base, at the pack's own path), and its images
    assert main(["sync", "-f", str(content), "--to", f"{target_registry.host}/dmz", "--plain-http"]) == 0
    assert _manifest_digest(tgt, f"dmz/spectro-packs/archive/{NAME}", VERSION) == digest
    assert _manifest_digest(tgt, "dmz/docker.io/library/nginx", "1.25") == \
        _manifest_digest(src.url, "library/nginx", "1.25")


@pytest.mark.e2e
def test_pack_push_then_export_reads_it(target_registry: Any, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    d = _pack_dir(tmp_path)
    built = packs.build_pack(d)
    assert main(["pack", "push", str(d), "--to", f"{target_registry.host}/custom", "--plain-http"]) == 0
    assert _manifest_digest(target_registry.url, f"custom/spectro-packs/archive/{NAME}", VERSION) == \
        built.manifest.digest
    # What we pushed is a pack our own export understands (and oras-py can pull).
    import oras.client

    client = oras.client.OrasClient(hostname=target_registry.host, insecure=True)
    pulled = client.pull(target=f"{target_registry.host}/custom/spectro-packs/archive/{NAME}:{VERSION}",
                         outdir=str(tmp_path / "pulled"))
    assert [Path(p).name for p in pulled] == [f"{NAME}-{VERSION}.tar.gz"]
    assert packs.read_pack_files(Path(pulled[0]).read_bytes()).pack["name"] == NAME
