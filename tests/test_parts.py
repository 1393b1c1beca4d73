"""Damaged parts after a USB transfer: a flipped byte, a truncated part, a missing part.

`verify` must exit non-zero naming the part and the artifacts it affects; `import` must refuse before
anything is tagged (checked over HTTP). A missing or truncated part is refused before any request (no
repository at all in the target); a corrupted one is found by the part checksums, which run beside the
blob pushes: intact blobs may already have landed (verified by the target, untagged), the damaged one
never does, and no manifest or tag is pushed. And an intact import reads the
parts where they are: it writes no files besides the receipt (peak extra disk <= 1% of the bundle).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mirror import bundle as bundle_mod
from mirror import sample
from mirror.bundle import BundleInfo
from tests.support.registries import Registry, RegistryFactory
from tests.test_delta import BASE, layout_digests, ok, run, target_tag_digest, target_tags, write_content

REPO = Path(__file__).resolve().parents[1]
BIG = 3_000_000


@dataclass
class Env:
    bundle: Path
    refs: list[str]
    digests: dict[str, str]


@pytest.fixture(scope="module")
def env(registry_factory: RegistryFactory, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    work = tmp_path_factory.mktemp("parts")
    source = registry_factory("distribution")
    try:
        refs = sample.build(work / "layout", "test", big_layer_bytes=BIG)
        sample.seed(work / "layout", source.url, quiet=True)
        content = write_content(work / "c.yaml", source.url, refs)
        ok("export", "-f", str(content), "-o", str(work / "bundle"), "--split-size", "1M", "--name", "c")
        yield Env(work / "bundle", refs, layout_digests(work / "layout"))
    finally:
        source.stop()


def damaged(env: Env, tmp_path: Path, how: Callable[[Path, BundleInfo], str]) -> tuple[Path, str, list[str]]:
    """A copy of the bundle with one part damaged by `how`; returns (dir, part name, affected refs)."""
    d = tmp_path / "bundle"
    shutil.copytree(env.bundle, d)
    info = BundleInfo.load(d)
    assert len(info.parts) >= 3, "the test needs a split bundle"
    name = how(d, info)
    start, end = next((s, e) for p, s, e in info.part_bounds() if p.name == name)
    affected = info.artifacts_using(info.blobs_in_range(start, end))
    assert affected
    return d, name, affected


def part_range(d: Path, name: str) -> tuple[int, int]:
    return next((s, e) for p, s, e in BundleInfo.load(d).part_bounds() if p.name == name)


def middle_part(info: BundleInfo) -> str:
    return info.parts[len(info.parts) // 2].name


def flip(d: Path, info: BundleInfo) -> str:
    name = middle_part(info)
    p = d / name
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0x01
    p.write_bytes(bytes(data))
    return name


def truncate(d: Path, info: BundleInfo) -> str:
    name = middle_part(info)
    p = d / name
    p.write_bytes(p.read_bytes()[:-1000])
    return name


def remove(d: Path, info: BundleInfo) -> str:
    name = middle_part(info)
    (d / name).unlink()
    return name


@pytest.mark.parametrize("how", [flip, truncate, remove], ids=["corrupted", "truncated", "missing"])
def test_damaged_part(env: Env, tmp_path: Path, target_registry: Registry,
                      how: Callable[[Path, BundleInfo], str]) -> None:
    d, name, affected = damaged(env, tmp_path, how)
    rc, _, err = run("verify", str(d))
    assert rc != 0
    assert f"bad part: {name}" in err
    for ref in affected:
        assert f"affected: {ref}" in err
    for ref in set(env.refs) - set(affected):
        assert f"affected: {ref}" not in err

    rc, _, err = run("import", str(d), "--to", f"{target_registry.host}/{BASE}", "--plain-http")
    assert rc != 0
    assert name in err
    tags = target_tags(target_registry)
    if how is flip:
        assert all(t == [] for t in tags.values()), f"import tagged something from a damaged bundle: {tags}"
        damaged_blobs = set(BundleInfo.load(d).blobs_in_range(*part_range(d, name)))
        with target_registry.client(timeout=30) as c:
            for repo in tags:
                for digest in damaged_blobs:
                    r = c.get(f"/v2/{repo}/blobs/{digest}")
                    assert r.status_code == 404 or hashlib.sha256(r.content).hexdigest() == digest[7:], \
                        f"a damaged blob landed in {repo}"
    else:
        assert tags == {}, "import pushed something although a part is missing or truncated"
    for ref in env.refs:
        assert target_tag_digest(target_registry, ref) is None


def test_intact_bundle_verifies_and_imports_in_place(env: Env, tmp_path: Path, target_registry: Registry) -> None:
    """Import writes nothing but the receipt: no temp files, no staging copy of parts."""
    ok("verify", str(env.bundle))
    size = sum(p.stat().st_size for p in env.bundle.iterdir())
    tmp, cwd = tmp_path / "tmp", tmp_path / "cwd"
    tmp.mkdir()
    cwd.mkdir()
    before = {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in env.bundle.iterdir()}

    def usage() -> int:
        return sum(p.stat().st_size for root in (tmp, cwd, env.bundle) for p in root.rglob("*") if p.is_file())

    peak = [0]
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            try:
                peak[0] = max(peak[0], usage() - size)
            except FileNotFoundError:
                pass
            time.sleep(0.01)

    t = threading.Thread(target=watch)
    t.start()
    try:
        p = subprocess.run([sys.executable, "-m", "mirror.cli", "import", str(env.bundle), "--to",
                            f"{target_registry.host}/{BASE}", "--plain-http", "--receipt", str(cwd / "r.json")],
                           cwd=cwd, env={"PATH": "/usr/bin:/bin", "TMPDIR": str(tmp), "HOME": str(tmp),
                                         "PYTHONPATH": str(REPO)},
                           capture_output=True, text=True, timeout=120)
    finally:
        done.set()
        t.join()
    assert p.returncode == 0, p.stderr
    for ref in env.refs:
        assert target_tag_digest(target_registry, ref) == env.digests[ref]
    assert sorted(x.name for x in cwd.iterdir()) == ["r.json"]
    assert list(tmp.rglob("*")) == []
    assert {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in env.bundle.iterdir()} == before
    receipt_size = (cwd / "r.json").stat().st_size
    assert peak[0] - receipt_size <= 0.01 * size


# -- import checks what it reads, not every part (unless --verify) -------------------------------------

def count_part_hashes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    real = bundle_mod._hash_file

    def counting(path: Path) -> str:
        calls.append(path.name)
        return real(path)

    monkeypatch.setattr(bundle_mod, "_hash_file", counting)
    return calls


def test_import_hashes_no_part_but_checks_every_blob(env: Env, tmp_path: Path, target_registry: Registry,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    hashed = count_part_hashes(monkeypatch)
    ok("import", str(env.bundle), "--to", f"{target_registry.host}/{BASE}", "--plain-http")
    assert hashed == [], "import hashed whole parts without --verify"
    for ref in env.refs:
        assert target_tag_digest(target_registry, ref) == env.digests[ref]


def test_import_verify_flag_hashes_every_part(env: Env, target_registry: Registry,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    hashed = count_part_hashes(monkeypatch)
    ok("import", str(env.bundle), "--to", f"{target_registry.host}/{BASE}", "--plain-http", "--verify")
    assert sorted(hashed) == sorted(p.name for p in BundleInfo.load(env.bundle).parts)


def _frame_kind(info: BundleInfo, digest: str) -> str:
    e = info.blobs[digest]
    total = bundle_mod.TAR_BLOCK + e.size + bundle_mod.padding(e.size)
    return "raw" if e.length == bundle_mod.raw_frame_length(total) else "compressed"


@pytest.mark.parametrize("where", ["raw-blob", "raw-head", "compressed-blob", "compressed-head", "manifest-blob"])
def test_import_refuses_a_damaged_frame_and_tags_nothing(env: Env, tmp_path: Path, target_registry: Registry,
                                                         where: str) -> None:
    """One flipped byte in the frame of a blob that the import pushes, in the blob's bytes (the target's
    digest check finds it, or zstd) or at the head of its frame (a raw frame's tar header, which the reader
    compares, or a compressed frame's own header, which zstd refuses): the import
    names the part holding it and tags nothing, although no part was hashed. A damaged manifest (read while
    resolving) stops it before any transfer."""
    d = tmp_path / "bundle"
    shutil.copytree(env.bundle, d)
    info = BundleInfo.load(d)
    kind, spot = where.split("-", 1)
    digest = env.digests[env.refs[0]] if kind == "manifest" else max(
        (g for g in info.blobs if _frame_kind(info, g) == kind and info.blobs[g].size > 600),
        key=lambda g: info.blobs[g].size)
    e = info.blobs[digest]
    # a raw frame's tar header is member bytes [0, 512), after the 14-byte frame head and a 3-byte block
    # header; byte 8 of a compressed frame is in its frame header
    pos = e.offset + (e.length // 2 if spot == "blob" else bundle_mod.RAW_HEAD + 3 + 100 if kind == "raw" else 8)
    part, start, _ = next((p, s, end) for p, s, end in info.part_bounds() if s <= pos < end)
    raw = bytearray((d / part.name).read_bytes())
    raw[pos - start] ^= 0x01
    (d / part.name).write_bytes(bytes(raw))
    rc, _, err = run("import", str(d), "--to", f"{target_registry.host}/{BASE}", "--plain-http")
    assert rc != 0
    assert f"bad part: {part.name}: blob {digest}" in err, err
    assert "nothing was imported" in err
    assert all(t == [] for t in target_tags(target_registry).values()), "a damaged bundle tagged something"
    for ref in env.refs:
        assert target_tag_digest(target_registry, ref) is None
    if kind == "manifest":
        assert target_tags(target_registry) == {}, "blobs were pushed although a manifest was damaged"
