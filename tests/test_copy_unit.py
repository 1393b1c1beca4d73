"""copy() on in-memory stores: the gate runs beside the blob transfers and holds every manifest back until it
passes; a failing gate tags nothing and stops further transfers; with damage_fails_all one damaged blob of a
local source tags nothing; a repeated copy writes nothing."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterable
from typing import Any

import pytest

from mirror import defaults
from mirror.copy import CopyItem, Resolved, copy, filter_index, resolve
from mirror.digest import sha256_digest
from mirror.errors import DigestMismatchError, MirrorError, PartError, SourceDamageError
from mirror.mediatypes import OCI_INDEX, OCI_MANIFEST, Descriptor
from mirror.reference import Reference, parse
from mirror.store import Manifest, MemoryStore


class RecordingStore(MemoryStore):
    """A MemoryStore target that logs every write, with the moment it happened."""

    def __init__(self) -> None:
        super().__init__("target")
        self.log: list[tuple[str, str, float]] = []
        self.tag_digests: dict[tuple[str, str], str] = {}
        self.slow: dict[str, float] = {}            # digest -> seconds its transfer takes

    def put_blob(self, repo: str, desc: Descriptor, chunks: Iterable[bytes]) -> None:
        time.sleep(self.slow.get(desc.digest, 0.01))    # a transfer takes a while
        super().put_blob(repo, desc, chunks)
        self.log.append(("blob", desc.digest, time.monotonic()))

    def put_manifest(self, ref: Reference, manifest: Manifest) -> None:
        super().put_manifest(ref, manifest)
        self.log.append(("manifest", str(ref), time.monotonic()))

    def tag_digest(self, repo: str, tag: str) -> str | None:
        return self.tags.get((repo, tag))


def make_source(n: int, src: MemoryStore | None = None) -> tuple[MemoryStore, list[CopyItem]]:
    src = src or MemoryStore("source")
    items = []
    for i in range(n):
        ref = parse(f"example.com/app{i}:v1")
        cfg = src.put_bytes(json.dumps({"architecture": "amd64", "os": "linux", "n": i}).encode(),
                            "application/vnd.oci.image.config.v1+json")
        layer = src.put_bytes(f"layer {i}".encode() * 1000, "application/vnd.oci.image.layer.v1.tar+gzip")
        doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": cfg.to_json(), "layers": [layer.to_json()]}
        data = json.dumps(doc).encode()
        m = Manifest(data, OCI_MANIFEST, src.put_bytes(data).digest)
        src.add_manifest(ref.name, ref.tag, m)
        items.append(CopyItem(ref, parse(f"mirror.local/base/{ref.name}:v1")))
    return src, items


def test_gate_runs_beside_transfers_and_manifests_wait_for_it() -> None:
    src, items = make_source(4)
    dst = RecordingStore()
    started = threading.Event()
    passed: list[float] = []

    def gate() -> None:
        started.set()
        time.sleep(0.15)
        passed.append(time.monotonic())

    result = copy(src, dst, items, jobs=4, gate=gate)
    assert not result.failed
    blobs = [t for kind, _, t in dst.log if kind == "blob"]
    manifests = [t for kind, _, t in dst.log if kind == "manifest"]
    assert started.is_set() and passed
    assert min(blobs) < passed[0], "blob transfers waited for the gate"
    assert min(manifests) > passed[0], "a manifest was pushed before the gate passed"
    assert len(manifests) == len(items)


def test_failing_gate_tags_nothing_and_stops_transfers() -> None:
    src, items = make_source(12)
    dst = RecordingStore()
    # 24 small blobs go 8 at a time (2 x latency_jobs): 50 ms each leaves the failing gate 150 ms to be seen
    dst.slow = dict.fromkeys(src.blobs, 0.05)

    def gate() -> None:
        raise PartError("part c.tar.zst.001 is damaged")

    with pytest.raises(PartError, match="damaged"):
        copy(src, dst, items, jobs=2, gate=gate)
    assert [e for e in dst.log if e[0] == "manifest"] == []
    assert len([e for e in dst.log if e[0] == "blob"]) < 2 * len(items), "transfers went on after the gate failed"


class RefusingStore(RecordingStore):
    """A target that refuses one blob as a registry refuses bytes that do not match their digest."""

    def __init__(self, refused: str) -> None:
        super().__init__()
        self.refused = refused

    def put_blob(self, repo: str, desc: Descriptor, chunks: Iterable[bytes]) -> None:
        if desc.digest == self.refused:
            time.sleep(0.05)
            raise DigestMismatchError(f"the target computed another digest than {desc.digest}")
        super().put_blob(repo, desc, chunks)


def _layer_of(src: MemoryStore, item: CopyItem) -> str:
    m = src.get_manifest(item.source)
    return str(json.loads(m.data)["layers"][0]["digest"])


def test_damaged_blob_with_damage_fails_all_tags_nothing_and_stops_transfers() -> None:
    src, items = make_source(12)
    bad = min(_layer_of(src, i) for i in items)         # transfers start in digest order: damage found early
    dst = RefusingStore(bad)
    dst.slow = dict.fromkeys(src.blobs, 0.05)
    with pytest.raises(SourceDamageError) as caught:
        copy(src, dst, items, jobs=2, damage_fails_all=True)
    assert list(caught.value.damaged) == [bad]
    assert [e for e in dst.log if e[0] == "manifest"] == [], "an artifact was tagged from a damaged source"
    assert len([e for e in dst.log if e[0] == "blob"]) < 2 * len(items) - 1, "transfers went on after the damage"


def test_damaged_blob_without_damage_fails_all_fails_only_its_artifact() -> None:
    src, items = make_source(4)
    dst = RefusingStore(_layer_of(src, items[0]))
    result = copy(src, dst, items, jobs=2)
    assert [str(r.item.source) for r in result.failed] == [str(items[0].source)]
    assert len([e for e in dst.log if e[0] == "manifest"]) == 3


def test_damage_fails_all_holds_every_manifest_until_the_last_blob() -> None:
    src, items = make_source(4)
    dst = RecordingStore()
    dst.slow = {_layer_of(src, items[3]): 0.3}          # one slow blob: the other artifacts are ready long before
    result = copy(src, dst, items, jobs=4, damage_fails_all=True)
    assert not result.failed
    blobs = [t for kind, _, t in dst.log if kind == "blob"]
    manifests = [t for kind, _, t in dst.log if kind == "manifest"]
    assert len(manifests) == len(items) and min(manifests) > max(blobs)


def test_repeated_copy_writes_nothing_and_skips_the_gate() -> None:
    src, items = make_source(3)
    dst = RecordingStore()
    copy(src, dst, items, jobs=2)
    dst.log.clear()
    calls: list[int] = []
    result = copy(src, dst, items, jobs=2, gate=lambda: calls.append(1))
    assert not result.failed
    assert dst.log == []
    assert calls == [], "nothing to write, yet the gate ran"


def test_repeated_copy_of_digest_pinned_artifacts_writes_nothing_either() -> None:
    src, items = make_source(3)
    pinned = [CopyItem(it.source, it.target.with_tag(None).with_digest(src.get_manifest(it.source).digest))
              for it in items]
    dst = RecordingStore()
    copy(src, dst, pinned, jobs=2)
    assert len([e for e in dst.log if e[0] == "manifest"]) == 3
    dst.log.clear()
    result = copy(src, dst, pinned, jobs=2)
    assert not result.failed and all(r.tagged for r in result.resolved)
    assert dst.log == []                    # no PUT of a manifest it holds by that very digest


def test_dry_run_counts_what_the_target_lacks_and_writes_nothing() -> None:
    src, items = make_source(3)
    dst = RecordingStore()
    copy(src, dst, items[:1], jobs=2)
    dst.log.clear()
    result = copy(src, dst, items, jobs=2, dry_run=True)
    assert dst.log == []
    assert [r.tagged for r in result.resolved] == [True, False, False]
    assert (result.blobs_fetched, result.blobs_skipped) == (4, 0)     # 2 new images x (config, layer)
    assert result.bytes == sum(b.size for r in result.resolved[1:] for b in r.blobs)


def test_discovered_items_are_copied_and_a_stale_optional_one_left_out() -> None:
    src, items = make_source(3)
    gone = items[0].source.with_tag(None).with_digest("sha256:" + "0" * 64)

    def discover(r: Resolved) -> list[CopyItem]:
        if r.item.source == items[0].source:        # the first artifact "refers" to the other two and to one
            return [CopyItem(it.source, it.target, kind="referrer") for it in items[1:]] + [
                CopyItem(gone, gone, kind="referrer", optional=True)]
        return []

    dst = RecordingStore()
    result = copy(src, dst, items[:1], jobs=2, discover=discover)
    assert not result.failed
    assert [str(r.item.source) for r in result.resolved] == [str(it.source) for it in items]
    assert all(dst.tags.get((it.target.name, "v1")) for it in items)
    strict = copy(src, RecordingStore(), items[:1], jobs=2,
                  discover=lambda r: [CopyItem(gone, gone)] if r.item.source == items[0].source else [])
    assert [str(r.item.source) for r in strict.failed] == [str(gone)]       # not optional: an error


class CountingSource(MemoryStore):
    """A MemoryStore source that counts blob reads."""

    def __init__(self) -> None:
        super().__init__("source")
        self.reads: list[str] = []

    def open_blob(self, repo: str, desc: Descriptor) -> Any:
        self.reads.append(desc.digest)
        return super().open_blob(repo, desc)


def test_platform_is_read_from_the_config_unless_the_baseline_knows_it() -> None:
    src = CountingSource()
    _, items = make_source(3, src)
    fresh = [resolve(src, it) for it in items]
    assert [r.platforms for r in fresh] == [["linux/amd64"]] * 3
    assert len(src.reads) == 3                     # one config read per image
    known = {r.top.digest: ["linux/arm64"] for r in fresh[:2] if r.top}
    src.reads.clear()
    again = [resolve(src, it, known) for it in items]
    assert [r.platforms for r in again] == [["linux/arm64"], ["linux/arm64"], ["linux/amd64"]]
    assert len(src.reads) == 1                     # only the image the baseline does not know


def test_each_artifact_is_tagged_once_its_own_blobs_are_in_not_after_every_blob() -> None:
    src, items = make_source(6)
    dst = RecordingStore()
    slow = max(d for d in src.blobs if d not in src.media_types)    # the last blob transferred
    dst.slow = {slow: 0.4}
    result = copy(src, dst, items, jobs=2)
    assert not result.failed
    done = {d: t for kind, d, t in dst.log if kind == "blob"}
    tagged = {ref: t for kind, ref, t in dst.log if kind == "manifest"}
    for r in result.resolved:
        assert r.top is not None
        when = tagged[str(r.item.target)]
        assert when > max(done[b.digest] for b in r.blobs), "tagged before its blobs were in"
    assert sum(t < done[slow] for t in tagged.values()) == len(items) - 1, \
        "artifacts not waiting for the slow blob were held back until it was in"


def test_tags_do_not_queue_behind_small_blobs() -> None:
    """Small blobs share a pool; the tags of finished artifacts have their own and go up meanwhile."""
    src, items = make_source(24)
    dst = RecordingStore()
    dst.slow = dict.fromkeys(src.blobs, 0.03)
    result = copy(src, dst, items, jobs=1)              # 48 small blobs, 30 ms each, 4 at a time
    assert not result.failed
    first_tag = min(t for kind, _, t in dst.log if kind == "manifest")
    blobs_before = sum(kind == "blob" and t < first_tag for kind, _, t in dst.log)
    assert blobs_before < 24, f"the first tag waited for {blobs_before} of 48 blobs"


# -- platform filtering of an index ---------------------------------------------------------------------

def _entry(n: int, platform: dict[str, str] | None, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    e: dict[str, Any] = {"mediaType": OCI_MANIFEST, "digest": "sha256:" + f"{n:x}" * 64, "size": 100 + n}
    if platform is not None:
        e["platform"] = platform
    if annotations:
        e["annotations"] = annotations
    return e


def _attestation(n: int, subject: dict[str, Any]) -> dict[str, Any]:
    return _entry(n, {"os": "unknown", "architecture": "unknown"},
                  {"vnd.docker.reference.digest": subject["digest"],
                   "vnd.docker.reference.type": "attestation-manifest"})


def _index(entries: list[dict[str, Any]]) -> Manifest:
    data = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}).encode()
    return Manifest(data, OCI_INDEX, sha256_digest(data))


APP = "example.com/app"


def _platform_image(src: MemoryStore, arch: str) -> dict[str, Any]:
    """An untagged image manifest (no layers) in `src`'s APP repository, as an index entry for `arch`."""
    cfg = src.put_bytes(json.dumps({"architecture": arch, "os": "linux"}).encode(),
                        "application/vnd.oci.image.config.v1+json")
    data = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": cfg.to_json(),
                       "layers": []}).encode()
    m = Manifest(data, OCI_MANIFEST, sha256_digest(data))
    src.add_manifest(APP, None, m)
    return {**m.descriptor.to_json(), "platform": {"os": "linux", "architecture": arch}}


def _four_platforms(src: MemoryStore) -> Reference:
    """APP:v1, an index of four platform images, in `src`."""
    ref = parse(f"{APP}:v1")
    src.add_manifest(ref.name, ref.tag, _index([_platform_image(src, a) for a in ("amd64", "arm64", "386", "s390x")]))
    return ref


def test_filtering_keeps_the_attestations_of_the_chosen_images_only() -> None:
    amd, arm = _entry(1, {"os": "linux", "architecture": "amd64"}), _entry(2, {"os": "linux", "architecture": "arm64"})
    plain = _entry(5, None)                                      # no platform at all: not a platform image
    index = _index([amd, arm, _attestation(3, amd), _attestation(4, arm), plain])
    whole, offered = filter_index(index, [])
    assert whole is index and offered == ["linux/amd64", "linux/arm64"]      # unknown/unknown is no platform
    kept, platforms = filter_index(index, ["linux/arm64"])
    assert platforms == ["linux/arm64"] and kept.digest != index.digest
    assert [m["digest"] for m in json.loads(kept.data)["manifests"]] == [arm["digest"], "sha256:" + "4" * 64,
                                                                         plain["digest"]]
    same, _ = filter_index(index, ["linux/amd64", "linux/arm64"])
    assert same is index                                        # nothing dropped: the exact bytes stay
    with pytest.raises(MirrorError, match=r"none of the platforms linux/s390x .*\(it has linux/amd64, linux/arm64\)"):
        filter_index(index, ["linux/s390x"])


def test_an_index_without_platforms_is_not_filtered() -> None:
    index = _index([_entry(1, None), _entry(2, None)])            # e.g. an index of artifacts
    assert filter_index(index, ["linux/amd64"]) == (index, [])


# -- how wide each kind of work runs ---------------------------------------------------------------------

class Rendezvous:
    """Calls wait (up to `wait` s) until `n` are in flight at once; once that happened, or a wait timed out,
    nobody waits any more. Records the peak."""

    def __init__(self, n: int, wait: float = 10.0) -> None:
        self.n, self.wait, self.now, self.peak = n, wait, 0, 0
        self.lock = threading.Lock()
        self.met = threading.Event()
        self.gave_up = False

    def __enter__(self) -> None:
        with self.lock:
            self.now += 1
            self.peak = max(self.peak, self.now)
            if self.now >= self.n:
                self.met.set()
        if not self.gave_up and not self.met.wait(self.wait):
            self.gave_up = True

    def __exit__(self, *exc: object) -> None:
        with self.lock:
            self.now -= 1


def test_round_trips_run_wider_than_big_transfers() -> None:
    """-j bounds the transfers of big blobs (CPU and bandwidth); resolving and small blobs, which wait on
    round trips, run LATENCY_JOBS_PER_JOB times as wide. Far from a registry that is most of the time."""
    width = defaults.LATENCY_JOBS_PER_JOB
    resolving, small, big = Rendezvous(width), Rendezvous(width), Rendezvous(2, wait=0.3)

    class Far(MemoryStore):
        def get_manifest(self, ref: Reference) -> Manifest:
            with resolving:
                return super().get_manifest(ref)

    class Target(MemoryStore):
        def put_blob(self, repo: str, desc: Descriptor, chunks: Iterable[bytes]) -> None:
            with big if desc.size >= defaults.SMALL_BLOB else small:
                super().put_blob(repo, desc, chunks)

    src, items = make_source(2 * width, Far("source"))
    for i in range(3):                                            # three artifacts with a big layer
        ref = parse(f"example.com/big{i}:v1")
        layer = src.put_bytes(bytes([i]) * defaults.SMALL_BLOB, "application/vnd.oci.image.layer.v1.tar+gzip")
        cfg = src.put_bytes(b"{}", "application/vnd.oci.image.config.v1+json")
        data = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": cfg.to_json(),
                           "layers": [layer.to_json()]}).encode()
        src.add_manifest(ref.name, ref.tag, Manifest(data, OCI_MANIFEST, src.put_bytes(data).digest))
        items.append(CopyItem(ref, parse(f"mirror.local/base/{ref.name}:v1")))
    result = copy(src, Target("target"), items, jobs=1)
    assert not result.failed
    assert resolving.met.is_set() and small.met.is_set(), (resolving.peak, small.peak)
    assert big.peak == 1, "more big transfers at once than -j"


def test_an_index_children_are_fetched_at_once() -> None:
    """Far away, an index of 8 platforms and their 8 attestations cost 16 round trips one after the other;
    they are fetched together, in the pool tags use later."""
    arrived = Rendezvous(4, wait=5)

    class Far(MemoryStore):
        def get_manifest(self, ref: Reference) -> Manifest:
            if ref.digest:                                  # a child, asked for by digest
                with arrived:
                    pass
            return super().get_manifest(ref)

    src = Far("source")
    ref = _four_platforms(src)
    result = copy(src, MemoryStore("target"), [CopyItem(ref, parse("mirror.local/base/app:v1"))], jobs=1)
    assert not result.failed and len(result.resolved[0].manifests) == 5
    assert arrived.met.is_set(), f"children fetched {arrived.peak} at a time"


def test_an_index_image_manifests_go_up_together_and_before_it() -> None:
    src = MemoryStore("source")
    ref = _four_platforms(src)
    pushed = Rendezvous(4, wait=5)
    order: list[str] = []

    class Far(RecordingStore):
        def put_manifest(self, ref: Reference, manifest: Manifest) -> None:
            if manifest.media_type == OCI_MANIFEST:
                with pushed:
                    pass
            super().put_manifest(ref, manifest)
            order.append(manifest.media_type)

    result = copy(src, Far(), [CopyItem(ref, parse("mirror.local/base/app:v1"))], jobs=1)
    assert not result.failed
    assert pushed.met.is_set(), f"image manifests pushed {pushed.peak} at a time"
    assert order == [OCI_MANIFEST] * 4 + [OCI_INDEX]                 # the index after everything it names


class MountingStore(RecordingStore):
    """A target that mounts across repositories as a registry does, each mount through `mounting`."""

    single_namespace = False                        # a registry: each repository holds its own blobs

    def __init__(self, mounting: Rendezvous | None = None) -> None:
        super().__init__()
        self.mounting = mounting
        self.mounts: list[tuple[str, str]] = []

    def mount_blob(self, repo: str, desc: Descriptor, from_repo: str) -> bool:
        with self.mounting or contextlib.nullcontext():
            with self._lock:
                self.mounts.append((repo, desc.digest))
            return True


def _sharing(src: MemoryStore, n: int, layer: Descriptor) -> list[CopyItem]:
    """n artifacts of one layer each, every one the same `layer`, with a config of their own."""
    items = []
    for i in range(n):
        ref = parse(f"example.com/shared{i}:v1")
        cfg = src.put_bytes(json.dumps({"n": i}).encode(), "application/vnd.oci.image.config.v1+json")
        data = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": cfg.to_json(),
                           "layers": [layer.to_json()]}).encode()
        src.add_manifest(ref.name, ref.tag, Manifest(data, OCI_MANIFEST, src.put_bytes(data).digest))
        items.append(CopyItem(ref, parse(f"mirror.local/base/{ref.name}:v1")))
    return items


def test_a_shared_layer_is_mounted_into_its_other_repositories_at_once() -> None:
    """A base layer in 8 repositories: one upload, then 7 mounts, each a round trip in which a registry
    writes a link; one after the other they held a big-blob worker for 7 round trips."""
    src = MemoryStore("source")
    layer = src.put_bytes(b"\1" * defaults.SMALL_BLOB, "application/vnd.oci.image.layer.v1.tar+gzip")
    items = _sharing(src, 8, layer)
    mounting = Rendezvous(4, wait=5)
    dst = MountingStore(mounting)
    result = copy(src, dst, items, jobs=1)
    assert not result.failed and result.blobs_mounted == 7
    assert sorted(dst.mounts) == [(f"mirror.local/base/example.com/shared{i}", layer.digest) for i in range(1, 8)]
    assert mounting.met.is_set(), f"mounted {mounting.peak} at a time"


def test_nested_indexes_go_up_after_what_they_name() -> None:
    """Like a registry, this target refuses an index naming a manifest it does not hold yet."""

    class Strict(MemoryStore):
        def put_manifest(self, ref: Reference, manifest: Manifest) -> None:
            doc = json.loads(manifest.data)
            for child in doc.get("manifests", []):
                if child["digest"] not in self.media_types:
                    raise MirrorError(f"manifest blob unknown: {child['digest']}")
            super().put_manifest(ref, manifest)

    src = MemoryStore("source")
    inner = _index([_platform_image(src, "arm64"), _platform_image(src, "386")])
    src.add_manifest(APP, None, inner)
    ref = parse(f"{APP}:v1")
    src.add_manifest(ref.name, ref.tag, _index([_platform_image(src, "amd64"), inner.descriptor.to_json()]))
    dst = Strict("target")
    result = copy(src, dst, [CopyItem(ref, parse("mirror.local/base/app:v1"))], jobs=1)
    assert not result.failed, result.failed[0].error
    assert len(result.resolved[0].manifests) == 5
