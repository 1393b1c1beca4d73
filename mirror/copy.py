"""The one copy function, used by export, import and everything built on them.

1. Resolve every artifact's graph (manifests as exact bytes, children first), in parallel.
2. Schedule every unique blob across all artifacts at once: each is transferred once, then mounted into the
   other target repositories that need it; blobs the target already has are skipped (HEAD).
3. Push child manifests by digest, then tag. An artifact whose blobs failed is never tagged.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Executor, Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any

from . import defaults
from .digest import Verifier, sha256_digest
from .errors import (
    BundleError,
    DependencyError,
    DigestMismatchError,
    MirrorError,
    NotFoundError,
    SourceDamageError,
    UnreachableError,
)
from .mediatypes import (
    Descriptor,
    artifact_type,
    attestation_subject,
    children,
    is_index,
    parse_manifest,
    platform_matches,
    platform_string,
)
from .progress import Event, Progress, nothing
from .reference import Reference
from .store import Manifest, Mounter, Store

log = logging.getLogger("mirror.copy")
_TRANSIENT = (UnreachableError, DigestMismatchError)


@dataclass
class CopyItem:
    source: Reference
    target: Reference
    platforms: list[str] = field(default_factory=list)
    kind: str = "image"
    meta: dict[str, Any] = field(default_factory=dict)
    referrers: bool = False         # an export also carries what refers to it (see mirror.referrers)
    optional: bool = False          # found by `discover`: when the source no longer has it, leave it out


@dataclass
class Resolved:
    item: CopyItem
    top: Manifest | None = None
    manifests: list[Manifest] = field(default_factory=list)    # children first, top last
    blobs: list[Descriptor] = field(default_factory=list)       # unique within the artifact
    platforms: list[str] = field(default_factory=list)
    source_digest: str = ""                                     # before platform filtering
    artifact_type: str | None = None
    error: MirrorError | None = None
    present: bool = False                                       # target already had it complete
    tagged: bool = False                                        # ... and its tag already names it
    fetched: dict[str, bytes] = field(default_factory=dict)     # small blobs already read while resolving

    @property
    def contents(self) -> list[str]:
        return [m.digest for m in self.manifests] + [b.digest for b in self.blobs]

    @property
    def size(self) -> int:
        return sum(len(m.data) for m in self.manifests) + sum(b.size for b in self.blobs)


@dataclass
class CopyResult:
    resolved: list[Resolved] = field(default_factory=list)
    blobs_fetched: int = 0
    blobs_skipped: int = 0
    blobs_mounted: int = 0
    bytes: int = 0
    seconds: float = 0.0

    @property
    def failed(self) -> list[Resolved]:
        return [r for r in self.resolved if r.error is not None]

    @property
    def ok(self) -> list[Resolved]:
        return [r for r in self.resolved if r.error is None]


def repo_of(store: Store, ref: Reference) -> str:
    f = getattr(store, "repo_of", None)
    return f(ref) if f else ref.repository


# -- resolve ---------------------------------------------------------------------------------------------

def filter_index(manifest: Manifest, platforms: list[str]) -> tuple[Manifest, list[str]]:
    """Keep only the wanted platforms. Unfiltered indexes keep their exact bytes (and digest); a filtered
    index is necessarily a new document with a new digest, and the caller records the source digest.

    BuildKit attestations (SBOM, provenance) go with the image they describe, and are no platform of their
    own; entries without any platform are kept; an index none of whose entries has one (an artifact
    index) is not a platform choice and is kept whole."""
    mt, doc = parse_manifest(manifest.data, manifest.media_type)
    entries = doc.get("manifests", [])
    subjects = [attestation_subject(m) for m in entries]
    have = [None if s else platform_string(m.get("platform")) for m, s in zip(entries, subjects, strict=True)]
    offered = sorted({p for p in have if p})
    if not platforms or not offered:
        return manifest, offered
    chosen = {m.get("digest"): p for m, p in zip(entries, have, strict=True) if p and platform_matches(p, platforms)}
    if not chosen:
        raise MirrorError(f"none of the platforms {', '.join(platforms)} is in this index "
                          f"(it has {', '.join(offered)})",
                          hint="adjust `platforms:` in the content file or --platform")
    # a chosen image; an attestation of one; or an entry that is neither a platform nor an attestation
    keep = [m for m, p, s in zip(entries, have, subjects, strict=True)
            if m.get("digest") in chosen or (p is None and (s is None or s in chosen))]
    kept = sorted(set(chosen.values()))
    if len(keep) == len(entries):
        return manifest, kept
    new = dict(doc)
    new["manifests"] = keep
    data = json.dumps(new, indent=3).encode()
    return Manifest(data, mt, sha256_digest(data)), kept


def resolve(source: Store, item: CopyItem, known_platforms: Mapping[str, list[str]] | None = None,
            fetcher: Executor | None = None) -> Resolved:
    """The artifact's manifests, blobs and platforms. `known_platforms` (image manifest digest -> platforms,
    from a delta's baseline) spares the config fetch an image's platform otherwise costs: a manifest digest
    fixes its config, so what the baseline recorded still holds. With a `fetcher`, an index's children are
    fetched at once (one round trip for all of them, not one each); it must not be the caller's own pool."""
    r = Resolved(item)
    try:
        top = source.get_manifest(item.source)
        r.source_digest = top.digest
        if item.source.digest and top.digest != item.source.digest:
            raise DigestMismatchError(f"source served {top.digest} for {item.source}", where=source.label)
        if is_index(top.media_type):
            top, r.platforms = filter_index(top, item.platforms)
        seen_blobs: dict[str, Descriptor] = {}
        seen_manifests: set[str] = set()

        def walk(m: Manifest) -> None:
            mt, doc = parse_manifest(m.data, m.media_type)
            if r.artifact_type is None and not is_index(mt):
                r.artifact_type = artifact_type(doc)
            kids, blobs = children(mt, doc)
            kids = list({k.digest: k for k in kids if k.digest not in seen_manifests}.values())
            seen_manifests.update(k.digest for k in kids)

            def get(kid: Descriptor) -> Manifest:
                return source.get_manifest(item.source.with_digest(kid.digest))

            got = fetcher.map(get, kids) if fetcher is not None and len(kids) > 1 else map(get, kids)
            for kid, child in zip(kids, got, strict=True):
                if child.digest != kid.digest:
                    raise DigestMismatchError(f"child manifest hashes to {child.digest}, not {kid.digest}",
                                              where=source.label)
                walk(child)
            for b in blobs:
                seen_blobs.setdefault(b.digest, b)
            r.manifests.append(m)

        walk(top)
        r.top = top
        r.blobs = list(seen_blobs.values())
        if not r.platforms:
            if known_platforms and top.digest in known_platforms:
                r.platforms = list(known_platforms[top.digest])
            else:
                r.platforms = image_platform(source, repo_of(source, item.source), top, r.fetched)
    except MirrorError as e:
        r.error = e
    return r


def image_platform(store: Store, repo: str, manifest: Manifest, keep: dict[str, bytes] | None = None) -> list[str]:
    """The platform an image manifest's config names ([] for indexes, non-image artifacts, or a config that
    cannot be read). The (small, verified) config bytes go into `keep`, so a copy does not fetch them twice."""
    if is_index(manifest.media_type):
        return []
    _, doc = parse_manifest(manifest.data, manifest.media_type)
    cfg = doc.get("config") or {}
    size = int(cfg.get("size", 0))
    if not cfg.get("mediaType", "").endswith(("container.image.v1+json", "image.config.v1+json")) or size > 1 << 20:
        return []
    desc = Descriptor(cfg["mediaType"], cfg["digest"], size)
    try:
        with store.open_blob(repo, desc) as chunks:
            data = b"".join(Verifier(chunks, desc.digest, desc.size))
        if keep is not None:
            keep[desc.digest] = data
        conf = json.loads(data)
        p = platform_string({"os": conf.get("os"), "architecture": conf.get("architecture"),
                             "variant": conf.get("variant")})
        return [p] if p and p != "/" else []
    except (MirrorError, ValueError, AttributeError):
        return []


def _resolve_graph(source: Store, items: list[CopyItem], known_platforms: Mapping[str, list[str]] | None,
                   discover: Callable[[Resolved], list[CopyItem]] | None, pool: Executor,
                   fetcher: Executor, then: Callable[[Resolved], None] | None = None) -> list[Resolved]:
    """Resolve every item in `pool`, then what `discover` names for each, and so on, each source reference
    once. A discovery that fails fails its artifact (what was asked for cannot be listed); a discovered item
    marked optional that the source does not have (a stale entry of a referrers list) is left out.
    `then` runs on each resolved artifact in the same task, as soon as it is resolved."""
    def one(it: CopyItem) -> Resolved:
        r = resolve(source, it, known_platforms, fetcher)
        if then is not None:
            then(r)
        return r

    def resolve_all(batch: list[CopyItem]) -> list[Resolved]:
        return list(pool.map(one, batch))

    def discovered(r: Resolved) -> list[CopyItem]:
        assert discover is not None
        try:
            return discover(r)
        except MirrorError as e:
            r.error = e
            return []

    resolved = frontier = resolve_all(items)
    seen = {str(it.source) for it in items}
    while discover is not None and frontier:
        found = [it for more in pool.map(discovered, [r for r in frontier if r.error is None]) for it in more]
        new = list({str(it.source): it for it in found if str(it.source) not in seen}.values())
        seen.update(str(it.source) for it in new)
        frontier = []
        for r in resolve_all(new):
            if isinstance(r.error, NotFoundError) and r.item.optional:
                log.warning("%s is listed but not there; left out (%s)", r.item.source, r.error.what)
            else:
                frontier.append(r)
        resolved = resolved + frontier
    return resolved


def plan(source: Store, items: list[CopyItem], *, jobs: int = defaults.JOBS,
         known_platforms: Mapping[str, list[str]] | None = None,
         discover: Callable[[Resolved], list[CopyItem]] | None = None) -> CopyResult:
    """What copy() would carry, without transferring anything: every artifact resolved (manifests, blob
    descriptors, platforms), as a CopyResult with no blob counted."""
    started = time.monotonic()
    wide = defaults.latency_jobs(max(1, jobs))
    with ThreadPoolExecutor(wide) as pool, ThreadPoolExecutor(wide) as fetcher:
        result = CopyResult(resolved=_resolve_graph(source, items, known_platforms, discover, pool, fetcher))
    result.seconds = time.monotonic() - started
    return result


# -- transfer --------------------------------------------------------------------------------------------

@dataclass
class _BlobTask:
    desc: Descriptor
    src_repo: str
    dst_repos: list[str]


def _counting(chunks: Iterable[bytes], progress: Progress, digest: str) -> Iterator[bytes]:
    for c in chunks:
        progress(Event("bytes", digest, len(c)))
        yield c


def _transfer(source: Store, target: Store, task: _BlobTask, repo: str, progress: Progress,
              cached: bytes | None = None) -> None:
    if cached is not None:                       # verified when it was read during resolve
        progress(Event("bytes", task.desc.digest, len(cached)))
        target.put_blob(repo, task.desc, [cached])
        return
    last: Exception | None = None
    for attempt in range(defaults.RETRIES + 1):
        try:
            with source.open_blob(task.src_repo, task.desc) as chunks:
                stream = _counting(chunks, progress, task.desc.digest)
                if not getattr(target, "verifies_blobs", False):      # stores that verify need no 2nd pass
                    stream = iter(Verifier(stream, task.desc.digest, task.desc.size, where=source.label))
                target.put_blob(repo, task.desc, stream)
            return
        except _TRANSIENT as e:
            last = e
            # Local sources (bundle, layout) do not heal: a digest mismatch there is final.
            if isinstance(e, DigestMismatchError) and getattr(source, "single_namespace", False):
                break
            if attempt < defaults.RETRIES:
                log.info("retrying blob %s after: %s", task.desc.digest, e)
                time.sleep(min(defaults.BACKOFF_BASE * 2 ** attempt, defaults.BACKOFF_MAX))
    assert last is not None
    raise last


def copy(source: Store, target: Store, items: list[CopyItem], *, jobs: int = defaults.JOBS,
         progress: Progress = nothing, skip_present: bool = True,
         gate: Callable[[], None] | None = None,
         damage_fails_all: bool = False,
         known_platforms: Mapping[str, list[str]] | None = None,
         discover: Callable[[Resolved], list[CopyItem]] | None = None,
         dry_run: bool = False) -> CopyResult:
    """Copy every item from source to target. Failures are recorded per artifact, never half-tagged.

    `gate` is a check that must pass before anything becomes visible in the target. It starts after
    planning, only when something is to be written, and runs beside the blob transfers (import uses it
    to checksum every part: hashing the parts first, then pushing, left the target idle for the whole
    hash). Blobs are content-addressed and verified by the target, so a blob pushed while the gate runs
    is harmless; no manifest and no tag is pushed until the gate has passed. If it raises, the blob
    transfers not yet started are dropped and copy raises the gate's error: nothing is tagged.

    With `damage_fails_all`, a blob whose bytes in a local source are damaged (its digest does not match,
    as the target or this process found, or the bundle's frame around it is broken) fails the whole copy,
    not only the artifacts that use it: no manifest goes up before every blob transfer has ended, the
    transfers not yet started are dropped, and copy raises SourceDamageError naming each damaged blob.
    Import relies on it: every byte it reads is checked on the way, so a damaged bundle tags nothing
    without hashing every part first.

    `known_platforms` is passed to `resolve`.

    With `dry_run`, nothing is written: the artifacts are resolved and checked against the target as for a
    copy, and each blob a copy would need is asked for (HEAD in its first repository): the result counts
    those missing as fetched (with their bytes) and the others as skipped.

    `discover` names further items for a resolved artifact (its referrers: signatures, SBOMs); they are
    resolved and discovered in turn, each source reference once, and then copied with everything else.

    `jobs` bounds the transfers of big blobs, which cost CPU (every byte is hashed) and bandwidth. What
    waits on round trips instead (resolving, HEADs, mounts, manifests, small blobs) runs
    LATENCY_JOBS_PER_JOB times as wide, in a pool of its own, so that far from a registry hundreds of
    small requests do not queue behind four layers.
    """
    started = time.monotonic()
    result = CopyResult()
    jobs = max(1, jobs)
    wide = defaults.latency_jobs(jobs)
    # manifests have a pool of their own: a finished artifact's tag never queues behind small blobs; an
    # index's image manifests go up in another (a task of a pool must not wait on that same pool)
    with (ThreadPoolExecutor(jobs) as pool, ThreadPoolExecutor(1) as gate_pool,
          ThreadPoolExecutor(wide) as near_pool, ThreadPoolExecutor(wide) as manifest_pool,
          ThreadPoolExecutor(wide) as child_pool, ThreadPoolExecutor(wide) as mount_pool):
        # An artifact whose top manifest the target already holds is complete there (registries refuse
        # manifests whose blobs are missing), so only its tag is pushed again; where the tag already names
        # the same digest (a repeated import), even that PUT, which a registry would validate against every
        # blob again, is skipped: one HEAD per artifact and nothing written. Where the tag is absent or
        # names another digest, the artifact is pushed without asking for its digest as well (one round
        # trip less per new artifact, before any transfer starts): if the manifest is there untagged after
        # all, its blobs and children are found by their own HEADs and only the tag is written. Only a tag
        # whose digest the registry does not say ("") leads to asking for the manifest by digest.
        tag_digest = getattr(target, "tag_digest", None)

        def check_present(r: Resolved) -> None:
            if r.error is None and r.top is not None and skip_present:
                dst = repo_of(target, r.item.target)
                try:
                    named = ""
                    if tag_digest is not None and r.item.target.tag and not r.item.target.digest:
                        named = tag_digest(dst, r.item.target.tag)
                        r.tagged = r.present = named == r.top.digest
                    if named == "":
                        r.present = target.has_manifest(dst, r.top.descriptor)
                        if not r.item.target.tag:       # pinned by digest: no tag to write either
                            r.tagged = r.present
                except MirrorError:
                    r.present = r.tagged = False

        # Each artifact is checked in the target as soon as it is resolved, beside the others' resolving:
        # from a bundle, resolving is local work and the checks wait on the target (32 artifacts took 26 ms
        # to resolve, then 26 ms to check). An index's children are fetched in the manifest pool, idle
        # until the first tag.
        result.resolved = _resolve_graph(source, items, known_platforms, discover, near_pool, manifest_pool,
                                         then=check_present)

        tasks: dict[str, _BlobTask] = {}
        owners: dict[str, list[Resolved]] = {}
        for r in result.ok:
            if r.present:
                continue
            dst = repo_of(target, r.item.target)
            for b in r.blobs:
                t = tasks.get(b.digest)
                if t is None:
                    tasks[b.digest] = t = _BlobTask(b, repo_of(source, r.item.source), [])
                if dst not in t.dst_repos:
                    t.dst_repos.append(dst)
                owners.setdefault(b.digest, []).append(r)
        if dry_run:
            def missing(task: _BlobTask) -> bool:
                return not target.has_blob(task.dst_repos[0], task.desc)

            for task, lacks in zip(tasks.values(), near_pool.map(missing, tasks.values()), strict=True):
                result.blobs_fetched += lacks
                result.blobs_skipped += not lacks
                result.bytes += task.desc.size if lacks else 0
            result.seconds = time.monotonic() - started
            return result
        gate_run: Future[None] | None = None
        if gate is not None and (tasks or any(not r.present for r in result.ok)):
            gate_run = gate_pool.submit(gate)
        prepare = getattr(target, "prepare", None)
        if prepare is not None:          # e.g. the bundle writer places every blob before any arrives
            prepare([b for r in result.ok for b in r.blobs])
        progress(Event("plan", n=len(tasks), total=sum(t.desc.size for t in tasks.values())))

        single = bool(getattr(target, "single_namespace", False))
        # damage only a local source's bytes can have: a registry source is asked again (see _transfer)
        local = bool(getattr(source, "single_namespace", False))
        damaged: dict[str, str] = {}
        unfinished = [len(tasks)]       # blob transfers not yet ended (damage_fails_all holds tags until 0)

        def fail_if_damaged() -> None:
            if damaged:
                raise SourceDamageError(f"{len(damaged)} blob(s) damaged in the source: "
                                        f"{', '.join(sorted(damaged))}", damaged=damaged, where=source.label,
                                        hint="nothing was tagged; copy the source again")

        if damage_fails_all and local:          # a damaged manifest: nothing is transferred at all
            for r in result.resolved:
                if isinstance(r.error, SourceDamageError):
                    damaged.update(r.error.damaged)
            fail_if_damaged()
        claim = getattr(target, "claim_blob", target.has_blob)     # has it? (a registry: and if not, open)
        cached = {d: b for r in result.ok for d, b in r.fetched.items()}

        def run_blob(task: _BlobTask) -> tuple[str, str, int, int, MirrorError | None]:
            if (gate_run is not None and gate_run.done() and gate_run.exception() is not None) or damaged:
                return "failed", task.desc.digest, 0, 0, None        # nothing will be tagged: stop transferring
            try:
                repos = task.dst_repos[:1] if single else task.dst_repos
                # One HEAD per blob, not one per repository: once the blob is in the first repository the
                # others get a cross-repository mount, which a registry answers 201 whether or not the
                # blob was already there (a fresh import would otherwise spend a HEAD on every pair).
                can_mount = isinstance(target, Mounter) and len(repos) > 1
                first_has = claim(repos[0], task.desc)
                if first_has and len(repos) == 1:
                    progress(Event("blob_skip", task.desc.digest, task.desc.size))
                    return "skipped", task.desc.digest, 0, 0, None
                fetched = 0
                mounted = 0
                if not first_has:
                    _transfer(source, target, task, repos[0], progress, cached.get(task.desc.digest))
                    fetched += task.desc.size
                # The other repositories get their mounts all at once: each is a round trip in which the
                # registry writes (and syncs) one link, so one after the other they held this worker, and
                # the next layer, for 30 x 2-30 ms where a base layer is in 30 repositories.
                rest = repos[1:]

                def mount(rp: str) -> bool:
                    return bool(target.mount_blob(rp, task.desc, repos[0]))    # type: ignore[attr-defined]

                got = list(mount_pool.map(mount, rest)) if can_mount else [False] * len(rest)
                for rp, was_mounted in zip(rest, got, strict=True):
                    if was_mounted:
                        mounted += 1
                    elif not target.has_blob(rp, task.desc):
                        _transfer(source, target, task, rp, progress, cached.get(task.desc.digest))
                        fetched += task.desc.size
                if not fetched and not mounted:
                    progress(Event("blob_skip", task.desc.digest, task.desc.size))
                    return "skipped", task.desc.digest, 0, 0, None
                progress(Event("blob_done", task.desc.digest, task.desc.size))
                kind = "fetched" if fetched else "mounted"
                return kind, task.desc.digest, fetched, mounted, None
            except MirrorError as e:
                progress(Event("error", task.desc.digest, label=str(e)))
                return "failed", task.desc.digest, 0, 0, e

        def push_manifests(r: Resolved) -> None:
            if r.error is not None or r.top is None:
                return
            if r.tagged:
                progress(Event("artifact_done", r.top.digest, label=str(r.item.source)))
                return
            try:
                untagged = Reference(r.item.target.registry, r.item.target.repository)
                if not r.present:
                    # Pushed without asking first: the top manifest is absent, so its children almost always
                    # are too (a HEAD each was 120 of 6500 requests at 300 small images), and a PUT of a
                    # manifest the target holds changes nothing there.
                    def put_child(m: Manifest) -> None:
                        target.put_manifest(untagged.with_digest(m.digest).with_tag(None), m)

                    # Image manifests name only blobs, which are in: they go up together. Indexes inside
                    # (rare) follow, children first, as resolve listed them.
                    kids = r.manifests[:-1]
                    images = [m for m in kids if not is_index(m.media_type)]
                    list(child_pool.map(put_child, images) if len(images) > 1 else map(put_child, images))
                    for m in kids:
                        if is_index(m.media_type):
                            put_child(m)
                tag_ref = r.item.target.with_digest(None) if r.item.target.tag else untagged.with_digest(  # type: ignore[arg-type]
                    r.top.digest).with_tag(None)
                target.put_manifest(tag_ref, r.top)
                progress(Event("artifact_done", r.top.digest, label=str(r.item.source)))
            except MirrorError as e:
                r.error = e

        # An artifact's manifests go up as soon as its last blob is in and the gate has passed, beside the
        # transfers still running, not all after the last blob: the tail of a copy is shorter, and an
        # interrupted one leaves more artifacts complete. Until the gate passes, ready artifacts are held.
        left = {id(r): len(r.blobs) for r in result.ok if not r.present}
        held: list[Resolved] = []
        pushes: list[Future[None]] = []

        def gate_passed() -> bool:
            if damage_fails_all and (damaged or unfinished[0]):
                return False
            return gate_run is None or (gate_run.done() and gate_run.exception() is None)

        def flush() -> None:
            if held and gate_passed():
                pushes.extend(manifest_pool.submit(push_manifests, h) for h in held)
                held.clear()

        def ready(r: Resolved) -> None:
            held.append(r)
            flush()

        for r in result.resolved:
            if r.error is None and r.top is not None and not left.get(id(r)):
                ready(r)
        # Submitted in digest order: stores that lay blobs out by digest (the bundle) then fill their output
        # front to back, which lets them checksum it while the copy still runs. Into a registry on disk the
        # biggest first was slower (2.73 s against 2.58 s, medians of 8: the biggest end together, and so
        # do their fsyncs, which stall every upload while the disk takes them).
        running = [(pool if tasks[d].desc.size >= defaults.SMALL_BLOB else near_pool).submit(run_blob, tasks[d])
                   for d in sorted(tasks)]
        try:
            for done in as_completed(running):
                kind, digest, nbytes, mounted, err = done.result()
                unfinished[0] -= 1
                if (damage_fails_all and local and isinstance(err, (DigestMismatchError, BundleError))
                        and not isinstance(err, DependencyError)):
                    damaged[digest] = err.what
                result.blobs_mounted += mounted
                if kind == "fetched":
                    result.blobs_fetched += 1
                    result.bytes += nbytes
                elif kind == "skipped":
                    result.blobs_skipped += 1
                for r in owners.get(digest, []):
                    if err is not None and r.error is None:
                        r.error = err
                    left[id(r)] -= 1
                    if not left[id(r)]:
                        ready(r)
                flush()
        except BaseException:           # an unexpected error or Ctrl-C: start nothing more
            for f in running:
                f.cancel()
            raise

        if gate_run is not None:
            gate_run.result()           # raises the gate's error: nothing gets tagged
        fail_if_damaged()
        flush()
        for push in pushes:
            push.result()
    result.seconds = time.monotonic() - started
    return result


__all__ = ["CopyItem", "CopyResult", "Resolved", "copy", "image_platform", "plan", "resolve"]
