"""Referrers: the signatures, SBOMs and attestations that point at an artifact, carried along with it.

Registries hold them in three ways, and export reads all three for every image and OCI chart that asks for
them (`referrers: true` in the content file, for everything or per entry; `export --referrers` for everything):
- the OCI 1.1 referrers API, `GET /v2/<repo>/referrers/<digest>`: an index of every manifest whose
  `subject` is that digest (zot, Harbor 2.8+, ...);
- where a registry lacks the API (distribution 2.8 and 3.0 among others), the fallback tag `sha256-<hex>`,
  which clients such as oras, cosign and notation keep up to date themselves: the same index, under a tag;
- cosign's own tags `sha256-<hex>.sig`, `.att` and `.sbom`: manifests with no `subject` at all.

Each referrer becomes an artifact of the bundle (kind "referrer"), by digest or under its cosign tag, and its
own referrers follow (the signature of an SBOM), MAX_DEPTH levels deep. On import, a target without the
referrers API gets the fallback tag written for it, merged with the entries it already holds, so that oras,
cosign, notation or a policy controller inside the gap find them where they would online.

A signature names a digest. A platform-filtered index is a new document that no signature names, so for
one the referrers of the platform images it keeps are carried (those still verify) and a warning says the
index's own could not be.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from . import defaults
from .content import Content
from .copy import CopyItem, CopyResult, Resolved, repo_of
from .digest import sha256_digest
from .errors import MirrorError, NotFoundError, RegistryError
from .http import Http
from .mediatypes import OCI_INDEX, is_index, parse_manifest
from .reference import Reference
from .registry import RegistrySet, RegistryStore
from .store import Manifest

log = logging.getLogger("mirror.referrers")

COSIGN_SUFFIXES = (".sig", ".att", ".sbom")
MAX_DEPTH = 3                   # subject -> signature -> its signature -> ...: levels carried below an image
KIND = "referrer"


def fallback_tag(digest: str) -> str:
    """The tag that lists a digest's referrers where the registry has no referrers API (OCI 1.1)."""
    algorithm, _, encoded = digest.partition(":")
    return f"{algorithm}-{encoded}"[:128]


def _index_entries(manifest: Manifest) -> list[dict[str, Any]] | None:
    mt, doc = parse_manifest(manifest.data, manifest.media_type)
    if not is_index(mt):
        return None
    return [e for e in doc.get("manifests") or [] if isinstance(e, dict) and e.get("digest")]


def list_referrers(store: RegistrySet, subject: Reference, digest: str) -> tuple[list[dict[str, Any]], str]:
    """The descriptors of `digest`'s referrers in `subject`'s repository, and where they were listed."""
    found = store.referrers(subject.name, digest)
    if found is not None:
        return found, "referrers API"
    tag = fallback_tag(digest)
    # HEAD first: most images have no such tag, and Docker Hub counts a manifest GET as a pull, not a HEAD
    if store.tag_digest(subject.name, tag) is None:
        return [], ""
    try:
        listing = store.get_manifest(Reference(subject.registry, subject.repository, tag=tag))
    except NotFoundError:
        return [], ""
    entries = _index_entries(listing)
    if entries is None:     # a tag of that name that is not a referrers index: not one to read
        log.warning("%s:%s is not an index; its referrers are not listed there", subject.name, fallback_tag(digest))
        return [], ""
    return entries, "referrers tag"


def discoverer(content: Content, http: Http, every: bool,
               elsewhere: Collection[str] = ()) -> Callable[[Resolved], list[CopyItem]] | None:
    """copy()'s `discover` for an export: the referrers of each image and OCI chart that asks for them, and
    theirs; not of repositories read from `elsewhere` than a registry (OCI layouts, classic chart repositories)."""
    if not every and not content.asks_referrers():
        return None
    store = RegistrySet(http)

    def discover(r: Resolved) -> list[CopyItem]:
        it = r.item
        if it.kind == KIND:
            depth = int(it.meta.get("depth", 1))
            if depth >= MAX_DEPTH:
                return []
        elif it.kind in ("image", "chart") and (every or it.referrers) and it.source.name not in elsewhere:
            depth = 0
        else:
            return []
        assert r.top is not None
        if r.top.digest == r.source_digest:
            subjects = [r.top.digest]
        else:
            subjects = [m.digest for m in r.manifests[:-1] if not is_index(m.media_type)]
            log.warning("%s: the platform-filtered index has a new digest that no signature names; only the "
                        "referrers of the %d manifest(s) it keeps are carried", it.source, len(subjects))
        # The lookups of every subject (the referrers list; cosign's three tags, for an image) are round trips
        # with nothing between them: all in flight at once, not five round trips one after the other.
        cosign = [(d, fallback_tag(d) + suffix) for d in subjects for suffix in COSIGN_SUFFIXES] if depth == 0 else []
        with ThreadPoolExecutor(len(subjects) + len(cosign)) as pool:
            listed = [pool.submit(list_referrers, store, it.source, d) for d in subjects]
            tagged = [pool.submit(store.tag_digest, it.source.name, tag) for _, tag in cosign]
            out: list[CopyItem] = []
            for digest, found in zip(subjects, listed, strict=True):
                entries, how = found.result()
                for e in entries:
                    ref = Reference(it.source.registry, it.source.repository, digest=str(e["digest"]))
                    extra = {"artifact_type": e["artifactType"]} if e.get("artifactType") else {}
                    # a stale entry (its manifest deleted, the list not updated) is left out, not an error
                    out.append(CopyItem(ref, ref, kind=KIND, optional=True,
                                        meta={"subject": digest, "depth": depth + 1, "found": how, **extra}))
            for (digest, tag), named in zip(cosign, tagged, strict=True):
                if named.result() is not None:
                    ref = Reference(it.source.registry, it.source.repository, tag=tag)
                    out.append(CopyItem(ref, ref, kind=KIND,
                                        meta={"subject": digest, "depth": depth + 1, "found": "cosign tag"}))
        return out

    return discover


def referrer_descriptor(manifest: Manifest) -> dict[str, Any]:
    """A manifest's entry in a referrers index: its descriptor, artifact type and annotations (OCI 1.1)."""
    mt, doc = parse_manifest(manifest.data, manifest.media_type)
    entry: dict[str, Any] = {"mediaType": mt, "digest": manifest.digest, "size": len(manifest.data)}
    kind = doc.get("artifactType") or (None if is_index(mt) else (doc.get("config") or {}).get("mediaType"))
    if kind:
        entry["artifactType"] = kind
    if doc.get("annotations"):
        entry["annotations"] = doc["annotations"]
    return entry


def subject_of(manifest: Manifest) -> str | None:
    _, doc = parse_manifest(manifest.data, manifest.media_type)
    digest = (doc.get("subject") or {}).get("digest")
    return digest if isinstance(digest, str) and digest else None


def sync_fallback_tags(target: RegistryStore, result: CopyResult) -> None:
    """After an import: where the target has no referrers API, list the referrers just pushed under each
    subject's fallback tag, merged with the entries already there (written once per subject, not per
    referrer, so that concurrent writers of one subject's list are not this import's own threads)."""
    groups: dict[tuple[str, str], list[Resolved]] = {}
    for r in result.ok:
        if r.item.kind != KIND or r.item.target.tag or r.top is None:
            continue                # cosign's tags name their subject by themselves
        subject = subject_of(r.top)
        if subject:
            groups.setdefault((repo_of(target, r.item.target), subject), []).append(r)

    def sync(key: tuple[str, str]) -> None:
        repo, subject = key
        rs = groups[key]
        try:
            if target.referrers(repo, subject) is not None:
                return              # the registry lists referrers itself, from their `subject`
            ref = Reference(target.host, repo, tag=fallback_tag(subject))
            try:
                current = target.get_manifest(ref)
                doc = json.loads(current.data)
                entries = _index_entries(current)
            except NotFoundError:
                doc, entries = {"schemaVersion": 2, "mediaType": OCI_INDEX}, []
            if entries is None:
                raise RegistryError(f"tag {ref.tag} exists and is not a referrers index, so the referrers of "
                                    f"{subject} cannot be listed there", where=f"{target.label}/{repo}",
                                    hint="remove or rename that tag, then import again")
            have = {e["digest"] for e in entries}
            add = [referrer_descriptor(r.top) for r in rs if r.top is not None and r.top.digest not in have]
            if not add:
                return
            doc["manifests"] = entries + add
            data = json.dumps(doc, separators=(",", ":")).encode()
            target.put_manifest(ref, Manifest(data, OCI_INDEX, sha256_digest(data)))
        except MirrorError as e:
            for r in rs:
                r.error = e

    if groups:
        with ThreadPoolExecutor(defaults.latency_jobs(1)) as pool:
            list(pool.map(sync, sorted(groups)))


# -- wiring ----------------------------------------------------------------------------------------------

def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Called by cli.build_parser(): add `export --referrers` and register the export and import hooks."""
    from . import cli

    for command in ("export", "sync"):
        subparsers.choices[command].add_argument(
            "--referrers", action="store_true",
            help="carry the referrers (signatures, SBOMs, attestations) of every image and OCI chart, as a "
                 "top-level `referrers: true` does")
    if _export_hook not in cli.EXPORT_HOOKS:
        cli.EXPORT_HOOKS.append(_export_hook)
    if sync_fallback_tags not in cli.IMPORT_DONE_HOOKS:
        cli.IMPORT_DONE_HOOKS.append(sync_fallback_tags)


def _export_hook(ctx: Any) -> list[CopyItem]:
    """EXPORT_HOOKS entry that adds no item of its own: referrers are found once the images are resolved."""
    found = discoverer(ctx.content, ctx.http, bool(getattr(ctx.args, "referrers", False)), set(ctx.overlays))
    if found is not None:
        ctx.discover.append(found)
    return []


__all__ = ["COSIGN_SUFFIXES", "MAX_DEPTH", "discoverer", "fallback_tag", "list_referrers", "referrer_descriptor",
           "subject_of", "sync_fallback_tags"]
