"""End-to-end Helm charts on loopback: a classic repo (python http.server) and an OCI chart in a real registry,
exported with the images they need, imported into a second registry, then pulled and rendered by the real Helm.

One export and one import serve every test of the module (2 CPUs are shared); each test checks one promise.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import yaml

from mirror import sample
from mirror.bundle import BundleInfo
from mirror.charts import HELM_CONFIG, HELM_CONTENT, HELM_PROV
from tests.support.charts import chart_files, helm_env, index_yaml, package, serve_dir, sha256_hex
from tests.support.registries import RegistryFactory
from tests.support.tools import need as _need
from tests.support.tools import run as _run

pytestmark = pytest.mark.e2e

BASE = "airgap"
ACCEPT = ", ".join(["application/vnd.oci.image.index.v1+json", "application/vnd.oci.image.manifest.v1+json",
                    "application/vnd.docker.distribution.manifest.list.v2+json",
                    "application/vnd.docker.distribution.manifest.v2+json"])
REPO = "https://charts.example.com/stable"
OCI_CHART = "oci://ghcr.io/org/charts/app"
OCI_VERSION = "1.2.3+build.1"
# Every image some chart needs, with the chart that brings it (the sample registry holds them all).
EXPECTED_IMAGES = {
    "quay.io/coreos/etcd:v3.5.9": "umbrella:0.1.0",           # Chart.yaml artifacthub.io/images
    "docker.io/library/nginx:1.25": "web:1.3.5, chart umbrella:0.1.0",   # web: empty tag -> appVersion;
    #                                                                       umbrella: a values.yaml block
    "registry.k8s.io/pause:3.9": "umbrella:0.1.0",            # subchart directory charts/sub-a
    "ghcr.io/example/artifact:v1": "umbrella:0.1.0",          # nested subchart charts/sub-b-0.2.0.tgz
    "ghcr.io/example/tool:v1": f"app:{OCI_VERSION}",           # the OCI chart's values
}






def web_tgz(version: str) -> bytes:
    # tag left empty: charts default it to appVersion, and so does discovery
    return package(chart_files("web", version, app_version="1.25",
                               values={"image": {"repository": "nginx", "tag": ""}, "replicas": 1}))


def umbrella_tgz() -> bytes:
    files: dict[str, str | bytes] = {}
    files.update(chart_files(
        "umbrella", "0.1.0", app_version="1.0",
        annotations={"artifacthub.io/images": yaml.safe_dump([{"name": "etcd", "image": "quay.io/coreos/etcd:v3.5.9"}
                                                               ])},
        dependencies=[{"name": "sub-a", "version": "0.1.0"}, {"name": "sub-b", "version": "0.2.0"}],
        values={"image": {"registry": "docker.io", "repository": "library/nginx", "tag": "1.25"}}))
    files.update(chart_files("sub-a", "0.1.0", prefix="umbrella/charts/",
                             values={"image": {"repository": "registry.k8s.io/pause", "tag": "3.9"}}))
    files["umbrella/charts/sub-b-0.2.0.tgz"] = package(chart_files(
        "sub-b", "0.2.0", values={"sidecarImage": "ghcr.io/example/artifact:v1"}))
    return package(files)


def app_tgz() -> bytes:
    return package(chart_files("app", OCI_VERSION, values={"image": "ghcr.io/example/tool:v1"}))


@dataclass
class World:
    tmp: Path
    target: str
    source: str
    env: dict[str, str]
    bundle: Path
    receipt: Path
    tgz: dict[str, bytes] = field(default_factory=dict)     # "name:version" -> exact source bytes
    prov: bytes = b""
    export_out: str = ""
    no_images_bundle: Path | None = None
    synced: str = ""                                        # a target that `sync` filled straight from the sources


def cli(*args: str) -> str:
    # not `python -m mirror.cli`: there the hooks that extensions register land in mirror.cli, not __main__
    return _run([sys.executable, "-c", "import sys; from mirror.cli import main; sys.exit(main())", *args])


@pytest.fixture(scope="module")
def world(registry_factory: RegistryFactory, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    _need("helm", "skopeo")
    tmp = tmp_path_factory.mktemp("charts")
    src = registry_factory("distribution")
    tgt = registry_factory("distribution")
    env = helm_env(tmp / "helm")
    # images in the source registry
    layout = tmp / "layout"
    sample.build(layout, "test")
    sample.seed(layout, src.url, quiet=True)
    # the classic repository: several web versions (a range picks one), an umbrella, relative + absolute urls
    root = tmp / "repo"
    (root / "stable" / "pkgs").mkdir(parents=True)
    tgz = {f"web:{v}": web_tgz(v) for v in ("1.0.0", "1.2.0", "1.3.5", "2.0.0")}
    tgz["umbrella:0.1.0"] = umbrella_tgz()
    entries: dict[str, list[dict[str, object]]] = {}
    for key, data in tgz.items():
        name, version = key.split(":")
        rel = f"pkgs/{name}-{version}.tgz"
        (root / "stable" / rel).write_bytes(data)
        url = f"{REPO}/{rel}" if name == "umbrella" else rel          # absolute on the repo host, or relative
        entries.setdefault(name, []).append({"apiVersion": "v2", "name": name, "version": version,
                                             "digest": sha256_hex(data), "urls": [url],
                                             "created": "2024-01-01T00:00:00Z"})
    prov = b"-----BEGIN PGP SIGNED MESSAGE-----\nnot really signed\n"
    (root / "stable" / "pkgs" / "web-1.3.5.tgz.prov").write_bytes(prov)
    (root / "stable" / "index.yaml").write_text(index_yaml(entries))
    # the OCI chart, pushed by Helm itself
    oci_tgz = app_tgz()
    (tmp / f"app-{OCI_VERSION}.tgz").write_bytes(oci_tgz)
    _run(["helm", "push", str(tmp / f"app-{OCI_VERSION}.tgz"), f"oci://{src.host}/org/charts", "--plain-http"],
         env=env)
    tgz[f"app:{OCI_VERSION}"] = oci_tgz

    with serve_dir(root) as repo_url:
        endpoints = {h: {"endpoint": src.url} for h in ("docker.io", "quay.io", "registry.k8s.io", "ghcr.io")}
        endpoints["charts.example.com"] = {"endpoint": repo_url}
        content = {"apiVersion": "airgap-mirror/v1", "kind": "Content", "registries": endpoints, "charts": [
            {"repo": REPO, "name": "web", "version": ">=1.2 <2"},
            {"repo": REPO + "/", "name": "web", "version": "1.0.0", "images": False},
            {"repo": REPO, "name": "umbrella", "version": "~0.1"},
            {"oci": OCI_CHART, "version": OCI_VERSION},
        ]}
        cfile = tmp / "content.yaml"
        cfile.write_text(yaml.safe_dump(content, sort_keys=False))
        bundle = tmp / "bundle"
        out = cli("export", "-f", str(cfile), "-o", str(bundle), "-j", "2")
        no_images = tmp / "bundle-no-images"
        cli("export", "-f", str(cfile), "-o", str(no_images), "--no-chart-images", "-j", "2")
        synced = registry_factory("distribution")
        cli("sync", "-f", str(cfile), "--to", f"{synced.host}/{BASE}", "--plain-http", "-j", "2",
            "--receipt", str(tmp / "sync-receipt.json"))
    receipt = tmp / "receipt.json"
    cli("import", str(bundle), "--to", f"{tgt.host}/{BASE}", "--plain-http", "--receipt", str(receipt), "-j", "2")
    yield World(tmp, tgt.host, src.host, env, bundle, receipt, tgz, prov, out, no_images, synced.host)
    src.stop()
    tgt.stop()
    synced.stop()


def helm_pull(w: World, host: str, repo: str, key: str) -> bytes:
    """`helm pull` of chart `key` (name:version) from HOST/BASE/repo: the bytes Helm got."""
    version = key.split(":", 1)[1]
    dest = w.tmp / "pulled" / host.replace(":", "_") / key.replace(":", "-")
    dest.mkdir(parents=True, exist_ok=True)
    _run(["helm", "pull", f"oci://{host}/{BASE}/{repo}", "--version", version, "--plain-http", "-d", str(dest)],
         env=w.env)
    (pulled,) = dest.glob("*.tgz")
    return pulled.read_bytes()


def _target_manifest(w: World, repo: str, tag: str) -> httpx.Response:
    return httpx.get(f"http://{w.target}/v2/{BASE}/{repo}/manifests/{tag}", headers={"Accept": ACCEPT})


def test_bundle_holds_the_resolved_charts_and_their_images(world: World) -> None:
    info = BundleInfo.load(world.bundle)
    by_ref = {a["ref"]: a for a in info.artifacts}
    charts = sorted(r for r, a in by_ref.items() if a.get("kind") == "chart")
    assert charts == ["charts.example.com/stable/umbrella:0.1.0", "charts.example.com/stable/web:1.0.0",
                      "charts.example.com/stable/web:1.3.5", "ghcr.io/org/charts/app:1.2.3_build.1"]
    images = {r: (a.get("meta") or {}).get("from") for r, a in by_ref.items() if a.get("kind") != "chart"}
    assert images == {ref: f"chart {chart}" for ref, chart in EXPECTED_IMAGES.items()}
    assert by_ref["charts.example.com/stable/web:1.3.5"]["meta"]["version"] == "1.3.5"   # >=1.2 <2


def test_inspect_says_which_chart_needs_which_image(world: World) -> None:
    out = cli("inspect", str(world.bundle))
    lines = out.splitlines()
    for ref, chart in EXPECTED_IMAGES.items():
        i = next(n for n, line in enumerate(lines) if line.startswith(ref + " "))
        assert lines[i + 1].strip() == f"<- needed by chart {chart}"


def test_no_chart_images_exports_only_charts(world: World) -> None:
    assert world.no_images_bundle is not None
    info = BundleInfo.load(world.no_images_bundle)
    assert {a.get("kind") for a in info.artifacts} == {"chart"} and len(info.artifacts) == 4


@pytest.mark.parametrize(("repo", "key"), [
    ("charts.example.com/stable/web", "web:1.3.5"),
    ("charts.example.com/stable/web", "web:1.0.0"),
    ("charts.example.com/stable/umbrella", "umbrella:0.1.0"),
    ("ghcr.io/org/charts/app", f"app:{OCI_VERSION}"),
])
def test_helm_pulls_byte_identical_charts_from_the_target(world: World, repo: str, key: str) -> None:
    assert helm_pull(world, world.target, repo, key) == world.tgz[key]


def test_sync_lands_the_same_charts_and_images_as_export_and_import(world: World) -> None:
    """`sync` reads the same classic repository and OCI chart straight into a target: Helm pulls the same
    bytes there, and its receipt names the same artifacts, under its own host."""
    for repo, key in (("charts.example.com/stable/web", "web:1.3.5"), ("ghcr.io/org/charts/app", f"app:{OCI_VERSION}")):
        assert helm_pull(world, world.synced, repo, key) == world.tgz[key]
    imported = json.loads(world.receipt.read_text())["artifacts"]
    synced = json.loads((world.tmp / "sync-receipt.json").read_text())["artifacts"]
    assert sorted((a["source"], a["digest"], (a["oci_url"] or "").replace(world.synced, world.target))
                  for a in synced) == sorted((a["source"], a["digest"], a["oci_url"] or "") for a in imported)


def test_helm_template_renders_the_umbrella_with_its_subcharts(world: World) -> None:
    dest = world.tmp / "template"
    dest.mkdir(exist_ok=True)
    _run(["helm", "pull", f"oci://{world.target}/{BASE}/charts.example.com/stable/umbrella", "--version", "0.1.0",
          "--plain-http", "-d", str(dest)], env=world.env)
    out = _run(["helm", "template", "rel", str(dest / "umbrella-0.1.0.tgz")], env=world.env)
    docs = [d for d in yaml.safe_load_all(out) if d]
    assert sorted(d["metadata"]["name"] for d in docs) == ["sub-a-rel", "sub-b-rel", "umbrella-rel"]
    values = {d["metadata"]["name"]: json.loads(d["data"]["values"]) for d in docs}
    assert values["sub-a-rel"]["image"]["repository"] == "registry.k8s.io/pause"
    assert values["sub-b-rel"]["sidecarImage"] == "ghcr.io/example/artifact:v1"


def test_every_discovered_image_is_in_the_target(world: World) -> None:
    for ref in EXPECTED_IMAGES:
        host, _, rest = ref.partition("/")
        repo, _, tag = rest.rpartition(":")
        r = httpx.head(f"http://{world.target}/v2/{BASE}/{host}/{repo}/manifests/{tag}", headers={"Accept": ACCEPT})
        assert r.status_code == 200, ref


def test_classic_chart_is_a_helm_oci_artifact_with_provenance(world: World) -> None:
    r = _target_manifest(world, "charts.example.com/stable/web", "1.3.5")
    assert r.status_code == 200
    doc = r.json()
    assert doc["config"]["mediaType"] == HELM_CONFIG
    assert [ly["mediaType"] for ly in doc["layers"]] == [HELM_CONTENT, HELM_PROV]
    prov = httpx.get(f"http://{world.target}/v2/{BASE}/charts.example.com/stable/web/blobs/{doc['layers'][1]['digest']}")
    assert prov.content == world.prov
    cfg = httpx.get(f"http://{world.target}/v2/{BASE}/charts.example.com/stable/web/blobs/{doc['config']['digest']}")
    assert cfg.json()["name"] == "web" and cfg.json()["version"] == "1.3.5"
    # no .prov on the server: no provenance layer
    r = _target_manifest(world, "charts.example.com/stable/web", "1.0.0")
    assert [ly["mediaType"] for ly in r.json()["layers"]] == [HELM_CONTENT]


def test_receipt_lists_oci_urls_and_mirrors_helm_writes_an_index(world: World) -> None:
    receipt = json.loads(world.receipt.read_text())
    urls = {a["source"]: a["oci_url"] for a in receipt["artifacts"] if a["kind"] == "chart"}
    assert urls["charts.example.com/stable/web:1.3.5"] == \
        f"oci://{world.target}/{BASE}/charts.example.com/stable/web"
    assert urls["ghcr.io/org/charts/app:1.2.3_build.1"] == f"oci://{world.target}/{BASE}/ghcr.io/org/charts/app"
    assert all(a["oci_url"] is None for a in receipt["artifacts"] if a["kind"] != "chart")
    out = world.tmp / "helm-out"
    cli("mirrors", "--receipt", str(world.receipt), "--format", "helm", "-o", str(out))
    settings = yaml.safe_load((out / "helm-registry.yaml").read_text())
    assert settings["endpoint"] == f"http://{world.target}" and settings["baseContentPath"] == BASE
    index = yaml.safe_load((out / "index.yaml").read_text())
    assert sorted(v["version"] for v in index["entries"]["web"]) == ["1.0.0", "1.3.5"]
    (url,) = index["entries"]["app"][0]["urls"]
    assert url == f"oci://{world.target}/{BASE}/ghcr.io/org/charts/app:1.2.3_build.1"
    assert index["entries"]["app"][0]["version"] == OCI_VERSION


def test_helm_uses_the_generated_index_as_a_classic_repo(world: World) -> None:
    out = world.tmp / "helm-index"
    cli("mirrors", "--receipt", str(world.receipt), "--format", "helm", "-o", str(out))
    dest = world.tmp / "via-index"
    dest.mkdir(exist_ok=True)
    with serve_dir(out) as url:
        _run(["helm", "repo", "add", "inside", url], env=world.env)
        _run(["helm", "pull", "inside/web", "--version", "1.3.5", "--plain-http", "-d", str(dest)], env=world.env)
    assert (dest / "web-1.3.5.tgz").read_bytes() == world.tgz["web:1.3.5"]
