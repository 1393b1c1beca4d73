"""Delta refresh end to end on loopback: v1 -> bundle -> target, then the source gains and changes tags.

The delta must carry only the new blobs (sizes checked against the source layouts, independently of the
bundle code), import on top of a target holding v1 or after its base into an empty target, be refused
without its base (naming the missing bundle, tagging nothing), and round-trip through an inventory.
Helpers here are shared with test_resume.py and test_parts.py.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mirror import sample
from mirror.bundle import BundleInfo
from mirror.cli import main
from mirror.delta import load_baseline
from mirror.mediatypes import ACCEPT, children, parse_manifest
from tests.support.registries import Registry, RegistryFactory

BASE = "airgap-images"
SOURCE_HOSTS = ("docker.io", "quay.io", "registry.k8s.io", "ghcr.io")
METADATA_ALLOWANCE = 32 * 1024      # manifests, tar headers, index.json: "small metadata"


# -- shared helpers ---------------------------------------------------------------------------------------

def run(*argv: str) -> tuple[int, str, str]:
    """The CLI in-process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(list(argv))
    return rc, out.getvalue(), err.getvalue()


def ok(*argv: str) -> str:
    rc, out, err = run(*argv)
    assert rc == 0, f"airgap-mirror {' '.join(argv)} exited {rc}:\n{out}\n{err}"
    return out


def write_content(path: Path, source_url: str, refs: Iterable[str]) -> Path:
    lines = ["apiVersion: airgap-mirror/v1", "kind: Content", "registries:"]
    lines += [f"  {h}: {{endpoint: \"{source_url}\"}}" for h in SOURCE_HOSTS]
    lines += ["images:"] + [f"  - {r}" for r in refs]
    path.write_text("\n".join(lines) + "\n")
    return path


def layout_blobs(layout: Path, refs: Iterable[str]) -> dict[str, int]:
    """{digest: size} of every non-manifest blob reachable from `refs` in an OCI layout (read directly)."""
    index = json.loads((layout / "index.json").read_text())
    tops = {m["annotations"]["org.opencontainers.image.ref.name"]: m for m in index["manifests"]}
    out: dict[str, int] = {}

    def walk(digest: str, media_type: str) -> None:
        data = (layout / "blobs" / "sha256" / digest.split(":", 1)[1]).read_bytes()
        kids, blobs = children(*parse_manifest(data, media_type))
        for b in blobs:
            out[b.digest] = b.size
        for k in kids:
            walk(k.digest, k.media_type)

    for r in refs:
        walk(tops[r]["digest"], tops[r]["mediaType"])
    return out


def layout_digests(layout: Path) -> dict[str, str]:
    index = json.loads((layout / "index.json").read_text())
    return {m["annotations"]["org.opencontainers.image.ref.name"]: m["digest"] for m in index["manifests"]}


def target_ref(ref: str) -> tuple[str, str]:
    """docker.io/library/nginx:1.25 -> (airgap-images/docker.io/library/nginx, 1.25)."""
    name, _, tag = ref.rpartition(":")
    return f"{BASE}/{name}", tag


def target_tag_digest(reg: Registry, ref: str) -> str | None:
    repo, tag = target_ref(ref)
    with reg.client(timeout=30) as c:
        r = c.head(f"/v2/{repo}/manifests/{tag}", headers={"Accept": ACCEPT})
    return r.headers.get("docker-content-digest") if r.status_code == 200 else None


def target_tags(reg: Registry) -> dict[str, list[str]]:
    """Every repository of the target and its tags (over HTTP, not through the code under test)."""
    with reg.client(timeout=30) as c:
        repos = c.get("/v2/_catalog?n=1000").json().get("repositories") or []
        out = {}
        for repo in repos:
            r = c.get(f"/v2/{repo}/tags/list")
            out[repo] = sorted(r.json().get("tags") or []) if r.status_code == 200 else []
    return out


def fetched(summary: str, verb: str = "") -> int:
    m = re.search(rf"{verb}[^\n]*blobs fetched (\d+)", summary)
    assert m, summary
    return int(m.group(1))


def bundle_bytes(d: Path) -> int:
    return sum(p.size for p in BundleInfo.load(d).parts)


def to(reg: Registry) -> list[str]:
    return ["--to", f"{reg.host}/{BASE}", "--plain-http"]


@dataclass
class Delta:
    source: Registry
    v1_layout: Path
    v2_layout: Path
    v1_refs: list[str]
    v2_refs: list[str]             # v1 refs (one of them re-tagged) + new ones
    new_refs: list[str]
    changed_ref: str
    v1_content: Path
    v2_content: Path
    base: Path                     # bundle A (full, v1)
    delta: Path                    # bundle B (--since A)
    new_blobs: dict[str, int]      # blobs of v2 not in v1: what B must carry


def build_v2(path: Path) -> tuple[list[str], str]:
    """New content on top of the test profile: a new tag, a new repository (sharing the base layer), and a
    changed tag (ghcr.io/example/tool:v1 rebuilt)."""
    b = sample.Builder(path)
    base = [sample.base_layer()]
    b.app("docker.io/library/nginx:1.26", "nginx", "1.26", ["amd64", "arm64"], docker=False, shared=base,
          extra=40_000)
    b.app("docker.io/example/new:v1", "new", "v1", ["amd64"], docker=False, shared=base,
          more=[sample.random_layer("delta-new", 1_200_000)])
    b.app("ghcr.io/example/tool:v1", "tool", "v1-rebuilt", ["amd64"], docker=True, shared=base, extra=20_000)
    return [r for r in b.refs if r != "ghcr.io/example/tool:v1"], "ghcr.io/example/tool:v1"


@pytest.fixture(scope="module")
def delta_env(registry_factory: RegistryFactory, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Delta]:
    work = tmp_path_factory.mktemp("delta")
    source = registry_factory("distribution")
    try:
        v1_layout, v2_layout = work / "v1", work / "v2"
        v1_refs = sample.build(v1_layout, "test")
        sample.seed(v1_layout, source.url, quiet=True)
        v1_content = write_content(work / "v1.yaml", source.url, v1_refs)
        ok("export", "-f", str(v1_content), "-o", str(work / "A"))
        # the source moves on: new tags and repositories, and a tag that now points elsewhere
        new_refs, changed = build_v2(v2_layout)
        sample.seed(v2_layout, source.url, quiet=True)
        v2_refs = v1_refs + new_refs
        v2_content = write_content(work / "v2.yaml", source.url, v2_refs)
        ok("export", "-f", str(v2_content), "-o", str(work / "B"), "--since", str(work / "A"))
        old = layout_blobs(v1_layout, v1_refs)
        now = layout_blobs(v1_layout, [r for r in v1_refs if r != changed])
        now.update(layout_blobs(v2_layout, [*new_refs, changed]))
        new_blobs = {d: s for d, s in now.items() if d not in old}
        yield Delta(source, v1_layout, v2_layout, v1_refs, v2_refs, new_refs, changed, v1_content, v2_content,
                    work / "A", work / "B", new_blobs)
    finally:
        source.stop()


def expected_digest(env: Delta, ref: str) -> str:
    if ref in env.new_refs or ref == env.changed_ref:
        return layout_digests(env.v2_layout)[ref]
    return layout_digests(env.v1_layout)[ref]


def assert_v2_in(env: Delta, reg: Registry) -> None:
    for ref in env.v2_refs:
        assert target_tag_digest(reg, ref) == expected_digest(env, ref), ref


# -- the tests --------------------------------------------------------------------------------------------

def test_delta_holds_only_new_blobs(delta_env: Delta) -> None:
    a = BundleInfo.load(delta_env.base)
    b = BundleInfo.load(delta_env.delta)
    assert delta_env.new_blobs, "the v2 content must bring new blobs"
    carried = {d: e.size for d, e in b.blobs.items()
               if e.media_type not in ("application/vnd.oci.image.index.v1+json",
                                       "application/vnd.oci.image.manifest.v1+json",
                                       "application/vnd.docker.distribution.manifest.list.v2+json",
                                       "application/vnd.docker.distribution.manifest.v2+json")}
    assert carried == delta_env.new_blobs
    new_bytes = sum(delta_env.new_blobs.values())
    manifest_bytes = sum(e.size for d, e in b.blobs.items() if d not in carried)
    assert b.unique_bytes() == new_bytes + manifest_bytes
    assert bundle_bytes(delta_env.delta) <= 1.01 * new_bytes + manifest_bytes + METADATA_ALLOWANCE
    # every artifact is listed (manifests carried), and what it shares with v1 is recorded as external
    assert sorted(x["ref"] for x in b.artifacts) == sorted(delta_env.v2_refs)
    for art in b.artifacts:
        assert art["digest"] in b.blobs
    assert set(b.external_blobs) <= set(a.blobs)
    assert set(b.external_blobs) & set(a.blobs), "the shared base layer is external"
    assert [d["id"] for d in b.depends_on] == [a.id]


def test_base_then_delta_into_empty_target(delta_env: Delta, target_registry: Registry, tmp_path: Path) -> None:
    out = ok("import", str(delta_env.base), str(delta_env.delta), *to(target_registry),
             "--receipt", str(tmp_path / "r.json"))
    assert_v2_in(delta_env, target_registry)
    receipt = json.loads((tmp_path / "r.json").read_text())
    assert receipt["bundles"] == [BundleInfo.load(delta_env.base).id, BundleInfo.load(delta_env.delta).id]
    # the delta pushed exactly its new blobs (manifests are not counted as blobs)
    assert fetched(out, f"import {delta_env.delta}") == len(delta_env.new_blobs)


def test_delta_into_target_holding_v1(delta_env: Delta, target_registry: Registry) -> None:
    ok("import", str(delta_env.base), *to(target_registry))
    assert target_tag_digest(target_registry, delta_env.changed_ref) == \
        layout_digests(delta_env.v1_layout)[delta_env.changed_ref]
    out = ok("import", str(delta_env.delta), *to(target_registry))
    assert_v2_in(delta_env, target_registry)
    assert fetched(out) == len(delta_env.new_blobs)


def test_delta_without_base_refused(delta_env: Delta, target_registry: Registry) -> None:
    rc, _, err = run("import", str(delta_env.delta), *to(target_registry))
    assert rc != 0
    base_id = BundleInfo.load(delta_env.base).id
    assert base_id in err, err
    assert "cannot be completed" in err and "docker.io/example/new:v1" in err
    assert target_tags(target_registry) == {} or all(not t for t in target_tags(target_registry).values())
    for ref in delta_env.v2_refs:
        assert target_tag_digest(target_registry, ref) is None, ref


def test_delta_of_a_delta_names_the_chain(delta_env: Delta, tmp_path: Path) -> None:
    base = load_baseline(str(delta_env.delta))
    ids = [d["id"] for d in base.depends_on]
    assert ids == [BundleInfo.load(delta_env.delta).id, BundleInfo.load(delta_env.base).id]
    assert set(BundleInfo.load(delta_env.base).external_blobs) <= base.blobs
    assert set(delta_env.new_blobs) <= base.blobs
    # and via bundle.json itself
    assert load_baseline(str(delta_env.delta / "bundle.json")) == base


def test_inventory_round_trip(delta_env: Delta, target_registry: Registry, tmp_path: Path) -> None:
    ok("import", str(delta_env.base), *to(target_registry))
    inv = tmp_path / "inventory.json"
    ok("inventory", *to(target_registry), "-o", str(inv))
    doc = json.loads(inv.read_text())
    v1_blobs = layout_blobs(delta_env.v1_layout, delta_env.v1_refs)
    assert set(doc["blobs"]) == set(v1_blobs)
    repo, tag = target_ref("docker.io/library/nginx:1.25")
    assert doc["repositories"][repo]["tags"][tag] == layout_digests(delta_env.v1_layout)["docker.io/library/nginx:1.25"]

    c = tmp_path / "C"
    ok("export", "-f", str(delta_env.v2_content), "-o", str(c), "--since", str(inv))
    info = BundleInfo.load(c)
    assert info.depends_on[0]["kind"] == "inventory"
    assert {d for d in info.blobs if d in delta_env.new_blobs} == set(delta_env.new_blobs)
    assert not set(info.blobs) & set(v1_blobs)
    ok("import", str(c), *to(target_registry))
    assert_v2_in(delta_env, target_registry)

    # nothing new since a fresh inventory: a tiny bundle of manifests only
    inv2 = tmp_path / "inventory2.json"
    ok("inventory", *to(target_registry), "-o", str(inv2))
    e = tmp_path / "E"
    ok("export", "-f", str(delta_env.v2_content), "-o", str(e), "--since", str(inv2))
    empty = BundleInfo.load(e)
    assert bundle_bytes(e) + (e / "bundle.json").stat().st_size < 256 * 1024
    assert not set(empty.blobs) & set(json.loads(inv2.read_text())["blobs"])
    # the inventory read each tagged image's platform, so the export fetched no config yet records it
    assert json.loads(inv2.read_text())["platforms"]
    full = {a["ref"]: a["platforms"] for a in BundleInfo.load(delta_env.base).artifacts}   # configs read
    got = {a["ref"]: a["platforms"] for a in empty.artifacts}
    assert {r: got[r] for r in full if r in got} == full and any(full.values())
    out = ok("import", str(e), *to(target_registry))
    assert fetched(out) == 0


def test_receipt_as_baseline(delta_env: Delta, target_registry: Registry, tmp_path: Path) -> None:
    ok("import", str(delta_env.base), *to(target_registry), "--receipt", str(tmp_path / "r.json"))
    d = tmp_path / "D"
    ok("export", "-f", str(delta_env.v2_content), "-o", str(d), "--since", str(tmp_path / "r.json"))
    info = BundleInfo.load(d)
    assert info.depends_on[0]["kind"] == "receipt"
    assert info.depends_on[0]["bundles"] == [BundleInfo.load(delta_env.base).id]
    for art in info.artifacts:        # a receipt lists manifests as well: the delta still carries them all
        assert art["digest"] in info.blobs, art["ref"]
    assert {x for x in info.blobs if x in delta_env.new_blobs} == set(delta_env.new_blobs)
    ok("import", str(d), *to(target_registry))
    assert_v2_in(delta_env, target_registry)


def test_bad_baseline_is_a_usage_error(tmp_path: Path) -> None:
    p = tmp_path / "x.json"
    p.write_text(json.dumps({"hello": 1}))
    rc, _, err = run("export", "-f", str(write_content(tmp_path / "c.yaml", "http://127.0.0.1:9", ["a/b:1"])),
                     "-o", str(tmp_path / "o"), "--since", str(p))
    assert rc == 2 and "not a bundle, receipt or inventory" in err



def test_dry_run_plans_the_delta_exactly_and_writes_nothing(delta_env: Delta, tmp_path: Path) -> None:
    out = tmp_path / "never"
    plan = ok("export", "-f", str(delta_env.v2_content), "-o", str(out), "--since", str(delta_env.base),
              "--dry-run", "--split-size", "1M")
    assert not out.exists()
    for ref in delta_env.v2_refs:
        assert ref in plan
    m = re.search(r"to carry: (\d+) blobs and every manifest, ([\d.]+) MB: a bundle of at most ([\d.]+) MB, "
                  r"(\d+) part\(s\)", plan)
    assert m, plan
    real = BundleInfo.load(delta_env.delta)
    manifest_bytes = real.unique_bytes() - sum(delta_env.new_blobs.values())
    assert int(m.group(1)) == len(delta_env.new_blobs)
    assert float(m.group(2)) == round((sum(delta_env.new_blobs.values()) + manifest_bytes) / 1e6, 1)
    assert float(m.group(3)) >= round(bundle_bytes(delta_env.delta) / 1e6, 1)          # a bound, and close
    assert float(m.group(3)) <= bundle_bytes(delta_env.delta) / 1e6 + 0.1
    assert int(m.group(4)) == -(-bundle_bytes(delta_env.delta) // (1 << 20))
    assert "nothing was written (--dry-run)" in plan


def test_dry_run_fails_like_the_export_on_an_unknown_tag(delta_env: Delta, tmp_path: Path) -> None:
    content = write_content(tmp_path / "bad.yaml", delta_env.source.url, ["docker.io/library/nginx:0.0-none"])
    rc, _, err = run("export", "-f", str(content), "-o", str(tmp_path / "never"), "--dry-run")
    assert rc != 0 and not (tmp_path / "never").exists()
    assert "nginx:0.0-none" in err and "nothing was written" in err
