"""An export interrupted and run again, through copy() into a BundleWriter, with the first run's journal
not taken on trust: a blob it lists that moved (the content changed) or whose bytes never reached the disk
(a power cut: the journal line did, the data did not) is fetched again, and the bundle is whole."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mirror.bundle import BundleReader, BundleWriter, verify
from mirror.cli import artifact_record
from mirror.copy import CopyItem, copy
from mirror.mediatypes import OCI_MANIFEST, Descriptor
from mirror.reference import parse
from mirror.store import Manifest, MemoryStore

LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


class CountingSource(MemoryStore):
    def __init__(self) -> None:
        super().__init__("source")
        self.reads: list[str] = []

    @contextmanager
    def open_blob(self, repo: str, desc: Descriptor) -> Iterator[Iterator[bytes]]:
        self.reads.append(desc.digest)
        with super().open_blob(repo, desc) as chunks:
            yield chunks


Image = tuple[CopyItem, Descriptor, Descriptor]         # the item, its layer, its config


def _image(src: MemoryStore, name: str, layer: bytes) -> Image:
    ref = parse(f"example.com/{name}:v1")
    cfg = src.put_bytes(json.dumps({"architecture": "amd64", "os": "linux", "name": name}).encode(),
                        "application/vnd.oci.image.config.v1+json")
    lay = src.put_bytes(layer, LAYER)
    data = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": cfg.to_json(),
                       "layers": [lay.to_json()]}).encode()
    src.add_manifest(ref.name, ref.tag, Manifest(data, OCI_MANIFEST, src.put_bytes(data).digest))
    return CopyItem(ref, ref), lay, cfg


def _two_images(src: MemoryStore) -> tuple[Image, Image]:
    """Image a, and image c whose layer sorts before a's: added later, it moves a's layer in the bundle."""
    a = _image(src, "a", b"a" * 300_000)
    for i in range(1000):
        c = _image(src, f"c{i}", bytes([i % 251]) * 200_000 + str(i).encode())
        if c[1].digest < a[1].digest:
            return a, c
    raise AssertionError("no layer sorting before a's")


def _export(src: MemoryStore, out: Path, items: list[CopyItem], *, finish: bool) -> None:
    w = BundleWriter(out, name="b")
    try:
        result = copy(src, w, items, jobs=2)
        assert not result.failed
        if finish:
            w.finalize([artifact_record(r) for r in result.ok])
    finally:
        w.close()


def _whole(out: Path, src: MemoryStore) -> None:
    assert verify(out).ok
    r = BundleReader(out)
    for art in r.info.artifacts:
        for d in art["contents"]:
            assert r.read_blob(d) == src.blobs[d], d


def test_a_journaled_layer_that_moved_is_fetched_again(tmp_path: Path) -> None:
    src = CountingSource()
    (a, a_layer, _), (c, _, _) = _two_images(src)
    out = tmp_path / "bundle"
    _export(src, out, [a], finish=False)                   # interrupted after a was complete
    src.reads.clear()
    _export(src, out, [a, c], finish=True)                 # the content file now also names c
    _whole(out, src)
    assert a_layer.digest in src.reads                     # its old place is c's now


def test_journaled_bytes_that_never_reached_the_disk_are_fetched_again(tmp_path: Path) -> None:
    src = CountingSource()
    (a, a_layer, a_cfg), (c, c_layer, _) = _two_images(src)
    out = tmp_path / "bundle"
    _export(src, out, [c, a], finish=False)
    work = out / ".work"
    journal = [json.loads(line) for line in (work / "journal").read_text().splitlines()]
    layer = next(e for e in journal if e["digest"] == a_layer.digest)
    # a power cut: the journal reached the disk, the layer's blocks (reserved, unwritten) read as zeros
    # and a staged frame is empty
    part = next(p for p in work.iterdir() if p.name.startswith("b.tar.zst"))
    with part.open("r+b") as f:
        f.seek(layer["offset"])
        f.write(b"\0" * layer["length"])
    (work / "frames" / a_cfg.digest.replace(":", "-")).write_bytes(b"")
    src.reads.clear()
    _export(src, out, [c, a], finish=True)
    _whole(out, src)
    assert a_layer.digest in src.reads and c_layer.digest not in src.reads   # c's layer was reused
