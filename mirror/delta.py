"""Delta refresh: what the other side already holds (a baseline), what a delta relies on, and inventory.

- `load_baseline(since)` reads an earlier bundle (directory or its bundle.json), an import receipt or an
  inventory and returns a Baseline: the blob digests the air-gapped side holds, the `depends_on` records a
  delta bundle stores, and the platforms it knows of image manifests (so an unchanged image costs no config
  fetch). A delta then carries the manifests of every artifact but only blobs outside the baseline.
- `check_dependencies(reader, target, items)` runs before an import pushes anything: every blob the delta
  relies on must be in the target repository that needs it (or mountable there from another repository of
  the target). Otherwise it raises DependencyError naming the artifacts and the bundle(s) that provide them.
- `airgap-mirror inventory` lists what a target really holds, so the next export is a delta against it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import __version__, defaults, shape
from .bundle import BUNDLE_JSON, BundleReader, check_bundle_doc
from .copy import CopyItem, image_platform
from .errors import DependencyError, MirrorError, NotFoundError, UsageError
from .mediatypes import INDEXES, MANIFESTS, Descriptor, children, parse_manifest
from .receipt import RECEIPT_FORMAT, Receipt
from .reference import Reference
from .registry import RegistryStore

log = logging.getLogger("mirror.delta")
INVENTORY_FORMAT = "airgap-mirror/inventory/v1"
_REFERRER_DEPTH = 3                 # as export carries them (mirror.referrers.MAX_DEPTH)
_MANIFEST_TYPES = INDEXES | MANIFESTS


# -- baselines ------------------------------------------------------------------------------------------

@dataclass
class Baseline:
    """What the air-gapped side holds, as far as an earlier bundle, a receipt or an inventory tells."""

    blobs: set[str] = field(default_factory=set)
    depends_on: list[dict[str, Any]] = field(default_factory=list)      # records a delta bundle stores
    platforms: dict[str, list[str]] = field(default_factory=dict)       # image manifest digest -> platforms


def load_baseline(since: str) -> Baseline:
    """The Baseline in a bundle (directory or bundle.json), an import receipt or an inventory."""
    path = Path(since)
    if path.is_dir():
        path = path / BUNDLE_JSON
        if not path.exists():
            raise NotFoundError("no bundle.json: not a bundle directory", where=since,
                                hint="--since takes a bundle directory, its bundle.json, a receipt or an inventory")
    try:
        doc = json.loads(path.read_text())
    except OSError as e:
        raise UsageError(f"cannot read the baseline: {e.strerror or e}", where=since,
                         hint="--since takes a bundle directory, its bundle.json, a receipt or an inventory") from e
    except ValueError as e:
        raise UsageError(f"the baseline is not valid JSON: {e}", where=since) from e
    if not isinstance(doc, dict):
        raise UsageError("the baseline is not a JSON object", where=since)
    if doc.get("format") == INVENTORY_FORMAT:
        return _from_inventory(doc, path)
    if doc.get("format") == RECEIPT_FORMAT:
        return _from_receipt(path)
    if "format_version" in doc and "blobs" in doc and "artifacts" in doc:
        return _from_bundle(doc, path)
    raise UsageError("not a bundle, receipt or inventory", where=since,
                     hint="--since takes a bundle directory, its bundle.json, an import receipt "
                          "(import --receipt) or an inventory (airgap-mirror inventory -o)")


def _from_bundle(doc: dict[str, Any], path: Path) -> Baseline:
    check_bundle_doc(doc, path, UsageError)
    carried = sorted(d for d, e in doc["blobs"].items() if e.get("media_type") not in _MANIFEST_TYPES)
    blobs = set(carried) | set(doc.get("external_blobs") or [])
    record = {"kind": "bundle", "id": doc["id"], "name": doc.get("name", ""), "created": doc.get("created", ""),
              "source": str(path.parent if path.name == BUNDLE_JSON else path), "provides": carried}
    # A delta of a delta relies on what its own base provides too: keep the chain for messages.
    depends = [record]
    seen = {doc["id"]}
    for dep in doc.get("depends_on") or []:
        key = dep.get("id") or dep.get("source")
        if key not in seen:
            seen.add(key)
            depends.append(dep)
    platforms = {a["digest"]: list(a["platforms"]) for a in doc["artifacts"]
                 if a.get("platforms") and a.get("media_type") not in INDEXES and isinstance(a.get("digest"), str)}
    return Baseline(blobs, depends, platforms)


def _from_receipt(path: Path) -> Baseline:
    r = Receipt.load(path)
    target = "/".join(p for p in (r.target.registry, r.target.base) if p)
    record = {"kind": "receipt", "source": str(path), "created": r.created, "target": target,
              "bundles": list(r.bundles)}
    return Baseline(set(r.blobs), [record])


INVENTORY_SHAPE = {
    "target?": {"registry?": str, "base?": str}, "created?": str, "blobs": [str], "platforms?": {str: (str, None)},
    "repositories?": {str: {"tags?": {str: str}, "manifests?": [str], "blobs?": {str: int}}},
}


def _from_inventory(doc: dict[str, Any], path: Path) -> Baseline:
    shape.require(doc, INVENTORY_SHAPE, what="the inventory", where=str(path),
                  hint="take it again inside the gap: airgap-mirror inventory --to HOST/BASE -o FILE")
    tgt = doc.get("target") or {}
    target = "/".join(p for p in (tgt.get("registry", ""), tgt.get("base", "")) if p)
    record = {"kind": "inventory", "source": str(path), "created": doc.get("created", ""), "target": target,
              "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    platforms = {d: [p] for d, p in (doc.get("platforms") or {}).items() if isinstance(p, str) and p}
    return Baseline(set(doc.get("blobs") or []), [record], platforms)


# -- import side: what a delta relies on ----------------------------------------------------------------

def check_dependencies(reader: BundleReader, target: RegistryStore, items: list[CopyItem],
                       *, jobs: int = defaults.JOBS) -> list[CopyItem]:
    """Make sure every external blob is in each target repository that needs it, before anything is pushed.

    A blob in another repository of the target is mounted (after every check passed, so a refused delta
    changes nothing). Raises DependencyError naming the artifacts that cannot be completed and the bundles
    that provide what is missing.
    """
    info = reader.info
    external = set(info.external_blobs) - set(info.blobs)
    if not external:
        return items
    by_ref = {a["ref"]: a for a in info.artifacts}
    need: dict[tuple[str, str], list[str]] = {}        # (repo, digest) -> artifacts needing it
    for it in items:
        art = by_ref.get(str(it.source))
        if art is None:
            continue
        for d in art.get("contents", []):
            if d in external:
                need.setdefault((it.target.repository, d), []).append(str(it.source))

    def head(key: tuple[str, str]) -> tuple[tuple[str, str], bool]:
        return key, target.has_blob(key[0], Descriptor("", key[1], 0))

    with ThreadPoolExecutor(defaults.latency_jobs(jobs)) as pool:      # HEADs only: round trips
        present = dict(pool.map(head, need))
        holders: dict[str, str] = {}                    # digest -> a repository that has it
        for (repo, d), ok in present.items():
            if ok:
                holders.setdefault(d, repo)
        absent = [k for k, ok in present.items() if not ok]
        unresolved = sorted({d for _, d in absent if d not in holders})
        if unresolved:
            holders.update(_find_elsewhere(target, unresolved, {r for r, _ in need}, pool))
    missing = [k for k in absent if k[1] not in holders]
    if missing:
        raise _dependency_error(info, missing, need)
    for repo, d in absent:
        src = holders[d]
        if not (target.mount_blob(repo, Descriptor("", d, 0), src) or target.has_blob(repo, Descriptor("", d, 0))):
            raise DependencyError(
                f"blob {d} is in {target.label}/{src} but could not be mounted into {repo}",
                where=f"bundle {reader.dir}",
                hint="the target refuses cross-repository mounts; import the bundle that carries the blob "
                     "(or export a full bundle) instead")
    return items


def _find_elsewhere(target: RegistryStore, digests: list[str], skip: set[str],
                    pool: ThreadPoolExecutor) -> dict[str, str]:
    """Look for blobs in the other repositories of the target (catalog), for a cross-repository mount."""
    try:
        repos = [r for r in target.catalog() if r not in skip]
    except MirrorError:
        return {}
    found: dict[str, str] = {}
    for d in digests:
        desc = Descriptor("", d, 0)
        for i in range(0, len(repos), 16):
            batch = repos[i:i + 16]
            answers = pool.map(target.has_blob, batch, [desc] * len(batch))
            hits = [r for r, ok in zip(batch, answers, strict=True) if ok]
            if hits:
                found[d] = hits[0]
                break
    return found


def _dependency_error(info: Any, missing: list[tuple[str, str]],
                      need: dict[tuple[str, str], list[str]]) -> DependencyError:
    digests = sorted({d for _, d in missing})
    refs = sorted({ref for k in missing for ref in need[k]})
    providers: list[str] = []
    for dep in info.depends_on:
        provides = dep.get("provides")
        if provides is not None and not set(provides).intersection(digests):
            continue
        providers.append(_describe(dep))
    shown = ", ".join(refs[:10]) + (f" and {len(refs) - 10} more" if len(refs) > 10 else "")
    what = (f"delta bundle {info.id} relies on {len(digests)} blob(s) the target does not have; "
            f"these artifacts cannot be completed: {shown}")
    if providers:
        what += f"; missing content is provided by {'; '.join(providers)}"
    return DependencyError(what, where="import",
                           hint="import the bundle(s) it depends on first, in order (`airgap-mirror import BASE "
                                "DELTA`), or export a new delta with --since an inventory of this target; "
                                "nothing was pushed")


def _describe(dep: dict[str, Any]) -> str:
    kind = dep.get("kind", "bundle")
    if kind == "bundle":
        extra = ", ".join(p for p in (dep.get("name"), dep.get("created")) if p)
        return f"bundle {dep.get('id')}" + (f" ({extra})" if extra else "")
    if kind == "receipt":
        ids = ", ".join(dep.get("bundles") or []) or "?"
        return f"bundle(s) {ids} (imported into {dep.get('target')} per receipt {dep.get('source')})"
    return f"what {dep.get('target')} held at inventory {dep.get('source')} ({dep.get('created')})"


# -- inventory ------------------------------------------------------------------------------------------

def take_inventory(store: RegistryStore, base: str, *, jobs: int = defaults.JOBS) -> dict[str, Any]:
    """Repositories under `base`, their tags and manifest digests, every blob reachable from a tag, and the
    platform of each tagged image manifest (read from its config here, so the export side need not)."""
    base = base.strip("/")
    repos = sorted(r for r in store.catalog() if not base or r == base or r.startswith(base + "/"))

    platforms: dict[str, str] = {}
    # Where the target has the referrers API, what refers to a tagged manifest (signatures, SBOMs) is held
    # without a tag of its own: walked too, so that a delta does not carry those blobs again. Where it has
    # not, referrers hang off tags (the fallback tag, cosign's), walked with every tag: the first answer
    # saying so stops the asking.
    api: list[bool] = []

    def one(repo: str) -> tuple[str, dict[str, Any]]:
        tags: dict[str, str] = {}
        manifests: set[str] = set()
        blobs: dict[str, int] = {}

        def referrers_of(digest: str, depth: int) -> None:
            """Walk what refers to `digest`, `depth` referrer levels below a tag."""
            if (api and not api[0]) or depth > _REFERRER_DEPTH:
                return
            try:
                found = store.referrers(repo, digest)
            except MirrorError as err:      # a nice-to-have: never the reason an inventory fails
                log.info("not asking %s for referrers again: %s", store.label, err)
                found = None
            if not api:
                api.append(found is not None)
            for e in found or []:
                if e["digest"] not in manifests:
                    try:
                        walk(Reference(store.host, repo, None, e["digest"]), depth)
                    except NotFoundError:
                        continue        # a stale entry of the list

        def walk(ref: Reference, depth: int = 0) -> str:
            m = store.get_manifest(ref)
            if m.digest in manifests:
                return m.digest
            manifests.add(m.digest)
            referrers_of(m.digest, depth + 1)
            if ref.tag and m.digest not in platforms:
                found = image_platform(store, repo, m)
                if found:
                    platforms[m.digest] = found[0]
            kids, bl = children(*parse_manifest(m.data, m.media_type))
            for b in bl:
                blobs[b.digest] = b.size
            for k in kids:
                if k.digest in manifests:
                    continue
                try:
                    walk(Reference(store.host, repo, None, k.digest), depth)
                except NotFoundError:
                    continue            # an index may list children the registry does not hold
            return m.digest

        for tag in sorted(store.tags(repo)):
            tags[tag] = walk(Reference(store.host, repo, tag))
        return repo, {"tags": tags, "manifests": sorted(manifests), "blobs": dict(sorted(blobs.items()))}

    with ThreadPoolExecutor(defaults.latency_jobs(jobs)) as pool:      # listings and manifests: round trips
        listing = dict(pool.map(one, repos))
    sizes: dict[str, int] = {}
    for r in listing.values():
        sizes.update(r["blobs"])
    return {
        "format": INVENTORY_FORMAT, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "tool_version": __version__, "target": {"registry": store.host, "base": base},
        "repositories": listing, "blobs": sorted(sizes), "blob_bytes": sum(sizes.values()),
        "platforms": dict(sorted(platforms.items())),
    }


def cmd_inventory(args: argparse.Namespace) -> int:
    from .cli import parse_target, target_http

    host, base = parse_target(args.to)
    http = target_http(args, host)
    try:
        store = RegistryStore(http, host, role="target")
        store.ping()
        doc = take_inventory(store, base, jobs=args.jobs)
    finally:
        http.close()
    out = Path(args.output)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=1) + "\n")
    tmp.replace(out)
    n_tags = sum(len(r["tags"]) for r in doc["repositories"].values())
    print(f"inventory of {args.to}: {len(doc['repositories'])} repositories, {n_tags} tags, "
          f"{len(doc['blobs'])} blobs ({doc['blob_bytes'] / 1e6:.1f} MB) -> {out}")
    return 0


def add_parser(sub: Any) -> None:
    from .cli import connection_flags, jobs_flag

    p = sub.add_parser("inventory", help="list what a target registry holds (for export --since)")
    p.add_argument("--to", required=True, help="HOST[:PORT][/BASE/PATH] to list")
    p.add_argument("-o", "--output", required=True, help="write the inventory (JSON) here")
    jobs_flag(p)
    connection_flags(p)
    p.set_defaults(func=cmd_inventory)


__all__ = ["INVENTORY_FORMAT", "Baseline", "add_parser", "check_dependencies", "load_baseline", "take_inventory"]
