"""Unit tests for Helm charts: version ranges, urls, image discovery, Helm OCI artifacts, content validation."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import httpx
import pytest
import yaml

from mirror import charts
from mirror.charts import (
    HELM_CONFIG,
    HELM_CONTENT,
    HELM_PROV,
    ChartStore,
    IndexCache,
    build_artifact,
    chart_url,
    discover_images,
    fetch_classic,
    fetch_url,
    helm_config,
    oci_source,
    render_helm,
    repo_source_name,
    resolve_entry,
    values_images,
)
from mirror.cli import ExportContext
from mirror.content import load
from mirror.errors import ContentFileError, DigestMismatchError, NotFoundError
from mirror.http import HostSettings, Http
from mirror.mediatypes import Descriptor
from mirror.receipt import ImportedArtifact, Receipt, Target
from mirror.reference import parse
from mirror.versions import VersionRange
from tests.support.charts import chart_files, index_yaml, package, sha256_hex

VERSIONS = ["17.10.1", "17.11.0", "17.11.3", "17.12.0", "18.0.0", "1.2.0", "1.9.9", "2.0.0", "2.0.0-rc.1",
            "1.5.0-beta.2", "0.2.5", "0.3.0", "v3.1.0"]


# -- version ranges --------------------------------------------------------------------------------------
@pytest.mark.parametrize(("constraint", "best"), [
    ("17.11.3", "17.11.3"),
    ("=17.11.0", "17.11.0"),
    ("~17.11", "17.11.3"),
    ("~17.11.0", "17.11.3"),
    ("~17", "17.12.0"),
    ("17.11", "17.11.3"),           # a partial version is a wildcard, as in Helm
    ("17.11.x", "17.11.3"),
    ("17.*", "17.12.0"),
    (">=1.2 <2", "1.9.9"),
    (">=1.2, <2", "1.9.9"),
    (">= 1.2 < 2", "1.9.9"),
    ("^1.2", "1.9.9"),
    ("^0.2.1", "0.2.5"),
    ("^0", "0.3.0"),
    ("1.2 - 1.9", "1.9.9"),
    ("1.2 - 1.8", "1.2.0"),
    (">17.11.3 <18", "17.12.0"),
    ("<=17.11", "17.11.3"),
    (">17.11", "18.0.0"),
    ("<1.0.0 || ~17.10", "17.10.1"),
    ("!=18.0.0 >=17", "17.12.0"),
    ("*", "18.0.0"),
    (">=2.0.0-0 <3", "2.0.0"),
    (">=2.0.0-0 <2.0.0", "2.0.0-rc.1"),     # a prerelease only when the range names one
    ("~3.1", "v3.1.0"),                    # a leading v in the index
    ("99", None),
    ("3.1.0", "v3.1.0"),
])
def test_version_ranges(constraint: str, best: str | None) -> None:
    assert VersionRange(constraint).best(VERSIONS) == best


def test_prereleases_need_a_prerelease_range() -> None:
    assert not VersionRange(">=1.2 <2").matches("1.5.0-beta.2")
    assert VersionRange(">=1.5.0-alpha <2").matches("1.5.0-beta.2")
    assert VersionRange("2.0.0-rc.1").best(["2.0.0-rc.1", "2.0.0-rc.0"]) == "2.0.0-rc.1"
    # semver precedence: numeric identifiers compare as numbers, a release beats its prereleases
    assert VersionRange(">=1.0.0-0").best(["1.0.0-rc.2", "1.0.0-rc.10", "1.0.0-alpha"]) == "1.0.0-rc.10"
    assert VersionRange(">=1.0.0-0").best(["1.0.0-rc.2", "1.0.0"]) == "1.0.0"


def test_build_metadata_and_non_semver_exact() -> None:
    assert VersionRange("1.2.3+build.7").best(["1.2.3+build.7", "1.2.2"]) == "1.2.3+build.7"
    index = {"entries": {"x": [{"version": "nightly-2024"}, {"version": "1.0.0"}]}}
    assert resolve_entry(index, "x", "nightly-2024")["version"] == "nightly-2024"


@pytest.mark.parametrize("bad", ["", ">>1", "~>", "1.2.3.4", "abc def", ">=1 ||"])
def test_invalid_constraints(bad: str) -> None:
    with pytest.raises(ValueError):
        VersionRange(bad)


# -- urls and names --------------------------------------------------------------------------------------
def test_chart_url_relative_and_absolute() -> None:
    repo = "https://charts.example.com/stable"
    assert chart_url(repo, "redis-1.0.0.tgz") == "https://charts.example.com/stable/redis-1.0.0.tgz"
    assert chart_url(repo + "/", "charts/redis-1.0.0.tgz") == "https://charts.example.com/stable/charts/redis-1.0.0.tgz"
    assert chart_url(repo, "/other/redis-1.0.0.tgz") == "https://charts.example.com/other/redis-1.0.0.tgz"
    assert chart_url(repo, "https://cdn.example.org/r/redis-1.0.0.tgz") == "https://cdn.example.org/r/redis-1.0.0.tgz"


def test_fetch_url_uses_the_host_endpoint() -> None:
    http = Http({"charts.bitnami.com": HostSettings(endpoint="http://127.0.0.1:8879")}, use_docker_config=False)
    try:
        assert fetch_url("https://charts.bitnami.com/bitnami/index.yaml", http) == \
            "http://127.0.0.1:8879/bitnami/index.yaml"
        assert fetch_url("https://charts.bitnami.com/x.tgz?sig=1", http) == "http://127.0.0.1:8879/x.tgz?sig=1"
        assert fetch_url("https://other.example.com/a.tgz", http) == "https://other.example.com/a.tgz"
    finally:
        http.close()


def test_source_names() -> None:
    assert repo_source_name("https://charts.example.com/stable", "redis") == "charts.example.com/stable/redis"
    assert repo_source_name("https://charts.example.com/", "redis") == "charts.example.com/redis"
    assert repo_source_name("http://127.0.0.1:8879/a/b", "x") == "127.0.0.1:8879/a/b/x"
    r = oci_source("oci://ghcr.io/org/charts/app", "1.2.3+build.1")
    assert (r.registry, r.repository, r.tag) == ("ghcr.io", "org/charts/app", "1.2.3_build.1")
    with pytest.raises(ValueError):
        oci_source("https://ghcr.io/org/app", "1.0.0")
    with pytest.raises(ValueError):
        repo_source_name("oci://ghcr.io/x", "y")


# -- image discovery -------------------------------------------------------------------------------------
def umbrella_tgz() -> bytes:
    """An umbrella chart: annotation images, values blocks, a subchart directory and a nested subchart .tgz
    that itself has a subchart directory."""
    files: dict[str, str | bytes] = {}
    files.update(chart_files(
        "umbrella", "0.1.0", app_version="9.9",
        annotations={"artifacthub.io/images": yaml.safe_dump([{"name": "etcd",
                                                                "image": "quay.io/coreos/etcd:v3.5.9"}])},
        dependencies=[{"name": "sub-a", "version": "0.1.0"}, {"name": "sub-b", "version": "0.2.0"}],
        values={"image": {"registry": "docker.io", "repository": "library/nginx", "tag": "1.25", "digest": ""},
                "sub-a": {"replicas": 1}, "templated": {"image": "{{ .Values.x }}:1"},
                "notes": "docker.io/library/redis:7"}))
    files.update(chart_files("sub-a", "0.1.0", prefix="umbrella/charts/",
                             values={"image": {"repository": "registry.k8s.io/pause", "tag": 3.9}}))
    inner: dict[str, str | bytes] = {}
    inner.update(chart_files("sub-b", "0.2.0", app_version="v1",
                             values={"sidecarImage": "ghcr.io/example/tool:v1",
                                     "list": [{"image": {"repository": "ghcr.io/example/listed", "tag": "2"}}]}))
    inner.update(chart_files("deep", "0.0.1", prefix="sub-b/charts/",
                             values={"image": {"repository": "ghcr.io/example/deep"}}, app_version="0.0.1"))
    files["umbrella/charts/sub-b-0.2.0.tgz"] = package(inner)
    return package(files)


def test_discover_images_walks_annotations_values_and_subcharts() -> None:
    got = [str(r) for r in discover_images(umbrella_tgz())]
    assert got == [
        "quay.io/coreos/etcd:v3.5.9",
        "docker.io/library/nginx:1.25",
        "registry.k8s.io/pause:3.9",
        "ghcr.io/example/tool:v1",
        "ghcr.io/example/listed:2",
        "ghcr.io/example/deep:0.0.1",          # empty tag: the chart's appVersion, as charts template it
    ]


def test_values_images_shapes() -> None:
    values = {
        "image": "nginx:1.25",
        "a": {"image": {"repository": "bitnami/redis", "tag": "7.0", "digest": "sha256:" + "a" * 64}},
        "b": {"initImage": {"registry": "quay.io", "repository": "x/y", "tag": "1"}},
        "c": {"repository": "not/an-image"},            # no tag, digest or registry: not an image block
        "d": {"image": {"repository": "ghcr.io/x/app"}},
        "e": {"image": "not a ref"},
    }
    got = [str(r) for r in values_images(values, app_version="3.0")]
    assert got == ["docker.io/library/nginx:1.25",
                   "docker.io/bitnami/redis:7.0@sha256:" + "a" * 64,
                   "quay.io/x/y:1",
                   "ghcr.io/x/app:3.0"]


# -- Helm OCI artifacts ----------------------------------------------------------------------------------
def test_helm_config_is_metadata_json_in_helm_field_order() -> None:
    cfg = helm_config({"apiVersion": "v2", "version": "1.0.0", "name": "web", "appVersion": 1.25,
                       "annotations": {"b": "2", "a": "1"}, "deprecated": False, "home": "",
                       "maintainers": [{"url": "u", "name": "n"}]})
    assert cfg == (b'{"name":"web","version":"1.0.0","maintainers":[{"name":"n","url":"u"}],"apiVersion":"v2",'
                   b'"appVersion":"1.25","annotations":{"a":"1","b":"2"}}')


def test_build_artifact_keeps_the_tgz_bytes_and_adds_provenance() -> None:
    tgz = package(chart_files("web", "1.0.0"))
    art = build_artifact(tgz, {"name": "web", "version": "1.0.0", "apiVersion": "v2"}, b"PROV", "2024-01-01T00:00:00Z")
    doc = json.loads(art.manifest.data)
    assert doc["config"]["mediaType"] == HELM_CONFIG
    assert [ly["mediaType"] for ly in doc["layers"]] == [HELM_CONTENT, HELM_PROV]
    assert art.blobs[doc["layers"][0]["digest"]] == tgz
    assert art.blobs[doc["layers"][1]["digest"]] == b"PROV"
    assert doc["annotations"]["org.opencontainers.image.created"] == "2024-01-01T00:00:00Z"
    again = build_artifact(tgz, {"name": "web", "version": "1.0.0", "apiVersion": "v2"}, b"PROV",
                           "2024-01-01T00:00:00Z")
    assert again.manifest.digest == art.manifest.digest        # deterministic: a re-export reuses the import
    store = ChartStore()
    store.add("charts.example.com/stable/web", "1.0.0", art)
    m = store.get_manifest(parse("charts.example.com/stable/web:1.0.0"))
    assert m.digest == art.manifest.digest
    layer = doc["layers"][0]
    with store.open_blob("x", Descriptor(HELM_CONTENT, layer["digest"], layer["size"])) as chunks:
        assert b"".join(chunks) == tgz
    with pytest.raises(NotFoundError):
        store.get_manifest(parse("charts.example.com/stable/web:2.0.0"))


# -- classic repo resolution over a mock transport ---------------------------------------------------------
def _repo(tgz_by_version: dict[str, bytes], *, digest_override: str | None = None,
          prov: bool = False) -> tuple[Http, dict[str, int]]:
    entries = {"web": [{"name": "web", "version": v, "digest": digest_override or sha256_hex(t),
                        "urls": [f"web-{v}.tgz" if i % 2 == 0 else f"https://cdn.example.org/web/web-{v}.tgz"]}
                       for i, (v, t) in enumerate(tgz_by_version.items())]}
    hits: dict[str, int] = {}

    def handler(req: httpx.Request) -> httpx.Response:
        hits[str(req.url)] = hits.get(str(req.url), 0) + 1
        path = req.url.path
        if req.url.host == "127.0.0.1" and path == "/stable/index.yaml":
            return httpx.Response(200, content=index_yaml(entries).encode())
        for v, t in tgz_by_version.items():
            if path.endswith(f"/web-{v}.tgz"):
                return httpx.Response(200, content=t)
            if prov and path.endswith(f"/web-{v}.tgz.prov"):
                return httpx.Response(200, content=b"signed")
        return httpx.Response(404)

    http = Http({"charts.example.com": HostSettings(endpoint="http://127.0.0.1:1")},
                transport=httpx.MockTransport(handler), use_docker_config=False, sleep=lambda s: None)
    return http, hits


def test_fetch_classic_resolves_a_range_and_checks_the_digest() -> None:
    tgzs = {v: package(chart_files("web", v)) for v in ("1.0.0", "1.2.0", "1.3.5", "2.0.0")}
    http, hits = _repo(tgzs, prov=True)
    cache = IndexCache(http)
    fc = fetch_classic(http, cache, "https://charts.example.com/stable", "web", ">=1.2 <2")
    assert (fc.version, fc.tgz, fc.prov) == ("1.3.5", tgzs["1.3.5"], b"signed")
    assert str(fc.source) == "charts.example.com/stable/web:1.3.5"
    assert fc.url == "https://charts.example.com/stable/web-1.3.5.tgz"   # relative url, against the repo
    fc2 = fetch_classic(http, cache, "https://charts.example.com/stable", "web", "1.2.0")
    assert fc2.url == "https://cdn.example.org/web/web-1.2.0.tgz"         # absolute url kept as it is
    assert fc2.prov == b"signed"
    assert hits["http://127.0.0.1:1/stable/index.yaml"] == 1              # the index is fetched once
    assert "http://127.0.0.1:1/stable/web-1.3.5.tgz" in hits              # the endpoint serves the repo host
    assert "https://cdn.example.org/web/web-1.2.0.tgz" in hits            # other hosts are fetched as named
    http.close()


def test_fetch_classic_refuses_a_digest_mismatch() -> None:
    http, _ = _repo({"1.0.0": package(chart_files("web", "1.0.0"))}, digest_override="0" * 64)
    with pytest.raises(DigestMismatchError, match=r"index\.yaml says"):
        fetch_classic(http, IndexCache(http), "https://charts.example.com/stable", "web", "1.0.0")
    http.close()


def test_resolve_entry_errors() -> None:
    index = {"entries": {"redis": [{"name": "redis", "version": "17.11.3"}]}}
    with pytest.raises(NotFoundError, match="did you mean 'redis'"):
        resolve_entry(index, "rediss", "1", "c.yaml:4")
    with pytest.raises(NotFoundError, match=r"available: 17\.11\.3"):
        resolve_entry(index, "redis", "~18", "c.yaml:4")
    with pytest.raises(ContentFileError, match=r"c\.yaml:4"):
        resolve_entry(index, "redis", ">>1", "c.yaml:4")


# -- content validation with file:line ---------------------------------------------------------------------
@pytest.mark.parametrize(("entry", "message"), [
    ("- {repo: https://c.example.com, name: web}", "needs version"),
    ("- {repo: https://c.example.com, name: web, version: 1.0.0, images: maybe}", "images must be"),
    ("- {repo: https://c.example.com, version: 1.0.0}", "needs name"),
    ("- {repo: c.example.com, name: web, version: 1.0.0}", "http\\(s\\) URL"),
    ("- {oci: ghcr.io/org/app, version: 1.0.0}", "must start with oci://"),
    ("- {oci: oci://ghcr.io/org/app, version: '~1.0'}", "exact version"),
    ("- {oci: oci://ghcr.io/org/app, name: other, version: 1.0.0}", "differs"),
])
def test_chart_entries_are_validated_with_file_and_line(tmp_path: Path, entry: str, message: str) -> None:
    p = tmp_path / "content.yaml"
    p.write_text(f"apiVersion: airgap-mirror/v1\nkind: Content\ncharts:\n  {entry}\n")
    content = load(p)
    http = Http({}, use_docker_config=False)
    ctx = ExportContext(content, http, argparse.Namespace(platform=[], no_chart_images=False))
    with pytest.raises(ContentFileError, match=message) as ei:
        charts.chart_items(ctx)
    assert ei.value.where == f"{p}:4"
    http.close()


def test_example_content_file_loads() -> None:
    content = load(Path(__file__).resolve().parents[1] / "manifests" / "charts.yaml")
    assert content.charts
    for e in content.charts:
        charts.validate_entry(e, f"charts.yaml:{e['line']}")


# -- mirrors --format helm ---------------------------------------------------------------------------------
def test_render_helm() -> None:
    r = Receipt(Target("reg.corp:5000", "airgap", plain_http=True), hosts={"charts.example.com": "charts.example.com"})
    r.artifacts = [
        ImportedArtifact("chart", "charts.example.com/stable/web:1.3.5",
                         "reg.corp:5000/airgap/charts.example.com/stable/web:1.3.5", "sha256:" + "1" * 64, "",
                         "oci://reg.corp:5000/airgap/charts.example.com/stable/web"),
        ImportedArtifact("chart", "ghcr.io/org/app:1.2.3_b", "reg.corp:5000/airgap/ghcr.io/org/app:1.2.3_b",
                         "sha256:" + "2" * 64, "", None),
        ImportedArtifact("image", "docker.io/library/nginx:1.25",
                         "reg.corp:5000/airgap/docker.io/library/nginx:1.25", "sha256:" + "3" * 64),
    ]
    files = render_helm(r)
    settings = yaml.safe_load(files["helm-registry.yaml"])
    assert settings["endpoint"] == "http://reg.corp:5000" and settings["baseContentPath"] == "airgap"
    assert settings["providerType"] == "helm" and settings["insecureSkipVerify"] is False
    assert [c["repository"] for c in settings["charts"]] == ["charts.example.com/stable/web", "ghcr.io/org/app"]
    index = yaml.safe_load(files["index.yaml"])
    assert sorted(index["entries"]) == ["app", "web"]
    assert index["entries"]["app"][0]["version"] == "1.2.3+b"
    assert index["entries"]["app"][0]["urls"] == ["oci://reg.corp:5000/airgap/ghcr.io/org/app:1.2.3_b"]
    assert index["entries"]["web"][0]["urls"] == ["oci://reg.corp:5000/airgap/charts.example.com/stable/web:1.3.5"]
    from mirror.mirrorconfig import render

    assert render(r, "helm") == render_helm(r, insecure=True)
    assert "helm/index.yaml" in render(r, "all")
