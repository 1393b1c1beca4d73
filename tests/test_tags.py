"""Images by tag selection (`tags: {semver, regex, latest}`): which tags are chosen (unit), what the content file
refuses (file:line), and end to end: a repository with release, prerelease, non-version and referrers-fallback
tags in a real registry; the export carries exactly the chosen tags and the import lands exactly those."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from mirror.bundle import BundleInfo
from mirror.content import TagFilter, load
from mirror.errors import ContentFileError
from mirror.mediatypes import ACCEPT
from mirror.versions import VersionRange
from tests.support import flow
from tests.support.registries import Registry, RegistryFactory

HEAD = "apiVersion: airgap-mirror/v1\nkind: Content\n"
TAGS = ["3.9", "v1.29.9", "v1.30.0", "v1.30.1", "v1.30.2-rc.1", "v1.31.0", "latest",
        "sha256-" + "a" * 64, "v1.30.1-debug"]


def test_select_orders_newest_first_and_keeps_prereleases_out_unless_asked() -> None:
    assert TagFilter(semver=VersionRange("~1.30")).select(TAGS) == ["v1.30.1", "v1.30.0"]
    assert TagFilter(semver=VersionRange(">=1.30.0-0 <1.31")).select(TAGS) == \
        ["v1.30.2-rc.1", "v1.30.1", "v1.30.1-debug", "v1.30.0"]
    assert TagFilter(semver=VersionRange(">=1.29 <2"), latest=2).select(TAGS) == ["v1.31.0", "v1.30.1"]


def test_select_by_regex_alone_or_with_semver() -> None:
    assert TagFilter(regex=re.compile(r"v1\.30\..*")).select(TAGS) == \
        ["v1.30.2-rc.1", "v1.30.1", "v1.30.1-debug", "v1.30.0"]
    assert TagFilter(regex=re.compile(r"v1\.30\.1.*"), semver=VersionRange("1.30.x")).select(TAGS) == ["v1.30.1"]
    assert TagFilter(regex=re.compile(r"3\.9|latest"), latest=1).select(TAGS) == ["3.9"]     # versions first
    assert TagFilter(regex=re.compile("1.30")).select(TAGS) == []                           # whole tag only


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "content.yaml"
    p.write_text(HEAD + text)
    return p


def test_content_file_tags(tmp_path: Path) -> None:
    c = load(write(tmp_path, "images:\n  - ref: registry.k8s.io/kube-apiserver\n"
                              "    tags: {semver: \"~1.30\", regex: 'v.*', latest: 2}\n"))
    f = c.images[0].tags
    assert f is not None and f.latest == 2 and f.regex is not None and f.semver is not None
    assert f.describe() == "semver '~1.30', regex 'v.*', latest 2"


@pytest.mark.parametrize(("entry", "line", "what"), [
    ("{ref: 'k8s.io/x:v1', tags: {semver: '~1'}}", 4, "names a tag or digest, and tags: chooses the tags"),
    ("{ref: k8s.io/x, tags: {latest: 2}}", 4, "tags: needs semver: or regex:"),
    ("{ref: k8s.io/x, tags: {semver: '>=banana'}}", 4, "invalid version constraint"),
    ("{ref: k8s.io/x, tags: {regex: 'v(1'}}", 4, "invalid regex"),
    ("{ref: k8s.io/x, tags: {semver: '1.x', latest: 0}}", 4, "latest must be a whole number"),
    ("{ref: k8s.io/x, tags: {semvar: '1.x'}}", 4, "unknown key 'semvar' in tags"),
])
def test_content_file_tags_refused(tmp_path: Path, entry: str, line: int, what: str) -> None:
    with pytest.raises(ContentFileError) as ei:
        load(write(tmp_path, f"images:\n  - {entry}\n"))
    assert ei.value.where.endswith(f":{line}") and what in ei.value.what, ei.value


# -- end to end -------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tagged(registry_factory: RegistryFactory, tmp_path_factory: pytest.TempPathFactory) -> Registry:
    """The sample content, with registry.k8s.io/pause also tagged as every TAGS entry."""
    source, _ = flow.seeded(registry_factory, tmp_path_factory.mktemp("tags"))
    with httpx.Client(base_url=source.url, timeout=30, trust_env=False) as c:
        r = c.get("/v2/pause/manifests/3.9", headers={"Accept": ACCEPT})
        r.raise_for_status()
        for t in TAGS[1:]:
            c.put(f"/v2/pause/manifests/{t}", content=r.content,
                  headers={"Content-Type": r.headers["content-type"]}).raise_for_status()
    yield source
    source.stop()


def test_export_and_import_carry_exactly_the_chosen_tags(tagged: Registry, target_registry: Registry,
                                                          tmp_path: Path) -> None:
    content = flow.write_content(tmp_path / "c.yaml", tagged,
                                 [{"ref": "registry.k8s.io/pause", "tags": {"semver": ">=1.29 <2", "latest": 2}}])
    plan = flow.run_cli(["export", "-f", str(content), "--dry-run"])
    assert plan.code == 0, plan.err
    assert "registry.k8s.io/pause:v1.31.0" in plan.out and "registry.k8s.io/pause:v1.30.1" in plan.out
    flow.export(content, tmp_path / "B")
    refs = sorted(a["ref"] for a in BundleInfo.load(tmp_path / "B").artifacts)
    assert refs == ["registry.k8s.io/pause:v1.30.1", "registry.k8s.io/pause:v1.31.0"]
    res = flow.run_cli(flow.import_args(tmp_path / "B", target_registry))
    assert res.code == 0, res.err
    assert sorted(flow.tags(target_registry, "airgap-images/registry.k8s.io/pause")) == ["v1.30.1", "v1.31.0"]


def test_no_matching_tag_names_the_line_and_the_newest_tags(tagged: Registry, tmp_path: Path) -> None:
    content = flow.write_content(tmp_path / "c.yaml", tagged,
                                 ["nginx:1.25", {"ref": "registry.k8s.io/pause", "tags": {"semver": "~2.0"}}])
    res = flow.run_cli(["export", "-f", str(content), "-o", str(tmp_path / "never")])
    assert res.code != 0 and not (tmp_path / "never").exists()
    line = res.error_line
    assert "no tag of registry.k8s.io/pause matches semver '~2.0'" in line
    assert "c.yaml:" in line and "v1.31.0, v1.30.2-rc.1, v1.30.1" in line and "adjust tags:" in line
