"""Images read from an OCI image layout instead of a registry (what buildah, buildx, kaniko, skopeo and umoci
write): named by the content file, exported with their exact digests, imported like any other. The layouts here
are written by skopeo (a multi-arch index, from the source registry) and umoci (built from nothing)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from mirror.bundle import BundleInfo
from mirror.content import load
from mirror.errors import ContentFileError
from tests.support import flow
from tests.support.registries import Registry
from tests.support.tools import need, run

HEAD = "apiVersion: airgap-mirror/v1\nkind: Content\n"


def write(directory: Path, images: str) -> Path:
    p = directory / "content.yaml"
    p.write_text(HEAD + "images:\n" + images)
    return p


def test_a_skopeo_layout_is_exported_and_imported_with_its_digest(source_registry: Registry,
                                                                  target_registry: Registry, tmp_path: Path) -> None:
    need("skopeo")
    flow.seed_source(flow.build_sample(tmp_path), source_registry)
    run(["skopeo", "copy", "-q", "--all", "--preserve-digests", "--src-tls-verify=false",
         f"docker://{source_registry.host}/library/nginx:1.25", f"oci:{tmp_path / 'web-oci'}:1.25"])
    digest = flow.head_digest(source_registry, "library/nginx", "1.25")
    # no registries entry for harbor.corp: nothing may ask a registry for it (this machine has no DNS for it)
    content = write(tmp_path, "  - {ref: 'harbor.corp/mycorp/web:1.25', layout: web-oci}\n")
    flow.export(content, tmp_path / "B")
    arts = BundleInfo.load(tmp_path / "B").artifacts
    assert [(a["ref"], a["digest"]) for a in arts] == [("harbor.corp/mycorp/web:1.25", digest)]
    assert sorted(arts[0]["platforms"]) == ["linux/amd64", "linux/arm64/v8"]
    res = flow.run_cli(flow.import_args(tmp_path / "B", target_registry))
    assert res.code == 0, res.err
    assert flow.head_digest(target_registry, "airgap-images/harbor.corp/mycorp/web", "1.25") == digest


@pytest.mark.parametrize("members", ["./", "plain"])
def test_an_uncompressed_tar_of_a_layout_is_read_in_place(source_registry: Registry, target_registry: Registry,
                                                          tmp_path: Path, members: str) -> None:
    """What `docker buildx build --output type=oci,dest=app.tar` writes; with ./ names (tar -C DIR .) or not."""
    need("skopeo")
    flow.seed_source(flow.build_sample(tmp_path), source_registry)
    layout = tmp_path / "oci"
    run(["skopeo", "copy", "-q", "--all", "--preserve-digests", "--src-tls-verify=false",
         f"docker://{source_registry.host}/example/big:v1", f"oci:{layout}:v1"])
    archive = tmp_path / "big.tar"
    run(["tar", "-cf", str(archive), "-C", str(layout), *(["."] if members == "./" else
                                                          ["oci-layout", "index.json", "blobs"])])
    shutil.rmtree(layout)                           # read from the tar alone
    content = write(tmp_path, "  - {ref: 'harbor.corp/mycorp/big:v1', layout: big.tar}\n")
    flow.export(content, tmp_path / "B")
    digest = flow.head_digest(source_registry, "example/big", "v1")
    assert [a["digest"] for a in BundleInfo.load(tmp_path / "B").artifacts] == [digest]
    res = flow.run_cli(flow.import_args(tmp_path / "B", target_registry))
    assert res.code == 0, res.err
    assert flow.head_digest(target_registry, "airgap-images/harbor.corp/mycorp/big", "v1") == digest


def test_a_compressed_tar_is_refused_with_a_hint(tmp_path: Path) -> None:
    layout = tmp_path / "oci"
    (layout / "blobs").mkdir(parents=True)
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (layout / "index.json").write_text('{"schemaVersion": 2, "manifests": []}')
    run(["tar", "-czf", str(tmp_path / "x.tar.gz"), "-C", str(layout), "."])
    content = write(tmp_path, "  - {ref: 'mycorp/x:1', layout: x.tar.gz}\n")
    res = flow.run_cli(["export", "-f", str(content), "-o", str(tmp_path / "never")])
    assert res.code != 0 and "is not an uncompressed tar" in res.error_line and "gunzip" in res.error_line


def test_an_umoci_layout_by_its_ref_name(tmp_path: Path) -> None:
    need("umoci")
    layout = tmp_path / "tool-oci"
    run(["umoci", "init", "--layout", str(layout)])
    run(["umoci", "new", "--image", f"{layout}:dev"])
    want = json.loads((layout / "index.json").read_text())["manifests"][0]["digest"]
    content = write(tmp_path, f"  - {{ref: 'mycorp/tool:1.0', layout: {layout}, layout_ref: dev}}\n")
    flow.export(content, tmp_path / "B")
    arts = BundleInfo.load(tmp_path / "B").artifacts
    assert [(a["ref"], a["digest"]) for a in arts] == [("docker.io/mycorp/tool:1.0", want)]

    wrong = write(tmp_path, f"  - {{ref: 'mycorp/tool:1.0', layout: {layout}}}\n")     # looks for "1.0"
    res = flow.run_cli(["export", "-f", str(wrong), "-o", str(tmp_path / "never")])
    assert res.code != 0 and "1.0 is not in index.json (it has dev)" in res.err and "layout_ref:" in res.err
    assert not (tmp_path / "never" / "bundle.json").exists()


def test_a_missing_layout_names_the_line(tmp_path: Path) -> None:
    content = write(tmp_path, "  - nginx:1.25\n  - {ref: 'mycorp/x:1', layout: nowhere}\n")
    res = flow.run_cli(["export", "-f", str(content), "-o", str(tmp_path / "never")])
    assert res.code != 0 and f"{content}:5" in res.error_line and "not an OCI layout" in res.error_line
    assert "buildah push" in res.error_line


@pytest.mark.parametrize(("entry", "what"), [
    ("{ref: k8s.io/x, layout: d, tags: {semver: '1.x'}}", "tags: asks a registry"),
    ("{ref: 'k8s.io/x:1', layout: d, referrers: true}", "referrers: asks a registry"),
    ("{ref: 'k8s.io/x:1', layout_ref: dev}", "layout_ref: needs layout:"),
])
def test_layout_entries_refused(tmp_path: Path, entry: str, what: str) -> None:
    with pytest.raises(ContentFileError) as ei:
        load(write(tmp_path, f"  - {entry}\n"))
    assert ei.value.where.endswith(":4") and what in ei.value.what


def test_layout_path_is_relative_to_the_content_file(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    c = load(write(tmp_path / "sub", "  - {ref: 'k8s.io/x:1', layout: ../img}\n"))
    assert c.images[0].layout == str(tmp_path / "sub" / ".." / "img")
