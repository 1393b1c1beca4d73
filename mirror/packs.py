"""Palette packs: export them with the images and charts they declare, build and push custom packs.

A pack is the OCI artifact at `<endpoint>/<base>/spectro-packs/archive/<name>:<version>` (REFERENCE §2):
ORAS 1.0 defaults (config `{}` as `application/vnd.unknown.config.v1+json`, one layer
`application/vnd.oci.image.layer.v1.tar` that is the `<name>-<version>.tar.gz` file, titled with that
name), or the newer ORAS form (artifactType `application/vnd.unknown.artifact.v1`, empty config). Both are
carried byte for byte; we only read them to find pack.json and values.yaml.

Export: each `packs:` entry of the content file becomes one CopyItem of kind "pack" whose meta names its
place under the pack base on import (`spectro-packs/archive/<name>`), plus one item per image listed under
`pack.content.images` in values.yaml and per chart under `pack.content.charts` (meta `from: pack N:V`, shown
by `inspect`). OCI charts are copied directly; charts from classic Helm repositories are handed to the
charts extension (mirror/charts.py) as content entries.

`pack build DIR -o FILE` writes the ORAS 1.0 form as an *oci-archive*: a tar of an OCI image layout whose
index.json names the manifest by the pack version (`org.opencontainers.image.ref.name`), readable with
`skopeo copy oci-archive:FILE:<version> ...`; when FILE is a directory (existing, or ending in `/`) the layout
is written unpacked there. The pack tar.gz is deterministic (sorted, mtime 0, root/root), so building the
same folder twice gives the same digest. `pack push DIR --to HOST/BASE` pushes the same artifact through
the one copy function to `HOST/BASE/spectro-packs/archive/<name>:<version>`.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import logging
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._yaml import yaml
from .copy import CopyItem, copy
from .digest import Verifier, sha256_digest
from .errors import MirrorError, NotFoundError, UsageError
from .mediatypes import ANNOTATION_REF_NAME, ANNOTATION_TITLE, OCI_INDEX, OCI_MANIFEST, Descriptor, parse_manifest
from .reference import NAME_RE, TAG_RE, Reference, join_path, parse
from .store import Manifest, MemoryStore

log = logging.getLogger("mirror.packs")

PACK_PATH = "spectro-packs/archive"
ORAS_CONFIG = "application/vnd.unknown.config.v1+json"
ORAS_LAYER = "application/vnd.oci.image.layer.v1.tar"
ORAS_ARTIFACT = "application/vnd.unknown.artifact.v1"
EMPTY_CONFIG = b"{}"
EMPTY_CONFIG_DIGEST = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
LAYERS = ("kernel", "os", "k8s", "cni", "csi", "addon")
REQUIRED = ("name", "displayName", "version", "layer")
MAX_PACK_BYTES = 1 << 30          # a pack layer is read into memory to find pack.json; refuse absurd sizes
LOCAL_HOST = "pack.local"         # source host of packs built here (never contacted)


# -- reading a pack artifact ------------------------------------------------------------------------------

@dataclass
class PackFiles:
    pack: dict[str, Any]             # pack.json
    values: str                      # values.yaml text ('' when absent)
    path: str                        # where pack.json was found inside the archive


def pack_layer(manifest: Manifest) -> Descriptor:
    """The layer holding the pack archive, for both ORAS 1.0 and newer ORAS manifests."""
    mt, doc = parse_manifest(manifest.data, manifest.media_type)
    layers = doc.get("layers") or []
    if mt != OCI_MANIFEST or not layers:
        raise MirrorError(f"not a pack artifact: {mt} with {len(layers)} layer(s)",
                          hint="a pack is an OCI manifest with one layer holding <name>-<version>.tar.gz")
    def title(layer: dict[str, Any]) -> str:
        return str((layer.get("annotations") or {}).get(ANNOTATION_TITLE, ""))
    pick = next((la for la in layers if title(la).endswith((".tar.gz", ".tgz", ".tar"))), layers[0])
    return Descriptor(pick["mediaType"], pick["digest"], int(pick["size"]), annotations=pick.get("annotations") or {})


def _find_pack(tar: tarfile.TarFile) -> PackFiles | None:
    members = [m for m in tar.getmembers() if m.isfile()]
    found = sorted((m for m in members if os.path.basename(m.name) == "pack.json"),
                   key=lambda m: m.name.count("/"))
    if not found:
        return None
    pj = found[0]
    folder = os.path.dirname(pj.name)
    f = tar.extractfile(pj)
    assert f is not None
    try:
        pack = json.loads(f.read())
    except ValueError as e:
        raise MirrorError(f"pack.json is not valid JSON: {e}", where=pj.name) from None
    values = ""
    vname = f"{folder}/values.yaml" if folder else "values.yaml"
    vm = next((m for m in members if m.name.lstrip("./") == vname.lstrip("./")), None)
    if vm is not None:
        vf = tar.extractfile(vm)
        values = vf.read().decode("utf-8", "replace") if vf else ""
    return PackFiles(pack if isinstance(pack, dict) else {}, values, pj.name)


def read_pack_files(blob: bytes, *, depth: int = 0) -> PackFiles:
    """pack.json and values.yaml from a pack layer: the `.tar.gz` itself, a plain tar of the pack folder, or a
    plain tar holding `<name>-<version>.tar.gz`."""
    try:
        with tarfile.open(fileobj=io.BytesIO(blob), mode="r:*") as tar:
            files = _find_pack(tar)
            if files is not None:
                return files
            if depth == 0:
                for m in tar.getmembers():
                    if m.isfile() and m.name.endswith((".tar.gz", ".tgz", ".tar")):
                        inner = tar.extractfile(m)
                        if inner is not None:
                            return read_pack_files(inner.read(), depth=1)
    except (tarfile.TarError, EOFError, OSError, gzip.BadGzipFile) as e:
        raise MirrorError(f"pack layer is not a readable archive: {e}",
                          hint="a pack layer is <name>-<version>.tar.gz made from the pack folder") from None
    raise MirrorError("no pack.json in the pack archive", hint="the pack folder needs pack.json at its top")


def _values_doc(text: str, where: str) -> dict[str, Any]:
    if not text.strip():
        return {}
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        log.warning("%s: values.yaml is not valid YAML (%s); no images or charts read from it", where, e)
        return {}
    return doc if isinstance(doc, dict) else {}


def _content(doc: dict[str, Any]) -> dict[str, Any]:
    pack = doc.get("pack") if isinstance(doc.get("pack"), dict) else {}
    content = (pack or {}).get("content")
    return content if isinstance(content, dict) else {}


def declared_images(values: str, where: str = "values.yaml") -> list[str]:
    """`pack.content.images[].image` (plain strings accepted too), in order, without duplicates."""
    out: list[str] = []
    for e in _content(_values_doc(values, where)).get("images") or []:
        img = e.get("image") if isinstance(e, dict) else e
        if isinstance(img, str) and img.strip() and img.strip() not in out:
            out.append(img.strip())
    return out


def declared_charts(values: str, where: str = "values.yaml") -> list[dict[str, Any]]:
    """`pack.content.charts[]` entries with repo, name, version."""
    out = []
    for e in _content(_values_doc(values, where)).get("charts") or []:
        if isinstance(e, dict) and e.get("name") and e.get("repo"):
            out.append({"repo": str(e["repo"]), "name": str(e["name"]), "version": str(e.get("version") or "")})
    return out


def fetch_pack(source: Any, ref: Reference) -> tuple[Manifest, PackFiles]:
    """Get a pack's manifest and read pack.json/values.yaml from its layer (verified while read)."""
    manifest = source.get_manifest(ref)
    desc = pack_layer(manifest)
    if desc.size > MAX_PACK_BYTES:
        raise MirrorError(f"pack layer is {desc.size} bytes; refusing to read more than {MAX_PACK_BYTES}",
                          where=str(ref))
    repo = source.repo_of(ref) if hasattr(source, "repo_of") else ref.repository
    with source.open_blob(repo, desc) as chunks:
        blob = b"".join(Verifier(chunks, desc.digest, desc.size, where=str(ref)))
    try:
        return manifest, read_pack_files(blob)
    except MirrorError as e:
        raise MirrorError(e.what, where=str(ref), hint=e.hint) from None


# -- export hook -----------------------------------------------------------------------------------------

def _ecr_settings(ctx: Any, host_template: str) -> Any:
    """The content file's ecr: settings for this (possibly templated) host, or None when not ECR."""
    from . import ecr

    spec = ctx.content.registries.get(host_template)
    if spec is not None and spec.ecr is not None:
        return ecr.EcrConfig.from_spec(spec.ecr)
    if ecr.is_ecr_host(host_template):
        return ecr.EcrConfig()
    return None


def attach_ecr(ctx: Any, host: str, config: Any, region: str) -> None:
    """Plug ECR credentials into the HTTP client for a concrete host (unless the user gave credentials)."""
    from . import ecr

    s = ctx.http.settings(host)
    spec = ctx.content.registries.get(host)
    if spec is not None and spec.ecr is not None:
        config = ecr.EcrConfig.from_spec({**_asdict(config), **{k: v for k, v in spec.ecr.items() if v}})
    if s.username is None and s.provider is None:
        s.provider = ecr.EcrCredentials(config, region, registry_id=ecr.host_account(host))


def _asdict(config: Any) -> dict[str, Any]:
    return {k: getattr(config, k) for k in config.__dataclass_fields__}


def _source_store(ctx: Any) -> Any:
    from .registry import RegistrySet

    store = getattr(ctx, "_pack_source", None)
    if store is None:
        store = RegistrySet(ctx.http)
        ctx._pack_source = store
    return store


def locate(ctx: Any, host_template: str, repository: str, tag: str) -> tuple[Reference, str | None]:
    """The concrete reference serving `host_template/repository:tag` and the ECR region that served it.

    Region-templated ECR hosts are tried in the chosen region, then the default region."""
    from . import ecr

    config = _ecr_settings(ctx, host_template)
    if config is None:
        if ecr.has_template(host_template):
            raise UsageError(f"{host_template} has a region template but no ecr: settings",
                             hint=f"add registries.\"{host_template}\".ecr with region and default_region")
        return parse(f"{host_template}/{repository}:{tag}"), None
    regions = config.regions(host_template)
    missing = []
    for region in regions:
        host = ecr.expand(host_template, region)
        attach_ecr(ctx, host, config, region)
        ref = parse(f"{host}/{repository}:{tag}")
        if len(regions) == 1:
            return ref, region
        try:
            _source_store(ctx).get_manifest(ref)
        except NotFoundError:
            missing.append(region)
            log.warning("%s/%s:%s is not in region %s; trying %s", host_template, repository, tag, region,
                        regions[-1] if region != regions[-1] else "no other region")
            continue
        return ref, region
    raise NotFoundError(f"{repository}:{tag} is in none of the regions {', '.join(missing)}",
                        where=host_template, hint="check the pack name and version, and ecr.region/default_region")


def _split_registry(text: str, line: int, path: str) -> tuple[str, str]:
    host, _, base = str(text).strip().strip("/").partition("/")
    if not host:
        raise UsageError("a packs entry needs registry: ENDPOINT[/BASE]", where=f"{path}:{line}")
    return host, base.strip("/")


def _pack_ref(host: str, base: str, name: str, version: str) -> tuple[str, str, str]:
    return host, join_path(base, PACK_PATH, name), version


def pack_items(ctx: Any) -> list[CopyItem]:
    """EXPORT_HOOKS entry: each pack, then the images and charts it declares."""
    from . import ecr

    items: list[CopyItem] = []
    path = ctx.content.path
    platforms_flag = list(getattr(ctx.args, "platform", None) or [])
    for entry in ctx.content.packs:
        line = entry.get("line", 0)
        where = f"{path}:{line}"
        name, version = str(entry.get("name", "")), str(entry.get("version") or "")
        if not version:
            raise UsageError(f"pack {name} has no version", where=where, hint="add version: (the pack's tag)")
        if not entry.get("registry"):
            raise UsageError(f"pack {name} has no registry", where=where,
                             hint="add registry: ENDPOINT/BASE, e.g. 415789037893.dkr.ecr.us-east-1.amazonaws.com/"
                             "production")
        host_t, base = _split_registry(entry["registry"], line, path)
        _, repo, tag = _pack_ref(host_t, base, name, version)
        ref, region = locate(ctx, host_t, repo, tag)
        label = f"pack {name}:{version}"
        if region:
            log.warning("%s served by ECR region %s (%s)", label, region, ref.registry)
        _, files = fetch_pack(_source_store(ctx), ref)
        pj = files.pack
        if pj.get("name") not in (None, name) or str(pj.get("version", version)) != version:
            log.warning("%s: pack.json says %s:%s", label, pj.get("name"), pj.get("version"))
        meta: dict[str, Any] = {"target_path": f"{PACK_PATH}/{name}", "pack": name, "version": version}
        if pj.get("layer"):
            meta["layer"] = pj["layer"]
        if region:
            meta["region"] = region
        items.append(CopyItem(ref, ref, [], kind="pack", meta=meta))
        if entry.get("images", True) is False:
            continue
        plats = platforms_flag or list(ctx.content.platforms)
        for img in declared_images(files.values, f"{label} values.yaml"):
            text = ecr.expand(img, region) if region and ecr.has_template(img) else img
            try:
                iref = parse(text)
            except MirrorError as e:
                log.warning("%s: skipping image %r: %s", label, img, e.what)
                continue
            items.append(CopyItem(iref, iref, list(plats), meta={"from": label}, referrers=ctx.content.referrers))
        items.extend(_chart_items(ctx, files.values, label, line))
    return items


def _chart_items(ctx: Any, values: str, label: str, line: int) -> list[CopyItem]:
    import importlib.util

    out = []
    for ch in declared_charts(values, f"{label} values.yaml"):
        repo = ch["repo"]
        if repo.startswith("oci://"):
            try:
                ref = parse(f"{repo[len('oci://'):].rstrip('/')}/{ch['name']}:{ch['version'] or 'latest'}")
            except MirrorError as e:
                log.warning("%s: skipping chart %s: %s", label, ch["name"], e.what)
                continue
            out.append(CopyItem(ref, ref, kind="chart", meta={"from": label}, referrers=ctx.content.referrers))
        elif importlib.util.find_spec("mirror.charts") is not None:
            # Classic Helm repositories are the charts extension's job: hand it a content entry.
            entry = {"repo": repo, "name": ch["name"], "line": line, "from": label}
            if ch["version"]:
                entry["version"] = ch["version"]
            if entry not in ctx.content.charts:
                ctx.content.charts.append(entry)
        else:
            log.warning("%s declares chart %s from %s, but this build has no Helm chart support", label,
                        ch["name"], repo)
    return out


# -- an in-memory Store (pack build/push) ------------------------------------------------------------------

# -- building a pack ---------------------------------------------------------------------------------------

def validate_pack_dir(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """pack.json with its required fields and layer enum, values.yaml present, listed charts present."""
    d = Path(folder)
    pj_path = d / "pack.json"
    if not d.is_dir():
        raise UsageError("not a directory", where=str(d), hint="pass the pack folder (with pack.json, values.yaml)")
    try:
        pack = json.loads(pj_path.read_text())
    except OSError:
        raise UsageError("pack.json is missing", where=str(d), hint="a pack folder holds pack.json and values.yaml") \
            from None
    except ValueError as e:
        raise UsageError(f"pack.json is not valid JSON: {e}", where=str(pj_path)) from None
    if not isinstance(pack, dict):
        raise UsageError("pack.json must be a JSON object", where=str(pj_path))
    missing = [k for k in REQUIRED if not pack.get(k)]
    if missing:
        raise UsageError(f"pack.json lacks {', '.join(missing)}", where=str(pj_path),
                         hint="required: " + ", ".join(REQUIRED))
    if pack["layer"] not in LAYERS:
        raise UsageError(f"pack.json layer {pack['layer']!r} is not one of {', '.join(LAYERS)}", where=str(pj_path))
    name, version = str(pack["name"]), str(pack["version"])
    if not NAME_RE.match(name) or "/" in name:
        raise UsageError(f"pack name {name!r} cannot be a repository name", where=str(pj_path),
                         hint="lowercase letters, digits and . _ - (it becomes spectro-packs/archive/<name>)")
    if not TAG_RE.match(version):
        raise UsageError(f"pack version {version!r} cannot be a tag", where=str(pj_path),
                         hint="use letters, digits, . _ - (at most 128 characters)")
    if not (d / "values.yaml").is_file():
        raise UsageError("values.yaml is missing", where=str(d), hint="it is mandatory (it may be empty)")
    for key in ("charts", "kubeManifests"):
        for rel in pack.get(key) or []:
            if not (d / str(rel)).is_file():
                raise UsageError(f"pack.json {key} lists {rel}, which is not in the folder", where=str(pj_path))
    try:
        yaml.safe_load((d / "values.yaml").read_text())
    except yaml.YAMLError as e:
        raise UsageError(f"values.yaml is not valid YAML: {e}", where=str(d / "values.yaml")) from None
    return pack


def pack_archive(folder: str | os.PathLike[str], name: str) -> bytes:
    """`<name>-<version>.tar.gz` of the folder, under a top directory `<name>/`, byte-reproducible."""
    d = Path(folder)
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        paths = sorted(p for p in d.rglob("*") if not p.name.startswith(".") and
                       not any(part.startswith(".") for part in p.relative_to(d).parts))
        for p in [d, *paths]:
            rel = p.relative_to(d).as_posix()
            arc = name if rel == "." else f"{name}/{rel}"
            if p.is_symlink():
                continue
            info = tarfile.TarInfo(arc + ("/" if p.is_dir() else ""))
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            if p.is_dir():
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                data = p.read_bytes()
                info.size, info.mode = len(data), 0o644
                tar.addfile(info, io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0, compresslevel=9, filename="") as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


@dataclass
class BuiltPack:
    name: str
    version: str
    store: MemoryStore
    manifest: Manifest
    pack: dict[str, Any]

    @property
    def source(self) -> Reference:
        return Reference(LOCAL_HOST, f"{PACK_PATH}/{self.name}", self.version)


def build_pack(folder: str | os.PathLike[str]) -> BuiltPack:
    """The ORAS 1.0 artifact for a pack folder, in memory."""
    pack = validate_pack_dir(folder)
    name, version = str(pack["name"]), str(pack["version"])
    store = MemoryStore(f"pack {Path(folder)}")
    archive = pack_archive(folder, name)
    layer = store.put_bytes(archive, ORAS_LAYER)
    cfg = store.put_bytes(EMPTY_CONFIG, ORAS_CONFIG)
    assert cfg.digest == EMPTY_CONFIG_DIGEST
    doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
           "config": cfg.to_json(),
           "layers": [{**layer.to_json(), "annotations": {ANNOTATION_TITLE: f"{name}-{version}.tar.gz"}}]}
    data = json.dumps(doc, separators=(",", ":")).encode()
    manifest = Manifest(data, OCI_MANIFEST, sha256_digest(data))
    built = BuiltPack(name, version, store, manifest, pack)
    store.put_manifest(built.source, manifest)
    return built


def write_layout(built: BuiltPack, out: str | os.PathLike[str]) -> Path:
    """Write the artifact as an OCI layout: a tar (oci-archive) or, for a directory, unpacked."""
    out_s = str(out)
    files: dict[str, bytes] = {"oci-layout": json.dumps({"imageLayoutVersion": "1.0.0"}).encode()}
    for digest, data in sorted(built.store.blobs.items()):
        files[f"blobs/sha256/{digest.split(':', 1)[1]}"] = data
    entry = {**built.manifest.descriptor.to_json(),
             "annotations": {ANNOTATION_REF_NAME: built.version, "io.spectrocloud.pack.name": built.name}}
    files["index.json"] = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [entry]},
                                     indent=1).encode()
    path = Path(out_s)
    if out_s.endswith("/") or path.is_dir():
        for rel, data in files.items():
            p = path / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            tmp = p.with_name(p.name + ".tmp")
            tmp.write_bytes(data)
            tmp.replace(p)
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
        for rel in ["oci-layout", "index.json", *sorted(k for k in files if k.startswith("blobs/"))]:
            info = tarfile.TarInfo(rel)
            info.size, info.mode, info.mtime = len(files[rel]), 0o644, 0
            tar.addfile(info, io.BytesIO(files[rel]))
    tmp.replace(path)
    return path


# -- CLI ------------------------------------------------------------------------------------------------

def cmd_build(args: argparse.Namespace) -> int:
    built = build_pack(args.dir)
    out = write_layout(built, args.output)
    print(f"pack {built.name}:{built.version} ({built.pack['layer']}) -> {out}  {built.manifest.digest}")
    return 0


def cmd_push(args: argparse.Namespace) -> int:
    from . import cli
    from .registry import RegistryStore

    built = build_pack(args.dir)
    host, base = cli.parse_target(args.to)
    dst = Reference(host, join_path(base, PACK_PATH, built.name), built.version)
    item = CopyItem(built.source, dst, kind="pack",
                    meta={"target_path": f"{PACK_PATH}/{built.name}", "pack": built.name, "version": built.version})
    http = cli.target_http(args, host)
    try:
        target = RegistryStore(http, host, role="target")
        target.ping()
        for hook in cli.IMPORT_PREPARE_HOOKS:
            hook(args, http, target, [item])
        result = copy(built.store, target, [item], jobs=args.jobs)
    finally:
        http.close()
    cli._report_failures(result, f"push to {host}", "nothing incomplete was tagged")
    print(f"pushed {dst}@{built.manifest.digest}")
    return 0


def render_palette_packs(receipt: Any, t: Any) -> dict[str, str]:
    """`config.ociPackRegistry` values (or `ociPackEcrRegistry` for an ECR target) for the pack registry.

    `t` is mirrorconfig's resolved target (registry, insecure, ca_pem, username, password, has_auth)."""
    from . import ecr

    base = receipt.target.pack_base if receipt.target.pack_base is not None else receipt.target.base
    reg: dict[str, Any] = {
        "endpoint": t.registry,
        "name": "airgap-mirror-packs",
        "password": (t.password or "") if t.has_auth else "",
        "username": (t.username or "") if t.has_auth else "",
        "baseContentPath": (base or "").strip("/"),
        "insecureSkipVerify": t.insecure,
        "caCert": t.ca_pem or "",
    }
    key = "ociPackRegistry"
    note = "Palette pack registry values (config.ociPackRegistry), generated by airgap-mirror."
    if ecr.is_ecr_host(t.registry):
        key = "ociPackEcrRegistry"
        reg = {k: v for k, v in reg.items() if k not in ("username", "password")}
        reg.update({"accessKey": "", "secretKey": "", "isPrivate": True})
        note = "Palette ECR pack registry values; fill accessKey/secretKey (never written by airgap-mirror)."
    packs = sorted(a.target for a in receipt.artifacts if a.kind == "pack")
    text = yaml.safe_dump({"config": {key: reg}}, sort_keys=False, default_flow_style=False)
    header = f"# {note}\n" + "".join(f"# pack: {p}\n" for p in packs)
    return {"palette-packs-values.yaml": header + text}


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:  # type: ignore[type-arg]
    from . import cli, harbor

    if pack_items not in cli.EXPORT_HOOKS:
        # First, so charts declared by packs reach the charts hook as content entries.
        cli.EXPORT_HOOKS.insert(0, pack_items)
    if harbor.import_prepare_hook not in cli.IMPORT_PREPARE_HOOKS:
        cli.IMPORT_PREPARE_HOOKS.append(harbor.import_prepare_hook)

    p = subparsers.add_parser("pack", help="build or push a custom Palette pack")
    sub = p.add_subparsers(dest="pack_command", required=True)
    b = sub.add_parser("build", help="validate a pack folder and write its OCI artifact (oci-archive tar)")
    b.add_argument("dir", help="pack folder (pack.json, values.yaml, ...)")
    b.add_argument("-o", "--output", required=True,
                   help="output: a tar (oci-archive, ref = version), or a directory for an unpacked OCI layout")
    b.set_defaults(func=cmd_build)
    u = sub.add_parser("push", help="push a pack folder to HOST/BASE/spectro-packs/archive/<name>:<version>")
    u.add_argument("dir", help="pack folder")
    u.add_argument("--to", required=True, help="HOST[:PORT][/BASE/PATH]")
    cli.jobs_flag(u)
    cli.connection_flags(u)
    u.set_defaults(func=cmd_push)
    return p


__all__ = ["PACK_PATH", "BuiltPack", "MemoryStore", "PackFiles", "add_parser", "build_pack", "declared_charts",
           "declared_images", "fetch_pack", "pack_archive", "pack_items", "read_pack_files", "render_palette_packs",
           "validate_pack_dir", "write_layout"]
