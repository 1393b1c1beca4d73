"""The command line. Thin: parse flags, call library functions, draw progress, print summaries."""

from __future__ import annotations

import argparse
import gc
import json
import logging
import re
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from . import __version__, defaults
from .bundle import BundleInfo, BundleReader, BundleWriter, check_parts, parse_size, verify
from .content import Content, ImageSpec, TagFilter, load
from .copy import CopyItem, CopyResult, Resolved, copy, plan
from .delta import Baseline, load_baseline
from .errors import MirrorError, PartError, RedactingFilter, SourceDamageError, UsageError, has_userinfo
from .http import HostSettings, Http
from .progress import Event
from .receipt import ImportedArtifact, Receipt, Target, palette_mirror_string
from .reference import Reference, host_segment, join_path, mirrored, parse
from .registry import OverlayStore, RegistrySet, RegistryStore

log = logging.getLogger("mirror")


# -- progress drawing (only here) ------------------------------------------------------------------------

class Bars:
    """tqdm bars on a terminal; nothing otherwise."""

    def __init__(self, desc: str, enabled: bool | None = None) -> None:
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.desc = desc
        self.bar: Any = None

    def __call__(self, ev: Event) -> None:
        if not self.enabled:
            return
        from tqdm import tqdm

        if ev.kind == "plan":
            self.bar = tqdm(total=ev.total, unit="B", unit_scale=True, unit_divisor=1024, desc=self.desc,
                            file=sys.stderr, leave=False)
        elif self.bar is not None and ev.kind == "bytes":
            self.bar.update(ev.n)
        elif self.bar is not None and ev.kind == "blob_skip":
            self.bar.total = max(0, (self.bar.total or 0) - ev.n)
            self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _summary(verb: str, result: CopyResult) -> str:
    mb = result.bytes / 1e6
    rate = mb / result.seconds if result.seconds > 0 else 0.0
    return (f"{verb}: {len(result.ok)} artifacts ok, {len(result.failed)} failed; blobs fetched "
            f"{result.blobs_fetched}, skipped {result.blobs_skipped}, mounted {result.blobs_mounted}; "
            f"{mb:.1f} MB in {result.seconds:.1f}s ({rate:.1f} MB/s)")


def _report_failures(result: CopyResult, side: str, left: str) -> None:
    for r in result.failed:
        print(f"error: {r.item.source}: {r.error}", file=sys.stderr)
    if result.failed:
        raise MirrorError(f"{len(result.failed)} of {len(result.resolved)} artifacts failed", where=side,
                          hint=f"{left}; fix the cause and rerun (finished work is reused)")


# -- export ---------------------------------------------------------------------------------------------

@dataclass
class ExportContext:
    """What an export hook (charts, packs) may use and extend."""

    content: Content
    http: Http
    args: argparse.Namespace
    # Stores that serve content not in a registry (e.g. charts from classic Helm repos), keyed by the full
    # repository name (`charts.example.com/stable/redis`) their CopyItem.source uses.
    overlays: dict[str, Any] = field(default_factory=dict)
    # Further items a resolved artifact brings along (its referrers), see copy()'s `discover`.
    discover: list[Callable[[Resolved], list[CopyItem]]] = field(default_factory=list)


# Capabilities that add items to an export register here: (ctx) -> items. Modules listed in
# EXTENSIONS are imported by build_parser() and append to these lists themselves.
ExportHook = Callable[[ExportContext], list[CopyItem]]
EXPORT_HOOKS: list[ExportHook] = []
EXTENSIONS = ("cli_mirrors", "charts", "packs", "delta", "referrers")


def export_items(ctx: ExportContext) -> list[CopyItem]:
    items: list[CopyItem] = []
    for img in ctx.content.images:
        plats = list(ctx.args.platform) if ctx.args.platform else img.platforms
        if img.layout:
            _add_layout(ctx, img)
        refs = [img.ref] if img.tags is None else [img.ref.with_tag(t) for t in _selected_tags(ctx, img)]
        items.extend(CopyItem(r, r, plats, referrers=img.referrers) for r in refs)
    for hook in EXPORT_HOOKS:
        items.extend(hook(ctx))
    seen: set[tuple[str, tuple[str, ...]]] = set()
    unique = []
    for it in items:
        key = (str(it.source), tuple(it.platforms))
        if key not in seen:
            seen.add(key)
            unique.append(it)
    return unique


def _add_layout(ctx: ExportContext, img: ImageSpec) -> None:
    """Route img's repository to the OCI layout it is read from (export reads no registry for it)."""
    from .layout import LayoutSource

    assert img.layout is not None
    where = f"{ctx.content.path}:{img.line}"
    have = ctx.overlays.get(img.ref.name)
    if have is not None:
        if not isinstance(have, LayoutSource) or have.root != Path(img.layout) or have.ref_name != img.layout_ref:
            raise UsageError(f"{img.ref.name} is read from two places", where=where,
                             hint="give one layout per repository")
        return
    try:
        ctx.overlays[img.ref.name] = LayoutSource(img.layout, img.layout_ref)
    except MirrorError as e:
        raise UsageError(f"layout {img.layout}: {e.what}", where=where,
                         hint=e.hint or "point layout: at an OCI layout directory with oci-layout and index.json "
                         "(written by e.g. buildah push IMAGE oci:DIR:TAG or skopeo copy ... oci:DIR:TAG), or an "
                         "uncompressed tar of one (docker buildx --output type=oci,dest=FILE)") from None


def _selected_tags(ctx: ExportContext, img: ImageSpec) -> list[str]:
    """The tags of img's repository that its `tags:` chooses, newest first (listed from the source now)."""
    assert img.tags is not None
    store = RegistrySet(ctx.http).store(img.ref.registry)
    have = store.tags(img.ref.repository)
    chosen = img.tags.select(have)
    if not chosen:
        newest = TagFilter(regex=re.compile(".*"), latest=5).select(have)
        raise MirrorError(f"no tag of {img.ref.name} matches {img.tags.describe()} (it has {len(have)} tags"
                          + (f"; the newest: {', '.join(newest)})" if newest else ")"),
                          where=f"{ctx.content.path}:{img.line}", hint="adjust tags: in the content file")
    log.info("%s: %s chooses %s", img.ref.name, img.tags.describe(), ", ".join(chosen))
    return chosen


def artifact_record(r: Any) -> dict[str, Any]:
    assert r.top is not None
    return {
        "ref": str(r.item.source), "kind": r.item.kind, "digest": r.top.digest,
        "source_digest": r.source_digest, "media_type": r.top.media_type, "manifest_size": len(r.top.data),
        "artifact_type": r.artifact_type, "platforms": r.platforms, "size": r.size,
        "contents": r.contents, **({"meta": r.item.meta} if r.item.meta else {}),
    }


def _exporting(args: argparse.Namespace, verb: str) -> tuple[ExportContext, list[CopyItem]]:
    """The content file read, its source client, and every item it names (export and sync)."""
    content = load(args.file)
    ctx = ExportContext(content, Http(content.host_settings()), args)
    items = export_items(ctx)
    if not items:
        raise UsageError(f"the content file lists nothing to {verb}", where=args.file)
    return ctx, items


def _source(ctx: ExportContext) -> Any:
    """The source registries, with the repositories read from elsewhere (layouts, chart repos) routed there."""
    source = RegistrySet(ctx.http)
    return OverlayStore(source, ctx.overlays) if ctx.overlays else source


def cmd_export(args: argparse.Namespace) -> int:
    ctx, items = _exporting(args, "export")
    http = ctx.http
    split = parse_size(args.split_size) if args.split_size else None
    baseline = _baseline(args)                  # bad input is refused before anything is created
    sign: Callable[[list[Path]], object] | None = None
    if args.sign_key:
        from . import signing

        signing.check_key(args.sign_key)
        key = args.sign_key
        sign = lambda files: signing.sign(files, key)  # noqa: E731
    if args.dry_run:
        return _export_plan(ctx, items, baseline, split)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    writer = BundleWriter(out, name=args.name or Path(args.file).stem, split_size=split,
                          baseline=baseline.blobs)
    bars = Bars("export")
    try:
        result = copy(_source(ctx), writer, items, jobs=args.jobs, progress=bars, known_platforms=baseline.platforms,
                      discover=_discover_all(ctx.discover))
    except BaseException:
        writer.close()
        raise
    finally:
        bars.close()
        http.close()
    try:
        _report_failures(result, "export", "no bundle was written")
        external = sorted({d for r in result.ok for d in r.contents} & baseline.blobs)
        info = writer.finalize([artifact_record(r) for r in result.ok], depends_on=baseline.depends_on,
                               external_blobs=external, sign=sign)
    finally:
        writer.close()
    print(_summary("export", result))
    size = sum(p.size for p in info.parts)
    print(f"bundle {info.id}: {len(info.artifacts)} artifacts, {len(info.blobs)} blobs, "
          f"{info.unique_bytes() / 1e6:.1f} MB unique, {size / 1e6:.1f} MB in {len(info.parts)} part(s) -> {out}"
          + (f", signed with {args.sign_key}" if sign is not None else ""))
    return 0


def _export_plan(ctx: ExportContext, items: list[CopyItem], baseline: Baseline, split: int | None) -> int:
    """export --dry-run: resolve everything (manifests only, no blob), print what would cross and how big."""
    try:
        result = plan(_source(ctx), items, jobs=ctx.args.jobs, known_platforms=baseline.platforms,
                      discover=_discover_all(ctx.discover))
    finally:
        ctx.http.close()
    _report_failures(result, "export --dry-run", "nothing was written")
    _print_artifacts([artifact_record(r) for r in result.ok])
    sizes = {b.digest: b.size for r in result.ok for b in r.blobs}
    manifests = {m.digest: len(m.data) for r in result.ok for m in r.manifests}
    have = {d: n for d, n in sizes.items() if d in baseline.blobs}
    carry = sum(sizes.values()) - sum(have.values()) + sum(manifests.values())
    print(f"plan: {len(result.ok)} artifacts, {len(manifests)} manifests, {len(sizes)} unique blobs, "
          f"{sum(sizes.values()) / 1e6:.1f} MB")
    if ctx.args.since:
        print(f"  already on the other side (--since): {len(have)} blobs, {sum(have.values()) / 1e6:.1f} MB")
    # each blob and manifest also costs its tar header, padding and frame header; manifests compress
    bound = carry + (len(sizes) - len(have) + len(manifests)) * defaults.BUNDLE_ENTRY_OVERHEAD
    parts = f", {-(-bound // split)} part(s) of at most {split} bytes" if split else ""
    print(f"  to carry: {len(sizes) - len(have)} blobs and every manifest, {carry / 1e6:.1f} MB: a bundle of "
          f"at most {bound / 1e6:.1f} MB{parts}")
    print("nothing was written (--dry-run)")
    return 0


def _discover_all(hooks: list[Callable[[Resolved], list[CopyItem]]]) -> Callable[[Resolved], list[CopyItem]] | None:
    if not hooks:
        return None
    return lambda r: [it for hook in hooks for it in hook(r)]


def _baseline(args: argparse.Namespace) -> Baseline:
    since = getattr(args, "since", None)
    if not since:
        return Baseline()
    return load_baseline(since)


# -- verify / inspect ------------------------------------------------------------------------------------

def _check_signed(args: argparse.Namespace, directory: Path, info: BundleInfo | None = None) -> str | None:
    """--allowed-signers: the bundle's signatures, checked before anything else of it is trusted; the
    signer, or None without the flag."""
    if not getattr(args, "allowed_signers", None):
        return None
    from .signing import check_bundle

    who = check_bundle(directory, info or BundleInfo.load(directory), args.allowed_signers)
    print(f"signed by {who} (bundle.json and SHA256SUMS, checked against {args.allowed_signers})")
    return who


def cmd_verify(args: argparse.Namespace) -> int:
    _check_signed(args, Path(args.bundle))
    t0 = time.monotonic()
    report = verify(args.bundle, jobs=args.jobs)
    dt = time.monotonic() - t0
    if report.ok:
        print(f"ok: {report.checked_blobs} blobs, {report.checked_bytes / 1e6:.1f} MB verified in {dt:.1f}s")
        return 0
    for name, problem in sorted(report.bad_parts.items()):
        print(f"bad part: {name}: {problem}", file=sys.stderr)
    for digest, problem in sorted(report.bad_blobs.items()):
        if problem != "in a bad part":
            print(f"bad blob: {digest}: {problem}", file=sys.stderr)
    for ref in report.affected:
        print(f"affected: {ref}", file=sys.stderr)
    names = ", ".join(sorted(report.bad_parts)) or f"{len(report.bad_blobs)} blob(s)"
    raise PartError(f"bundle is damaged: {names}", where=args.bundle,
                    hint="copy the named part(s) again from the export side, then rerun verify")


def _print_artifacts(artifacts: list[dict[str, Any]]) -> None:
    """The artifact table of `inspect` and `export --dry-run`: columns as wide as their values."""
    arts = sorted(artifacts, key=lambda a: a["ref"])
    # what a referrer refers to, by name (an image's name first, where a digest has several)
    by_digest = {a["digest"]: a["ref"] for a in sorted(arts, key=lambda a: a.get("kind") != "referrer")}
    plats = [",".join(a.get("platforms") or []) or "-" for a in arts]
    kinds = [a.get("kind", "image") for a in arts]
    w_ref = max([len("SOURCE"), *(len(a["ref"]) for a in arts)])
    w_kind = max([len("KIND"), *map(len, kinds)])
    w_plat = max([len("PLATFORMS"), *map(len, plats)])
    print(f"{'SOURCE':{w_ref}}  {'KIND':{w_kind}}  {'SIZE':>10}  {'PLATFORMS':{w_plat}}  DIGEST")
    for a, kind, plat in zip(arts, kinds, plats, strict=True):
        print(f"{a['ref']:{w_ref}}  {kind:{w_kind}}  {a['size'] / 1e6:9.1f}M  {plat:{w_plat}}  {a['digest'][:19]}")
        meta = a.get("meta") or {}
        if meta.get("from"):
            print(f"{'':4}<- needed by {meta['from']}")
        if meta.get("subject"):
            subject = by_digest.get(meta["subject"], meta["subject"])
            print(f"{'':4}-> refers to {subject}" + (f" (found by {meta['found']})" if meta.get("found") else ""))
        print(f"{'':4}{a['media_type']}" + (f"  ({a['artifact_type']})" if a.get("artifact_type") else ""))


def cmd_inspect(args: argparse.Namespace) -> int:
    info = BundleInfo.load(Path(args.bundle))
    if args.json:
        doc = info.to_json()
        doc["unique_bytes"] = info.unique_bytes()
        print(json.dumps(doc, indent=1))
        return 0
    print(f"bundle {info.id} (format {info.format_version}, tool {info.tool_version}, created {info.created})")
    if info.depends_on:
        print("depends on: " + ", ".join(d.get("id", d.get("source", "?")) for d in info.depends_on))
    sigs = sorted(p.name for p in Path(args.bundle).glob("*.sig"))
    if sigs:
        print(f"signatures: {', '.join(sigs)} (check them with verify --allowed-signers FILE)")
    _print_artifacts(info.artifacts)
    total = sum(p.size for p in info.parts)
    print(f"unique blob bytes: {info.unique_bytes()} ({len(info.blobs)} blobs); bundle bytes: {total}")
    for p in info.parts:
        print(f"part {p.name}  {p.size}  sha256:{p.sha256}")
    return 0


# -- import ---------------------------------------------------------------------------------------------

def parse_target(text: str) -> tuple[str, str]:
    """`HOST[:PORT][/BASE/PATH]` -> (host, base)."""
    if has_userinfo(text):
        # not echoed: the text holds a password, which must reach neither errors nor receipts
        raise UsageError("--to carries credentials (user:password@)",
                         hint="drop them and give --username with --password-stdin")
    if "://" in text:
        raise UsageError(f"--to {text!r} must not have a scheme", hint="use --plain-http for http targets")
    host, _, base = text.strip("/").partition("/")
    if not host:
        raise UsageError("--to needs a host", hint="e.g. --to harbor.corp/airgap-images")
    base = base.strip("/")
    if base:
        from .reference import NAME_RE

        if not NAME_RE.match(base):
            raise UsageError(f"base path {base!r} is not a valid repository path",
                             hint="lowercase letters, digits, . _ - separated by /")
    return host, base


def target_http(args: argparse.Namespace, host: str) -> Http:
    password = None
    if getattr(args, "password_stdin", False):
        password = sys.stdin.readline().rstrip("\n")
    if args.username and password is None:
        raise UsageError("--username needs --password-stdin", hint="echo \"$PASS\" | airgap-mirror ... "
                         "--username U --password-stdin")
    settings = HostSettings(plain_http=args.plain_http, insecure=args.insecure, ca_file=args.ca_file,
                            username=args.username, password=password)
    return Http({host: settings})


def target_of(src: Reference, kind: str, meta: dict[str, Any], host: str, base: str, pack_base: str | None,
              digest: str | None = None) -> Reference:
    """Where an artifact lands in the target: HOST/BASE/<source-host>/<repo>, or a pack where Palette reads it."""
    target_path = meta.get("target_path")
    if kind == "pack" and (pack_base is not None or target_path):
        # Packs go where Palette reads them: HOST/<pack base, default the --to base>/<target_path>.
        pb = base if pack_base is None else pack_base
        dst = src.in_repo(host, join_path(pb, target_path or src.repository))
    else:
        dst = mirrored(src, host, base)
    if src.digest and not src.tag:
        dst = dst.with_digest(digest or src.digest)
    return dst


def import_items(reader: BundleReader, host: str, base: str, pack_base: str | None = None) -> list[CopyItem]:
    items = []
    for a in reader.info.artifacts:
        src = parse(a["ref"])
        meta = a.get("meta") or {}
        items.append(CopyItem(src, target_of(src, a.get("kind", "image"), meta, host, base, pack_base, a["digest"]),
                              kind=a.get("kind", "image"), meta=meta))
    return items


# Hooks run before an import pushes anything: (args, http, target store, items) -> None
IMPORT_PREPARE_HOOKS: list[Callable[[argparse.Namespace, Http, RegistryStore, list[CopyItem]], None]] = []
# Hooks run after a bundle's copy, before its failures are reported: (target store, result) -> None
IMPORT_DONE_HOOKS: list[Callable[[RegistryStore, CopyResult], None]] = []


def cmd_import(args: argparse.Namespace) -> int:
    host, base = parse_target(args.to)
    http = target_http(args, host)
    target = RegistryStore(http, host, role="target")
    receipt = new_receipt(args, host, base)
    try:
        # every bundle.json is read before the target is asked anything: a bundle that cannot be read is
        # this side's error, named as such, and nothing of `import A B C` has started
        readers = [BundleReader(Path(d)) for d in args.bundles]
        target.ping()
        for bundle_dir, reader in zip(args.bundles, readers, strict=True):
            _import_one(args, Path(bundle_dir), reader, host, base, http, target, receipt)
    finally:
        http.close()
    if args.dry_run:
        print("nothing was written (--dry-run)")
        return 0
    return _finish(args, receipt)


def _finish(args: argparse.Namespace, receipt: Receipt) -> int:
    """The receipt, the mirror configuration files, and the Palette mirror string, after an import or sync."""
    if args.receipt:
        receipt.save(args.receipt)
        print(f"receipt: {args.receipt}")
    if getattr(args, "mirrors_out", None):
        from .mirrorconfig import write_all

        write_all(receipt, Path(args.mirrors_out), None)
        print(f"mirror configuration: {args.mirrors_out}")
    print("mirror registries (Palette image-swap):")
    print(palette_mirror_string(receipt))
    return 0


def new_receipt(args: argparse.Namespace, host: str, base: str) -> Receipt:
    return Receipt(Target(host, base, args.plain_http, args.insecure, args.ca_file, args.username,
                          getattr(args, "pack_base", None)),
                   created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), tool_version=__version__)


# -- sync -----------------------------------------------------------------------------------------------

def cmd_sync(args: argparse.Namespace) -> int:
    """export and import in one step, registry to registry, for a site that reaches both: no bundle."""
    ctx, items = _exporting(args, "sync")
    http = ctx.http
    host, base = parse_target(args.to)
    dst_http = target_http(args, host)
    target = RegistryStore(dst_http, host, role="target")

    def placed(it: CopyItem) -> CopyItem:
        return replace(it, target=target_of(it.source, it.kind, it.meta, host, base, args.pack_base))

    items = [placed(it) for it in items]
    found = _discover_all(ctx.discover)
    discover = None if found is None else (lambda r: [placed(it) for it in found(r)])
    source = _source(ctx)
    receipt = new_receipt(args, host, base)
    bars = Bars("sync")
    try:
        target.ping()
        if args.dry_run:
            result = copy(source, target, items, jobs=args.jobs, discover=discover, dry_run=True)
            _print_plan_rows(f"sync into {args.to}", result)
            _report_failures(result, f"sync into {host}", "nothing was written")
            print("nothing was written (--dry-run)")
            return 0
        for hook in IMPORT_PREPARE_HOOKS:
            hook(args, dst_http, target, items)
        result = copy(source, target, items, jobs=args.jobs, progress=bars, discover=discover)
        for done in IMPORT_DONE_HOOKS:
            done(target, result)
    finally:
        bars.close()
        http.close()
        dst_http.close()
    print(_summary(f"sync into {args.to}", result))
    _record(receipt, result)
    if args.receipt:
        receipt.save(args.receipt)      # what landed, even when something failed
    _report_failures(result, f"sync into {host}", "nothing incomplete was tagged")
    return _finish(args, receipt)


def _import_one(args: argparse.Namespace, bundle_dir: Path, reader: BundleReader, host: str, base: str,
                http: Http, target: RegistryStore, receipt: Receipt) -> None:
    signer = _check_signed(args, bundle_dir, reader.info)
    if signer:
        receipt.signers[reader.info.id] = signer

    def refuse(bad: dict[str, str]) -> None:
        if bad:
            for name, problem in sorted(bad.items()):
                print(f"bad part: {name}: {problem}", file=sys.stderr)
            raise PartError(f"bundle has bad parts: {', '.join(sorted(bad))}", where=str(bundle_dir),
                            hint="copy them again and run `airgap-mirror verify`; nothing was imported")

    refuse(check_parts(bundle_dir, reader.info, checksums=False))     # missing or truncated: refuse at once

    def checksum_parts() -> None:
        # --verify: every part is checksummed before anything is tagged, beside the blob pushes (copy's
        # gate). Without it every byte the import reads is still checked on the way (each blob by its
        # digest, which the target verifies, the bytes around it by the reader) and a damaged one tags
        # nothing (damage_fails_all); hashing every part as well cost ~40% of an import into a registry on
        # tmpfs (3.8 against 2.7 s for 1.1 GB), to find damage only where the import reads nothing.
        refuse(check_parts(bundle_dir, reader.info, args.jobs))

    items = import_items(reader, host, base, getattr(args, "pack_base", None))
    earlier = set(receipt.bundles)          # with --dry-run, the bundles before this one only would be in
    if reader.info.external_blobs and not (args.dry_run and reader.info.depends_on
                                           and {d.get("id") for d in reader.info.depends_on} <= earlier):
        from .delta import check_dependencies

        items = check_dependencies(reader, target, items)
    if args.dry_run:
        _import_plan(args, bundle_dir, reader, target, items)
        receipt.bundles.append(reader.info.id)
        return
    for hook in IMPORT_PREPARE_HOOKS:
        hook(args, http, target, items)
    bars = Bars(f"import {bundle_dir.name}")
    try:
        # The platforms each artifact had at export are in bundle.json: resolving does not read every
        # image's config for them (a repeated import, which pushes nothing, read 30 configs for nothing:
        # its copy took 56.5 ms that way, 51.0 ms this way, medians of 10)
        known = {a["digest"]: list(a.get("platforms") or []) for a in reader.info.artifacts}
        result = copy(reader, target, items, jobs=args.jobs, progress=bars, known_platforms=known,
                      gate=checksum_parts if args.verify else None, damage_fails_all=True)
    except SourceDamageError as e:
        refuse({name: problem for name, problem in _parts_of(reader.info, e.damaged)})
        raise
    finally:
        bars.close()
    for done in IMPORT_DONE_HOOKS:
        done(target, result)
    print(_summary(f"import {bundle_dir}", result))
    _record(receipt, result)
    receipt.bundles.append(reader.info.id)
    if args.receipt:
        receipt.save(args.receipt)      # keep what landed even if a later bundle fails
    _report_failures(result, f"import into {host}", "nothing incomplete was tagged")


def _parts_of(info: BundleInfo, damaged: dict[str, str]) -> Iterator[tuple[str, str]]:
    """(part, problem) for each part holding a byte of a damaged blob."""
    for digest, problem in sorted(damaged.items()):
        for name in info.parts_holding(digest):
            yield name, f"blob {digest}: {problem}"


def _record(receipt: Receipt, result: CopyResult) -> None:
    """What landed, into the receipt."""
    for r in result.ok:
        assert r.top is not None
        src = r.item.source
        if r.item.kind != "pack":       # packs live under the pack base, not in the image mirror map
            receipt.hosts.setdefault(src.registry, host_segment(src.registry))
        receipt.artifacts.append(ImportedArtifact(r.item.kind, str(src), str(r.item.target), r.top.digest,
                                                  r.top.media_type, r.item.meta.get("oci_url")))
    receipt.blobs = sorted(set(receipt.blobs) | {d for r in result.ok for d in r.contents})


def _import_plan(args: argparse.Namespace, bundle_dir: Path, reader: BundleReader, target: RegistryStore,
                 items: list[CopyItem]) -> None:
    """import --dry-run: what the target lacks of this bundle, from HEADs only; nothing is written."""
    result = copy(reader, target, items, jobs=args.jobs, dry_run=True)
    for r in result.failed:
        print(f"error: {r.item.source}: {r.error}", file=sys.stderr)
    _print_plan_rows(f"{bundle_dir}", result)
    if result.failed:
        raise MirrorError(f"{len(result.failed)} of {len(result.resolved)} artifacts cannot be read from the "
                          "bundle", where=str(bundle_dir), hint="run `airgap-mirror verify` on it")


def _print_plan_rows(label: str, result: CopyResult) -> None:
    """A dry run's table: each artifact new / to tag / in place, and the blobs the target lacks."""
    rows = [(str(r.item.source), str(r.item.target),
             "in place" if r.tagged else "tag only" if r.present else "new") for r in result.ok]
    w_src = max([len("SOURCE"), *(len(a) for a, _, _ in rows)])
    w_dst = max([len("TARGET"), *(len(b) for _, b, _ in rows)])
    print(f"{'SOURCE':{w_src}}  {'TARGET':{w_dst}}  STATE")
    for src, dst, state in sorted(rows):
        print(f"{src:{w_src}}  {dst:{w_dst}}  {state}")
    states = [state for _, _, state in rows]
    print(f"plan for {label}: {len(rows)} artifacts ({states.count('new')} new, {states.count('tag only')} "
          f"to tag, {states.count('in place')} in place); blobs to push {result.blobs_fetched} "
          f"({result.bytes / 1e6:.1f} MB, fewer where a mount serves), already there {result.blobs_skipped}")


# -- wiring ---------------------------------------------------------------------------------------------

def _jobs(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of parallel transfers (1 or more)")
    return n


def jobs_flag(p: argparse.ArgumentParser) -> None:
    """-j/--jobs, the same on every command that transfers."""
    p.add_argument("-j", "--jobs", type=_jobs, default=defaults.JOBS, metavar="N",
                   help=f"parallel transfers of big blobs (default: {defaults.JOBS}, two per core, 4 to 8); "
                        f"manifests, HEADs and small blobs go {defaults.LATENCY_JOBS_PER_JOB}x as wide")


def connection_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--plain-http", action="store_true", help="talk HTTP, not HTTPS, to the target")
    p.add_argument("--insecure", action="store_true", help="skip TLS verification")
    p.add_argument("--ca-file", help="PEM CA bundle for the target's TLS certificate")
    p.add_argument("--username", help="target user (password from --password-stdin)")
    p.add_argument("--password-stdin", action="store_true", help="read the target password from stdin")


def signers_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--allowed-signers", metavar="FILE",
                   help="refuse a bundle not signed by a key in FILE (OpenSSH allowed_signers format)")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="airgap-mirror",
        description="Carry container images, Helm charts and Palette packs across an air gap.")
    ap.add_argument("--version", action="version", version=f"airgap-mirror {__version__}")
    ap.add_argument("-v", "--verbose", action="count", default=0,
                    help="log retries and resumes (-v), and every request (-vv)")
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("export", help="export content into an offline bundle")
    p.add_argument("-f", "--file", required=True, help="content file (YAML)")
    p.add_argument("-o", "--output", default="bundles", help="bundle directory (default: bundles)")
    jobs_flag(p)
    p.add_argument("--platform", action="append", default=[], help="OS/ARCH to keep (repeatable)")
    p.add_argument("--split-size", help="cap each part, e.g. 700M, or 4G for FAT32 sticks (parts of "
                   "4 GiB - 1 byte, its largest file)")
    p.add_argument("--name", help="part file name prefix (default: content file name)")
    p.add_argument("--since", help="previous bundle dir, bundle.json, receipt or inventory: carry only new blobs")
    p.add_argument("--no-chart-images", action="store_true", help="do not add the images charts need")
    p.add_argument("--sign-key", help="sign bundle.json and SHA256SUMS with this SSH key (ssh-keygen -Y sign)")
    p.add_argument("--dry-run", action="store_true",
                   help="resolve everything and print what would cross and how big; fetch no blob, write nothing")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("verify", help="check every part and every blob of a bundle")
    p.add_argument("bundle", help="bundle directory")
    jobs_flag(p)
    signers_flag(p)
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("inspect", help="list what a bundle holds")
    p.add_argument("bundle", help="bundle directory")
    p.add_argument("--json", action="store_true", help="print bundle.json plus unique_bytes, for scripts")
    p.set_defaults(func=cmd_inspect)

    p = sub.add_parser("import", help="push bundles into a registry under a base path")
    p.add_argument("bundles", nargs="+", help="bundle directories (a base, then its deltas, in order)")
    p.add_argument("--to", required=True, help="HOST[:PORT][/BASE/PATH]")
    jobs_flag(p)
    connection_flags(p)
    p.add_argument("--receipt", help="write the import receipt (JSON) here")
    p.add_argument("--mirrors-out", help="write every mirror configuration format into this directory")
    p.add_argument("--pack-base", help="base path for Palette packs (default: the --to base path)")
    p.add_argument("--verify", action="store_true",
                   help="checksum every part before tagging anything (without it, every byte the import "
                        "reads is checked by its digest and frame; `verify` checks every part)")
    signers_flag(p)
    p.add_argument("--dry-run", action="store_true",
                   help="print what the target lacks and would receive (HEADs only); write nothing")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("sync", help="export and import in one step, registry to registry (no bundle)")
    p.add_argument("-f", "--file", required=True, help="content file (YAML)")
    p.add_argument("--to", required=True, help="HOST[:PORT][/BASE/PATH]")
    jobs_flag(p)
    connection_flags(p)
    p.add_argument("--platform", action="append", default=[], help="OS/ARCH to keep (repeatable)")
    p.add_argument("--no-chart-images", action="store_true", help="do not add the images charts need")
    p.add_argument("--receipt", help="write the receipt (JSON) here, as import does")
    p.add_argument("--mirrors-out", help="write every mirror configuration format into this directory")
    p.add_argument("--pack-base", help="base path for Palette packs (default: the --to base path)")
    p.add_argument("--dry-run", action="store_true",
                   help="print what the target lacks and would receive (HEADs only); write nothing")
    p.set_defaults(func=cmd_sync)

    import importlib
    import importlib.util

    for mod in EXTENSIONS:
        if importlib.util.find_spec(f"mirror.{mod}") is None:
            continue
        m = importlib.import_module(f"mirror.{mod}")
        if hasattr(m, "add_parser"):
            m.add_parser(sub)
    return ap


def main(argv: list[str] | None = None) -> int:
    ap = build_parser()
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING - 10 * min(args.verbose, 2), format="%(levelname)s %(message)s",
                        stream=sys.stderr)
    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactingFilter())
    try:
        return int(args.func(args) or 0)
    except MirrorError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    except BrokenPipeError:                 # output piped into `head` & co.: not an error of ours
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("interrupted: rerun the same command to resume", file=sys.stderr)
        return 130
    except OSError as e:
        import errno

        if e.errno == errno.ENOSPC:
            print(f"error: {e.filename or 'output'}: disk full — hint: free space or choose another -o; "
                  "rerunning resumes", file=sys.stderr)
            return 1
        if e.filename:                      # a local path we cannot use: say which, not a traceback
            hint = {errno.EACCES: "no permission there: fix it or choose another path",
                    errno.EPERM: "no permission there: fix it or choose another path",
                    errno.EROFS: "that file system is read-only: choose another path",
                    errno.ENOENT: "a directory on the way does not exist (or cannot be created there)",
                    errno.ENOTDIR: "a part of the path is a file, not a directory",
                    errno.EISDIR: "that path is a directory"}.get(e.errno or 0, "check the path")
            print(f"error: {e.filename}: {e.strerror or e} — hint: {hint}", file=sys.stderr)
            return 1
        raise


def run() -> None:
    """The console script: main(), then exit without the interpreter's last garbage collections.

    What is left is freed by the exit itself. Frozen, the hundred thousand objects the imports made are
    not traversed once more on the way out: a repeated import of the 1.1 GB bench bundle (nothing to push)
    took 187 ms instead of 214 (medians of 12 alternating runs). Only here, never in main(), which tests
    call many times in one process.
    """
    code = main()
    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":
    # `python -m mirror.cli` runs this file as __main__, a second copy of the module; extensions register
    # their hooks in `mirror.cli`, so run that one.
    from mirror.cli import run as _run

    _run()
