"""Bundle index arithmetic: sizes, part splitting, ranges over parts, reading one blob without the rest."""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import random
import subprocess
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import zstandard

from mirror import bundle as bundle_mod
from mirror import defaults, parthash
from mirror.bundle import (
    BUNDLE_JSON,
    RAW_BLOCK,
    RAW_HEAD,
    SUMS,
    BlobEntry,
    BundleInfo,
    BundleReader,
    BundleWriter,
    Part,
    _RangeReader,
    _Stream,
    _TrailingHasher,
    parse_size,
    raw_frame_length,
    skippable_header,
    verify,
)
from mirror.digest import sha256_digest
from mirror.errors import BundleError, BundleVersionError, DigestMismatchError, NotFoundError, PartError
from mirror.mediatypes import OCI_MANIFEST, Descriptor
from mirror.parthash import HASH_CHUNK, hash_file_range
from mirror.reference import parse
from mirror.store import Manifest

SPLIT = 8192
LAYER = "application/vnd.oci.image.layer.v1.tar"


# -- parse_size ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, n", [
    ("1M", 1 << 20), ("700M", 700 << 20), ("1.5GiB", int(1.5 * (1 << 30))), ("8G", 8 << 30),
    ("2MB", 2 << 20), ("2mib", 2 << 20), ("1T", 1 << 40), (str(5 << 20), 5 << 20), ("2048K", 2 << 20),
    (" 3M ", 3 << 20), ("4000M", 4000 << 20),
    # FAT32 holds files of up to 4 GiB - 1 byte: 4G, however written, means exactly that
    ("4G", (4 << 30) - 1), ("4g", (4 << 30) - 1), ("4GiB", (4 << 30) - 1), ("4096M", (4 << 30) - 1),
])
def test_parse_size(text: str, n: int) -> None:
    assert parse_size(text) == n


@pytest.mark.parametrize("text, fragment", [
    ("abc", "invalid size"), ("12X", "invalid size"), ("", "invalid size"), ("512K", "below 1M"),
    ("1000", "below 1M"),
])
def test_parse_size_bad(text: str, fragment: str) -> None:
    with pytest.raises(BundleError, match=fragment) as ei:
        parse_size(text)
    assert ei.value.hint


# -- _Stream: the part files written at offsets -----------------------------------------------------------

def _finish(stream: _Stream, end: int) -> list[tuple[str, bytes]]:
    return [(p.name, p.read_bytes()) for p in stream.finish(end)]


def test_stream_splits_exactly_in_any_write_order(tmp_path: Path) -> None:
    stream = _Stream(tmp_path, "b", 10)
    data = bytes(range(25))
    stream.pwrite(22, [data[22:]])
    stream.pwrite(3, [data[3:12], memoryview(data)[12:22]])     # crosses two part boundaries in one call
    stream.pwrite(0, [data[:3]])
    parts = _finish(stream, 25)
    assert [n for n, _ in parts] == ["b.tar.zst.000", "b.tar.zst.001", "b.tar.zst.002"]
    assert [len(b) for _, b in parts] == [10, 10, 5]
    assert b"".join(b for _, b in parts) == data


def test_stream_exact_multiple_has_no_empty_part(tmp_path: Path) -> None:
    stream = _Stream(tmp_path, "b", 10)
    stream.pwrite(0, [b"x" * 20])
    assert [len(b) for _, b in _finish(stream, 20)] == [10, 10]


def test_stream_one_write_larger_than_many_parts(tmp_path: Path) -> None:
    stream = _Stream(tmp_path, "b", 7)
    stream.pwrite(0, [b"y" * 50])
    parts = _finish(stream, 50)
    assert [len(b) for _, b in parts] == [7] * 7 + [1]
    assert parts[-1][0] == "b.tar.zst.007"


def test_stream_unsplit_is_one_file(tmp_path: Path) -> None:
    stream = _Stream(tmp_path, "content", None)
    stream.pwrite(0, [b"z" * 100_000])
    assert [(n, len(b)) for n, b in _finish(stream, 100_000)] == [("content.tar.zst", 100_000)]


def test_stream_reserve_allocates_blocks_of_every_part_it_spans_and_leaves_the_sizes(tmp_path: Path) -> None:
    split = 1 << 20
    stream = _Stream(tmp_path, "b", split)
    stream.pwrite(0, [b"head"])
    if not stream.reserve(4096, 2 * split + 8192):
        pytest.skip("this file system has no fallocate")
    parts = [tmp_path / stream.part_name(i) for i in range(3)]
    assert [p.stat().st_size for p in parts] == [4, 0, 0]        # sizes untouched (FALLOC_FL_KEEP_SIZE)
    assert parts[0].stat().st_blocks * 512 >= split - 4096 and parts[1].stat().st_blocks * 512 >= split
    assert parts[2].stat().st_blocks * 512 >= 8192
    stream.pwrite(split - 2, [b"abcd"])                            # writes across a part's end as before
    stream.close()
    assert parts[0].read_bytes()[-2:] == b"ab" and parts[1].read_bytes() == b"cd"


@pytest.mark.parametrize("start,end", [(0, 0), (0, 1), (5, HASH_CHUNK + 7), (HASH_CHUNK - 1, 3 * HASH_CHUNK + 1),
                                       (0, 3 * HASH_CHUNK + 11)])
def test_hash_file_range_is_the_hash_of_exactly_that_range(tmp_path: Path, start: int, end: int) -> None:
    data = random.Random(7).randbytes(3 * HASH_CHUNK + 11)
    (tmp_path / "f").write_bytes(data)
    h = hashlib.sha256()
    with (tmp_path / "f").open("rb") as f:
        hash_file_range(f.fileno(), start, end, h)
    assert h.hexdigest() == hashlib.sha256(data[start:end]).hexdigest()


def test_hash_file_range_past_the_end_raises(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"x" * 100)
    with (tmp_path / "f").open("rb") as f, pytest.raises(OSError, match="ends at 100"):
        hash_file_range(f.fileno(), 0, 101, hashlib.sha256())


@pytest.fixture
def child_hasher(monkeypatch: pytest.MonkeyPatch) -> None:
    """The part hasher hands any amount to its child process (not only from HASHER_CHILD_MIN on)."""
    monkeypatch.setattr(defaults, "HASHER_CHILD_MIN", 0)


def _no_hashing_here(stream: _Stream) -> None:
    def refuse(h: Any, offset: int, n: int) -> int:
        raise AssertionError("hashed in the parent")
    stream.hash_into = refuse                             # type: ignore[method-assign]


@pytest.mark.parametrize("split,size", [(None, 3 << 20), (1 << 20, (3 << 20) + 5), (1 << 20, 2 << 20)])
def test_trailing_hasher_hashes_in_a_child_process(tmp_path: Path, child_hasher: None, split: int | None,
                                                   size: int) -> None:
    """advance() returns at once; the child hashes every part (one, or parts split mid-stream and exactly at
    the end) and finish() returns what sha256 of each part file gives."""
    stream = _Stream(tmp_path, "b", split)
    data = random.Random(7).randbytes(size)
    stream.pwrite(0, [data])
    hasher = _TrailingHasher(stream)
    _no_hashing_here(stream)
    hasher.advance(1 << 20)
    assert hasher._child is not None and hasher._child.poll() is None
    hasher.advance(size)
    step = split or size
    assert hasher.finish(size) == [hashlib.sha256(data[i:i + step]).hexdigest() for i in range(0, size, step)]
    assert hasher._child is None


def test_trailing_hasher_without_a_child_hashes_here(tmp_path: Path, child_hasher: None,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    def no_processes(*a: Any, **k: Any) -> Any:
        raise OSError(11, "Resource temporarily unavailable")
    monkeypatch.setattr(subprocess, "Popen", no_processes)
    stream = _Stream(tmp_path, "b", 1 << 20)
    data = random.Random(9).randbytes((2 << 20) + 7)
    stream.pwrite(0, [data])
    hasher = _TrailingHasher(stream)
    hasher.advance(len(data))
    assert hasher.finish(len(data)) == [hashlib.sha256(data[i:i + (1 << 20)]).hexdigest()
                                        for i in range(0, len(data), 1 << 20)]


def test_trailing_hasher_child_that_fails_is_made_up_for_here(tmp_path: Path, child_hasher: None,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """A child that cannot run (here: no file to run) costs the time of hashing here, not the export."""
    monkeypatch.setattr(parthash, "__file__", str(tmp_path / "gone.py"))
    stream = _Stream(tmp_path, "b", None)
    data = random.Random(3).randbytes(3 << 20)
    stream.pwrite(0, [data])
    hasher = _TrailingHasher(stream)
    hasher.advance(len(data))
    assert hasher._child is not None
    assert hasher.finish(len(data)) == [hashlib.sha256(data).hexdigest()]


def test_trailing_hasher_small_export_starts_no_child(tmp_path: Path) -> None:
    """Below HASHER_CHILD_MIN (an export with nothing new: manifests only) no process is started."""
    stream = _Stream(tmp_path, "b", None)
    stream.pwrite(0, [b"m" * 100_000])
    hasher = _TrailingHasher(stream)
    hasher.advance(100_000)
    assert hasher._child is None
    assert hasher.finish(100_000) == [hashlib.sha256(b"m" * 100_000).hexdigest()]


def test_trailing_hasher_stop_ends_the_child(tmp_path: Path, child_hasher: None) -> None:
    """A failed export closes its part files: the child is gone by then, and none is started again."""
    stream = _Stream(tmp_path, "b", None)
    stream.pwrite(0, [random.Random(8).randbytes(12 << 20)])
    hasher = _TrailingHasher(stream)
    hasher.advance(12 << 20)
    child = hasher._child
    assert child is not None
    hasher.stop()
    assert child.returncode is not None
    hasher.advance(12 << 20)
    assert hasher._child is None


def test_trailing_hasher_child_exits_when_its_parent_is_gone(tmp_path: Path, child_hasher: None) -> None:
    """A parent killed (SIGKILL) closes the child's input: the child exits on its own."""
    stream = _Stream(tmp_path, "b", None)
    stream.pwrite(0, [b"x" * 1000])
    hasher = _TrailingHasher(stream)
    hasher.advance(1000)
    child = hasher._child
    assert child is not None and child.stdin is not None
    child.stdin.close()
    assert child.wait(20) == 0


def test_trailing_hasher_error_is_raised_by_finish(tmp_path: Path, child_hasher: None) -> None:
    """A read that fails in the child is not lost: finish() raises it."""
    stream = _Stream(tmp_path, "b", None)
    stream.pwrite(0, [b"x" * 1000])
    hasher = _TrailingHasher(stream)
    hasher.advance(5000)                                  # beyond the stream's end
    with pytest.raises(BundleError, match="ends early at 1000"):
        hasher.finish(5000)


def test_skippable_gap_keeps_the_stream_decodable(tmp_path: Path) -> None:
    """A region a killed run reserved but never finished becomes a skippable frame that zstd ignores."""
    a = zstandard.ZstdCompressor().compress(b"first")
    b = zstandard.ZstdCompressor().compress(b"second")
    gap = 100
    raw = bytearray(a + b"\xff" * gap + b)
    raw[len(a):len(a) + 8] = skippable_header(gap)
    with zstandard.ZstdDecompressor().stream_reader(io.BytesIO(bytes(raw)), read_across_frames=True) as z:
        assert z.read() == b"firstsecond"


# -- index arithmetic on a synthetic BundleInfo -----------------------------------------------------------

def _info(blobs: dict[str, tuple[int, int]], parts: list[int], artifacts: list[dict[str, Any]] | None = None
          ) -> BundleInfo:
    return BundleInfo(id="x", created="", tool_version="", artifacts=artifacts or [],
                      blobs={d: BlobEntry(size=ln, offset=off, length=ln) for d, (off, ln) in blobs.items()},
                      parts=[Part(f"b.tar.zst.{i:03d}", s, "") for i, s in enumerate(parts)])


def test_part_bounds_and_blobs_in_range() -> None:
    info = _info({"a": (0, 10), "b": (10, 5), "big": (15, 35), "c": (50, 10)}, [20, 20, 20])
    assert [(p.name, s, e) for p, s, e in info.part_bounds()] == [
        ("b.tar.zst.000", 0, 20), ("b.tar.zst.001", 20, 40), ("b.tar.zst.002", 40, 60)]
    assert sorted(info.blobs_in_range(0, 20)) == ["a", "b", "big"]
    assert sorted(info.blobs_in_range(20, 40)) == ["big"]          # the big blob spans the whole part
    assert sorted(info.blobs_in_range(40, 60)) == ["big", "c"]
    assert info.blobs_in_range(10, 15) == ["b"]                    # half-open ranges: no neighbours
    assert info.blobs_in_range(60, 80) == []
    assert info.unique_bytes() == 60


def test_artifacts_using() -> None:
    arts = [{"ref": "docker.io/library/a:1", "contents": ["m1", "shared", "x"]},
            {"ref": "quay.io/b/c:2", "contents": ["m2", "shared"]},
            {"ref": "ghcr.io/d/e:3", "contents": ["m3"]}]
    info = _info({}, [1], arts)
    assert info.artifacts_using(["shared"]) == ["docker.io/library/a:1", "quay.io/b/c:2"]
    assert info.artifacts_using(["x", "m3"]) == ["docker.io/library/a:1", "ghcr.io/d/e:3"]
    assert info.artifacts_using([]) == []


def test_range_reader_across_part_boundaries(tmp_path: Path) -> None:
    data = bytes(random.Random(1).randbytes(100))
    sizes = [30, 30, 30, 10]
    pos = 0
    parts = []
    for i, s in enumerate(sizes):
        (tmp_path / f"b.tar.zst.{i:03d}").write_bytes(data[pos:pos + s])
        parts.append(s)
        pos += s
    info = _info({}, parts)
    for start, length in [(0, 100), (25, 40), (29, 2), (30, 30), (59, 41), (95, 5), (10, 0)]:
        r = _RangeReader(tmp_path, info, start, length)
        got = b""
        while chunk := r.read(7):
            got += chunk
        r.close()
        assert got == data[start:start + length], (start, length)


def test_range_reader_missing_and_truncated_part(tmp_path: Path) -> None:
    for i in range(3):
        (tmp_path / f"b.tar.zst.{i:03d}").write_bytes(b"q" * 10)
    info = _info({}, [10, 10, 10])
    (tmp_path / "b.tar.zst.001").unlink()
    r = _RangeReader(tmp_path, info, 5, 20)
    assert r.read(5) == b"q" * 5
    with pytest.raises(PartError, match=r"part b\.tar\.zst\.001 is missing"):
        r.read(10)
    (tmp_path / "b.tar.zst.001").write_bytes(b"q" * 4)          # truncated
    r = _RangeReader(tmp_path, info, 10, 10)
    assert r.read(10) == b"q" * 4
    with pytest.raises(PartError, match="ends early"):
        r.read(10)
    r = _RangeReader(tmp_path, info, 35, 5)
    with pytest.raises(PartError, match="beyond the last part"):
        r.read(5)


# -- a real bundle written by BundleWriter ---------------------------------------------------------------

def _blob(seed: int, size: int) -> tuple[Descriptor, bytes]:
    data = random.Random(seed).randbytes(size)       # incompressible: frames are about as big as the data
    return Descriptor(LAYER, sha256_digest(data), size), data


def _write_bundle(directory: Path, split: int | None = SPLIT) -> tuple[BundleInfo, dict[str, bytes], str]:
    w = BundleWriter(directory, name="b", split_size=split)
    blobs = dict(_blob(i, s) for i, s in enumerate([100, 3000, 40_000, 2000, 6000, 500, 7000]))
    by_digest = {d.digest: data for d, data in blobs.items()}
    for d, data in blobs.items():
        # two chunks: the writer must stream, not need one buffer
        w.put_blob("docker.io/library/x", d, [data[: len(data) // 2], data[len(data) // 2:]])
    cfg = sha256_digest(b"{}")
    w.put_blob("docker.io/library/x", Descriptor("application/vnd.oci.empty.v1+json", cfg, 2), [b"{}"])
    by_digest[cfg] = b"{}"
    doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
           "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": cfg, "size": 2},
           "layers": [d.to_json() for d in blobs]}
    mdata = json.dumps(doc).encode()
    m = Manifest(mdata, OCI_MANIFEST, sha256_digest(mdata))
    w.put_manifest(parse("docker.io/library/x:1"), m)
    by_digest[m.digest] = mdata
    arts = [{"ref": "docker.io/library/x:1", "kind": "image", "digest": m.digest, "media_type": OCI_MANIFEST,
             "manifest_size": len(mdata), "platforms": [], "size": sum(len(v) for v in by_digest.values()),
             "contents": [m.digest, cfg, *(d.digest for d in blobs)]}]
    info = w.finalize(arts)
    return info, by_digest, m.digest


@pytest.fixture
def bundle(tmp_path: Path) -> tuple[Path, BundleInfo, dict[str, bytes], str]:
    d = tmp_path / "B"
    info, blobs, top = _write_bundle(d)
    return d, info, blobs, top


def test_writer_output(bundle: tuple[Path, BundleInfo, dict[str, bytes], str]) -> None:
    d, info, blobs, _ = bundle
    names = sorted(p.name for p in d.iterdir())
    assert names == sorted([BUNDLE_JSON, SUMS, *(p.name for p in info.parts)])       # .work is gone
    assert [p.name for p in info.parts] == [f"b.tar.zst.{i:03d}" for i in range(len(info.parts))]
    assert len(info.parts) >= 8
    assert all(p.size <= SPLIT for p in info.parts)
    assert all(p.size == SPLIT for p in info.parts[:-1])
    assert set(info.blobs) == set(blobs)
    assert all(info.blobs[dg].size == len(data) for dg, data in blobs.items())
    # the 40 000-byte blob spans several parts
    big = max(info.blobs, key=lambda k: info.blobs[k].size)
    spanned = [p.name for p, s, e in info.part_bounds() if big in info.blobs_in_range(s, e)]
    assert len(spanned) >= 5
    # frames are contiguous and non-overlapping
    entries = sorted(info.blobs.values(), key=lambda e: e.offset)
    for a, b in itertools.pairwise(entries):
        assert a.offset + a.length == b.offset
    total = sum(p.size for p in info.parts)
    assert entries[-1].offset + entries[-1].length < total        # tar end-of-archive frame follows
    sums = (d / SUMS).read_text().splitlines()
    assert sums == [f"{p.sha256}  {p.name}" for p in info.parts]
    loaded = BundleInfo.load(d)
    assert loaded.blobs == info.blobs and loaded.parts == info.parts and loaded.split_size == SPLIT


def test_parts_are_one_zstd_stream_of_an_oci_layout(bundle: tuple[Path, BundleInfo, dict[str, bytes], str]
                                                   ) -> None:
    d, info, blobs, top = bundle
    raw = b"".join((d / p.name).read_bytes() for p in info.parts)
    with zstandard.ZstdDecompressor().stream_reader(io.BytesIO(raw), read_across_frames=True) as z:
        tar = z.read()
    with tarfile.open(fileobj=io.BytesIO(tar)) as tf:
        members = {m.name: m for m in tf.getmembers()}
        assert json.loads(tf.extractfile("oci-layout").read()) == {"imageLayoutVersion": "1.0.0"}  # type: ignore[union-attr]
        index = json.loads(tf.extractfile("index.json").read())  # type: ignore[union-attr]
        for dg, data in blobs.items():
            assert tf.extractfile(f"blobs/sha256/{dg.split(':')[1]}").read() == data  # type: ignore[union-attr]
    assert "blobs/sha256" in members
    assert index["manifests"][0]["digest"] == top
    assert index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] == "docker.io/library/x:1"


def test_every_frame_decompresses_alone(bundle: tuple[Path, BundleInfo, dict[str, bytes], str]) -> None:
    d, info, blobs, _ = bundle
    r = BundleReader(d)
    for dg, data in blobs.items():
        with r.raw_frame(dg) as f:
            frame = f.read()
        assert len(frame) == info.blobs[dg].length
        member = zstandard.ZstdDecompressor().decompress(frame)
        assert member[512:512 + len(data)] == data
        assert r.read_blob(dg) == data


def test_open_blob_reads_a_later_blob_without_earlier_parts(
        bundle: tuple[Path, BundleInfo, dict[str, bytes], str]) -> None:
    d, info, blobs, _ = bundle
    bounds = info.part_bounds()
    # a blob lying wholly inside one part that is not the first
    target, home = None, None
    for dg, e in info.blobs.items():
        for p, s, end in bounds:
            if p is not bounds[0][0] and s <= e.offset and e.offset + e.length <= end:
                target, home = dg, p.name
                break
        if target:
            break
    assert target and home
    # destroy every other part: zero some, delete the rest
    for i, (p, _, _) in enumerate(bounds):
        if p.name != home:
            path = d / p.name
            if i % 2:
                path.write_bytes(b"\0" * p.size)
            else:
                path.unlink()
    r = BundleReader(d)
    e = info.blobs[target]
    with r.open_blob("any", Descriptor(e.media_type, target, e.size)) as chunks:
        assert b"".join(chunks) == blobs[target]


def test_open_blob_spanning_parts_needs_only_its_parts(
        bundle: tuple[Path, BundleInfo, dict[str, bytes], str]) -> None:
    d, info, blobs, _ = bundle
    big = max(info.blobs, key=lambda k: info.blobs[k].size)
    e = info.blobs[big]
    needed = {p.name for p, s, end in info.part_bounds() if s < e.offset + e.length and end > e.offset}
    assert len(needed) >= 5
    for p in info.parts:
        if p.name not in needed:
            (d / p.name).unlink()
    assert BundleReader(d).read_blob(big) == blobs[big]


def test_open_blob_unknown_digest(bundle: tuple[Path, BundleInfo, dict[str, bytes], str]) -> None:
    d, *_ = bundle
    r = BundleReader(d)
    with pytest.raises(NotFoundError), r.open_blob("x", Descriptor(LAYER, "sha256:" + "0" * 64, 1)):
        pass


def test_get_manifest_by_ref_and_digest(bundle: tuple[Path, BundleInfo, dict[str, bytes], str]) -> None:
    d, _, blobs, top = bundle
    r = BundleReader(d)
    m = r.get_manifest(parse("docker.io/library/x:1"))
    assert m.digest == top and m.data == blobs[top] and m.media_type == OCI_MANIFEST
    assert r.get_manifest(parse(f"docker.io/library/x@{top}")).data == blobs[top]
    with pytest.raises(NotFoundError, match="not in this bundle"):
        r.get_manifest(parse("docker.io/library/x:2"))


def test_verify_good_and_damaged(bundle: tuple[Path, BundleInfo, dict[str, bytes], str]) -> None:
    d, info, _, _ = bundle
    rep = verify(d, jobs=2)
    assert rep.ok and rep.checked_blobs == len(info.blobs)
    victim = info.parts[3]
    raw = bytearray((d / victim.name).read_bytes())
    raw[100] ^= 0xFF
    (d / victim.name).write_bytes(bytes(raw))
    rep = verify(d, jobs=2)
    assert not rep.ok
    assert rep.bad_parts == {victim.name: "checksum mismatch (corrupted)"}
    assert rep.affected == ["docker.io/library/x:1"]


def test_unsplit_bundle_is_one_part(tmp_path: Path) -> None:
    info, blobs, _ = _write_bundle(tmp_path / "B", split=None)
    assert [p.name for p in info.parts] == ["b.tar.zst"]
    r = BundleReader(tmp_path / "B")
    for dg, data in blobs.items():
        assert r.read_blob(dg) == data


def test_rewrite_reuses_frames_and_replaces_old_parts(tmp_path: Path) -> None:
    d = tmp_path / "B"
    _write_bundle(d)
    w = BundleWriter(d, name="b", split_size=SPLIT)
    desc, data = _blob(99, 1000)
    w.put_blob("r", desc, [data])
    assert w.has_blob("r", desc)
    assert (d / BUNDLE_JSON).exists()                       # the old bundle stays until finalize
    info = w.finalize([])
    assert set(info.blobs) == {desc.digest}
    assert sorted(p.name for p in d.iterdir()) == sorted([BUNDLE_JSON, SUMS, *(p.name for p in info.parts)])


def test_load_refuses_newer_format_and_incomplete(tmp_path: Path) -> None:
    d = tmp_path / "B"
    _write_bundle(d)
    doc = json.loads((d / BUNDLE_JSON).read_text())
    doc["format_version"] = 99
    (d / BUNDLE_JSON).write_text(json.dumps(doc))
    with pytest.raises(BundleVersionError, match="format version 99 is newer") as ei:
        BundleInfo.load(d)
    assert "upgrade" in ei.value.hint
    e = tmp_path / "E"
    BundleWriter(e).put_blob("r", *(lambda t: (t[0], [t[1]]))(_blob(5, 10)))
    with pytest.raises(BundleError, match="incomplete"):
        BundleInfo.load(e)
    with pytest.raises(NotFoundError, match=r"no bundle\.json"):
        BundleInfo.load(tmp_path)


# -- raw frames (already-compressed layers) read without a decoder -------------------------------------

RAW_SIZE = 300_000                      # three raw blocks, the last one partly padding


def _raw_bundle(d: Path) -> tuple[BundleInfo, Descriptor, bytes]:
    data = random.Random(7).randbytes(RAW_SIZE)
    desc = Descriptor("application/vnd.oci.image.layer.v1.tar+gzip", sha256_digest(data), RAW_SIZE)
    w = BundleWriter(d, name="r")
    w.prepare([desc])                   # gzip layers get planned raw frames
    w.put_blob("docker.io/library/x", desc, [data[:100_000], data[100_000:]])
    info = w.finalize([{"ref": "docker.io/library/x:1", "digest": desc.digest, "media_type": desc.media_type,
                        "manifest_size": 0, "contents": [desc.digest]}])
    return info, desc, data


def _frame_pos(member_offset: int) -> int:
    """Where byte `member_offset` of the tar member sits in its raw frame (14-byte head, 3 per block)."""
    return RAW_HEAD + (member_offset // RAW_BLOCK + 1) * 3 + member_offset


def test_raw_frame_is_read_without_a_decoder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    info, desc, data = _raw_bundle(tmp_path / "R")
    e = info.blobs[desc.digest]
    assert e.length == raw_frame_length(512 + RAW_SIZE + (-RAW_SIZE) % 512)
    r = BundleReader(tmp_path / "R")
    monkeypatch.setattr(zstandard, "ZstdDecompressor", None)          # the decoder must not be needed
    with r.open_blob("", desc) as chunks:
        got = list(chunks)
    assert b"".join(got) == data
    assert max(len(c) for c in got) <= 8 * RAW_BLOCK                  # bounded chunks


@pytest.mark.parametrize("where", ["block header", "tar header", "padding", "blob"])
def test_raw_frame_damage_is_caught(tmp_path: Path, where: str) -> None:
    d = tmp_path / "R"
    info, desc, _ = _raw_bundle(d)
    e = info.blobs[desc.digest]
    pos = e.offset + {"block header": RAW_HEAD + 3 + RAW_BLOCK,            # the second block's header
                      "tar header": _frame_pos(100),
                      "padding": _frame_pos(512 + RAW_SIZE + 5),
                      "blob": _frame_pos(512 + 1234)}[where]
    part = d / info.parts[0].name
    raw = bytearray(part.read_bytes())
    raw[pos] ^= 0x40
    part.write_bytes(bytes(raw))
    r = BundleReader(d)
    if where == "blob":           # the bytes around the blob are intact: the digest check catches it
        with pytest.raises(DigestMismatchError):
            r.read_blob(desc.digest)
    else:
        with pytest.raises(PartError, match="corrupted"):
            r.read_blob(desc.digest)


@pytest.mark.parametrize("damage", [None, "tar header", "padding", "longer frame", "cut frame"])
def test_compressed_frame_bytes_around_the_blob_are_compared(damage: str | None) -> None:
    """Import hashes no part, so a compressed frame's tar header and padding, which no digest covers, are
    compared with what they must be, as in raw frames; a frame that goes on past the member or stops short
    is refused too."""
    data = b"layer " * 300
    digest = sha256_digest(data)
    pad = bundle_mod.padding(len(data))
    member = bundle_mod.tar_header(bundle_mod.blob_member(digest), len(data)) + data + b"\0" * pad
    member = {None: member, "tar header": b"y" + member[1:], "padding": member[:-1] + b"\1",
              "longer frame": member + b"\0" * 512, "cut frame": member[:-3]}[damage]
    frame = zstandard.ZstdCompressor().compress(member)
    reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(frame))
    chunks = bundle_mod._data_chunks(reader, len(data), "here", digest)
    if damage is None:
        assert b"".join(chunks) == data
    else:
        with pytest.raises(PartError, match=r"corrupted|ends early"):
            list(chunks)


def test_odd_split_size_like_fat32s_reads_back_and_verifies(tmp_path: Path) -> None:
    # --split-size 4G gives parts of 2**32 - 1 bytes (FAT32's largest file): an odd size, like this one
    d = tmp_path / "B"
    info, blobs, _ = _write_bundle(d, split=SPLIT - 1)
    assert all(p.size == SPLIT - 1 for p in info.parts[:-1])
    reader = BundleReader(d)
    assert all(reader.read_blob(dg) == data for dg, data in blobs.items())
    assert verify(d).ok


# -- the part checksums, computed while the export runs ------------------------------------------------

def _gzip_blob(seed: int, size: int) -> tuple[Descriptor, bytes]:
    data = random.Random(seed).randbytes(size)
    return Descriptor("application/vnd.oci.image.layer.v1.tar+gzip", sha256_digest(data), size), data


def _mib_chunks(data: bytes | bytearray, after: Callable[[], None] = lambda: None) -> Iterator[bytes]:
    for i in range(0, len(data), 1 << 20):
        yield bytes(data[i:i + (1 << 20)])
        after()


def _sums_match_parts(d: Path, info: BundleInfo) -> None:
    assert [p.sha256 for p in info.parts] == [hashlib.sha256((d / p.name).read_bytes()).hexdigest()
                                              for p in info.parts]
    assert verify(d).ok


def test_part_hash_follows_the_frame_being_written(tmp_path: Path, child_hasher: None) -> None:
    """The hasher reads the front frame's bytes as they are written, not only once the frame is done: the
    first frame of an export is often a big layer, and waiting for it left all the hashing for the end."""
    d = tmp_path / "B"
    w = BundleWriter(d, name="b")
    desc, data = _gzip_blob(1, 24 << 20)
    w.prepare([desc])
    seen: list[int] = []
    w.put_blob("docker.io/library/x", desc, _mib_chunks(data, lambda: seen.append(w._hasher.target)))
    assert max(seen[:-1]) >= 8 << 20                 # asked for while the last MiBs had not arrived
    _sums_match_parts(d, w.finalize([]))


def test_a_frame_that_fails_after_it_was_hashed_is_hashed_again(tmp_path: Path, child_hasher: None) -> None:
    """Bytes the hasher read from a frame that then failed (here: corrupt, so the retry writes others) must
    not stay in the part checksum."""
    d = tmp_path / "B"
    w = BundleWriter(d, name="b", split_size=5 << 20)
    desc, data = _gzip_blob(2, 24 << 20)
    w.prepare([desc])
    bad = bytearray(data)
    bad[100] ^= 1                                     # in the first MiB: hashed long before the end
    with pytest.raises(DigestMismatchError):
        w.put_blob("docker.io/library/x", desc, _mib_chunks(bad))
    assert w._hasher.pos > 0
    w.put_blob("docker.io/library/x", desc, _mib_chunks(data))
    info = w.finalize([])
    assert len(info.parts) == 5
    _sums_match_parts(d, info)
