"""Helm charts (issue 4): classic repositories and OCI charts, carried as Helm OCI artifacts with their images.

A classic chart (index.yaml + .tgz over HTTP) becomes a Helm OCI artifact built here: the config is the
Chart.yaml metadata as JSON (as `helm push` writes it), the content layer holds the exact .tgz bytes, and an
optional provenance layer the .prov file. A `ChartStore` serves those artifacts from memory under the source
name `<repo-host>/<repo-path>/<name>:<version>` through `ExportContext.overlays`, so export and import copy
them like any image. OCI charts are ordinary artifacts in a registry and need nothing special.

Images a chart needs come from Chart.yaml `artifacthub.io/images`, values.yaml image blocks and, recursively,
the subcharts under charts/ (directories and nested .tgz). Facts: ../shared/REFERENCE.md section 6.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import re
import tarfile
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

from ._yaml import yaml
from .digest import Verifier, sha256_digest
from .errors import ContentFileError, DigestMismatchError, MirrorError, NotFoundError, UnsupportedError
from .mediatypes import OCI_MANIFEST, Descriptor, parse_manifest
from .reference import NAME_RE, Reference, parse
from .store import Manifest, MemoryStore
from .versions import Version, VersionRange

if TYPE_CHECKING:
    from .cli import ExportContext
    from .copy import CopyItem
    from .http import Http
    from .receipt import Receipt

log = logging.getLogger("mirror.charts")

HELM_CONFIG = "application/vnd.cncf.helm.config.v1+json"
HELM_CONTENT = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
HELM_PROV = "application/vnd.cncf.helm.chart.provenance.v1.prov"
IMAGES_ANNOTATION = "artifacthub.io/images"
MAX_INDEX = 64 << 20          # index.yaml of big repos (bitnami) are tens of MB
MAX_CHART = 64 << 20
MAX_MEMBER = 8 << 20          # a single Chart.yaml / values.yaml we are willing to parse
MAX_DEPTH = 5                 # subchart nesting


def oci_tag(version: str) -> str:
    """Helm writes `+` (build metadata) as `_` in OCI tags."""
    return version.replace("+", "_")


# -- urls ------------------------------------------------------------------------------------------------

def chart_url(repo_url: str, url: str) -> str:
    """An index.yaml url, relative (to the repo URL with a trailing slash) or absolute."""
    if urlsplit(url).scheme:
        return url
    return urljoin(repo_url.rstrip("/") + "/", url)


def fetch_url(url: str, http: Http) -> str:
    """Where `url` is really fetched: a host with `endpoint:` in the content file's registries is reached at
    that endpoint with the same path (https://charts.bitnami.com/x -> http://127.0.0.1:8879/x)."""
    u = urlsplit(url)
    settings = http.hosts.get(u.netloc)
    if settings is None or not settings.endpoint:
        return url
    rest = u.path + (f"?{u.query}" if u.query else "")
    return settings.endpoint.rstrip("/") + rest


def repo_source_name(repo_url: str, name: str) -> str:
    """`https://charts.example.com/stable` + redis -> `charts.example.com/stable/redis` (a repository name)."""
    u = urlsplit(repo_url)
    if u.scheme not in ("http", "https") or not u.netloc:
        raise ValueError(f"repo {repo_url!r} must be an http(s) URL")
    path = "/".join(p for p in u.path.lower().split("/") if p)
    host = u.netloc.lower().rpartition("@")[2]
    full = "/".join(p for p in (path, name.lower()) if p)
    if not NAME_RE.match(full):
        raise ValueError(f"{repo_url} + {name} does not give a valid repository path ({full!r})")
    return f"{host}/{full}"


def oci_source(oci_url: str, version: str) -> Reference:
    """`oci://host/path/name` + 1.2.3+b -> host/path/name:1.2.3_b."""
    if not oci_url.startswith("oci://"):
        raise ValueError(f"{oci_url!r} must start with oci://")
    return parse(f"{oci_url[len('oci://'):].rstrip('/')}:{oci_tag(version)}")


# -- chart archives and image discovery ------------------------------------------------------------------

def read_tgz(data: bytes) -> dict[str, bytes]:
    """Regular files of a chart archive, by path (small members only; templates are not needed)."""
    files: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tf:
        for m in tf:
            if not m.isfile() or m.size > MAX_MEMBER:
                continue
            name = m.name.lstrip("./")
            if name.endswith(("Chart.yaml", "values.yaml", ".tgz")):
                f = tf.extractfile(m)
                if f is not None:
                    files[name] = f.read()
    return files


def _chart_roots(files: dict[str, bytes]) -> list[str]:
    """Top-level chart directories: the shallowest `X/Chart.yaml`."""
    return sorted({p[: -len("/Chart.yaml")] for p in files if p.count("/") == 1 and p.endswith("/Chart.yaml")})


def chart_metadata(data: bytes) -> dict[str, Any]:
    files = read_tgz(data)
    roots = _chart_roots(files)
    if not roots:
        raise UnsupportedError("the archive has no <name>/Chart.yaml: not a Helm chart")
    doc = yaml.safe_load(files[f"{roots[0]}/Chart.yaml"]) or {}
    if not isinstance(doc, dict):
        raise UnsupportedError("Chart.yaml is not a mapping")
    return doc


def _looks_like_ref(s: str) -> bool:
    return bool(s) and "{{" not in s and " " not in s and ("/" in s or ":" in s) and "://" not in s


def _ref_or_none(text: str) -> Reference | None:
    try:
        return parse(text)
    except MirrorError:
        return None


def _block_ref(block: dict[str, Any], app_version: str | None) -> Reference | None:
    repo = block.get("repository") or block.get("repo")
    if not isinstance(repo, str) or not repo or "{{" in repo:
        return None
    registry = block.get("registry")
    text = f"{registry.strip('/')}/{repo}" if isinstance(registry, str) and registry else repo
    tag = block.get("tag")
    tag = str(tag) if tag not in (None, "") else None
    digest = block.get("digest")
    digest = digest if isinstance(digest, str) and digest else None
    if tag is None and digest is None:
        tag = app_version
    if tag and "{{" in tag:
        return None
    return _ref_or_none(text + (f":{tag}" if tag else "") + (f"@{digest}" if digest else ""))


def values_images(values: Any, app_version: str | None = None) -> list[Reference]:
    """Image references in a values tree: `image:` blocks {registry, repository, tag, digest} (any key with
    such a block), and `image: repo:tag` strings under keys named image/*Image."""
    out: list[Reference] = []

    def walk(node: Any, key: str) -> None:
        if isinstance(node, dict):
            if "repository" in node or ("repo" in node and key.lower().endswith("image")):
                if key.lower().endswith("image") or "tag" in node or "digest" in node or "registry" in node:
                    r = _block_ref(node, app_version)
                    if r is not None:
                        out.append(r)
            for k, v in node.items():
                walk(v, str(k))
        elif isinstance(node, list):
            for v in node:
                walk(v, key)
        elif isinstance(node, str) and key.lower().endswith("image") and _looks_like_ref(node.strip()):
            r = _ref_or_none(node.strip())
            if r is not None:
                out.append(r)

    walk(values, "")
    return out


def annotation_images(chart_yaml: dict[str, Any]) -> list[Reference]:
    text = (chart_yaml.get("annotations") or {}).get(IMAGES_ANNOTATION)
    if not text:
        return []
    try:
        doc = yaml.safe_load(text) if isinstance(text, str) else text
    except yaml.YAMLError:
        log.warning("chart %s: %s is not YAML; ignored", chart_yaml.get("name"), IMAGES_ANNOTATION)
        return []
    out = []
    for e in doc or []:
        img = e.get("image") if isinstance(e, dict) else e
        if isinstance(img, str):
            r = _ref_or_none(img.strip())
            if r is not None:
                out.append(r)
    return out


def discover_images(data: bytes) -> list[Reference]:
    """Images a packaged chart needs, its subcharts included (directories and nested .tgz), in order."""
    found: list[Reference] = []
    _discover(read_tgz(data), None, found, 0)
    seen: set[str] = set()
    unique = []
    for r in found:
        if str(r) not in seen:
            seen.add(str(r))
            unique.append(r)
    return unique


def _discover(files: dict[str, bytes], root: str | None, found: list[Reference], depth: int) -> None:
    if depth > MAX_DEPTH:
        return
    roots = [root] if root is not None else _chart_roots(files)
    for r in roots:
        chart: dict[str, Any] = {}
        if f"{r}/Chart.yaml" in files:
            try:
                chart = yaml.safe_load(files[f"{r}/Chart.yaml"]) or {}
            except yaml.YAMLError:
                chart = {}
        chart = chart if isinstance(chart, dict) else {}
        found += annotation_images(chart)
        if f"{r}/values.yaml" in files:
            try:
                values = yaml.safe_load(files[f"{r}/values.yaml"])
            except yaml.YAMLError as e:
                log.warning("chart %s: values.yaml is not YAML (%s); its images are not discovered", r, e)
                values = None
            app = chart.get("appVersion")
            found += values_images(values, str(app) if app not in (None, "") else None)
        prefix = f"{r}/charts/"
        subdirs = sorted({p[len(prefix):].split("/", 1)[0] for p in files
                          if p.startswith(prefix) and p[len(prefix):].count("/") == 1 and p.endswith("/Chart.yaml")})
        for d in subdirs:
            _discover(files, prefix + d, found, depth + 1)
        for p in sorted(files):
            if p.startswith(prefix) and "/" not in p[len(prefix):] and p.endswith(".tgz"):
                try:
                    _discover(read_tgz(files[p]), None, found, depth + 1)
                except (tarfile.TarError, OSError, EOFError) as e:
                    log.warning("subchart %s is not a readable .tgz (%s); skipped", p, e)


# -- Helm OCI artifacts ----------------------------------------------------------------------------------

_META_ORDER = ("name", "home", "sources", "version", "description", "keywords", "maintainers", "icon",
               "apiVersion", "condition", "tags", "appVersion", "deprecated", "annotations", "kubeVersion",
               "dependencies", "type")
_MAINTAINER_ORDER = ("name", "email", "url")
_DEP_ORDER = ("name", "version", "repository", "condition", "tags", "enabled", "import-values", "alias")


def _ordered(doc: dict[str, Any], order: tuple[str, ...]) -> dict[str, Any]:
    return {k: doc[k] for k in order if k in doc and doc[k] not in (None, "", [], {}, False)}


def helm_config(chart_yaml: dict[str, Any]) -> bytes:
    """Chart.yaml as Helm's OCI config: Go's json.Marshal of chart.Metadata (field order, omitempty,
    sorted annotation keys, compact)."""
    meta = _ordered(chart_yaml, _META_ORDER)
    if "annotations" in meta:
        meta["annotations"] = {str(k): str(v) for k, v in sorted(meta["annotations"].items())}
    if "maintainers" in meta:
        meta["maintainers"] = [_ordered(m, _MAINTAINER_ORDER) for m in meta["maintainers"] if isinstance(m, dict)]
    if "dependencies" in meta:
        meta["dependencies"] = [_ordered(d, _DEP_ORDER) for d in meta["dependencies"] if isinstance(d, dict)]
    for k in ("version", "appVersion", "name"):
        if k in meta:
            meta[k] = str(meta[k])
    return json.dumps(meta, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass
class ChartArtifact:
    manifest: Manifest
    blobs: dict[str, bytes]


def build_artifact(tgz: bytes, chart_yaml: dict[str, Any], prov: bytes | None = None,
                   created: str | None = None) -> ChartArtifact:
    config = helm_config(chart_yaml)
    blobs = {sha256_digest(config): config, sha256_digest(tgz): tgz}
    layers = [{"mediaType": HELM_CONTENT, "digest": sha256_digest(tgz), "size": len(tgz)}]
    if prov is not None:
        blobs[sha256_digest(prov)] = prov
        layers.append({"mediaType": HELM_PROV, "digest": sha256_digest(prov), "size": len(prov)})
    annotations = {"org.opencontainers.image.title": str(chart_yaml.get("name", "")),
                   "org.opencontainers.image.version": str(chart_yaml.get("version", ""))}
    if chart_yaml.get("description"):
        annotations["org.opencontainers.image.description"] = str(chart_yaml["description"])
    if created:
        annotations["org.opencontainers.image.created"] = created
    doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
           "config": {"mediaType": HELM_CONFIG, "digest": sha256_digest(config), "size": len(config)},
           "layers": layers, "annotations": dict(sorted(annotations.items()))}
    data = json.dumps(doc, separators=(",", ":")).encode()
    return ChartArtifact(Manifest(data, OCI_MANIFEST, sha256_digest(data)), blobs)


class ChartStore(MemoryStore):
    """Read-only in-memory Store serving the Helm OCI artifacts built from classic repositories."""

    def __init__(self) -> None:
        super().__init__("classic Helm repositories", read_only=True)

    def add(self, repo: str, tag: str, art: ChartArtifact) -> None:
        with self._lock:
            self.blobs.update(art.blobs)
        self.add_manifest(repo, tag, art.manifest)


def _get(http: Http, url: str, what: str, limit: int, *, missing_ok: bool = False) -> bytes | None:
    from .http import iter_response, raise_for

    real = fetch_url(url, http)
    resp = http.request("GET", real, where=url, stream=True)
    try:
        if missing_ok and resp.status_code in (403, 404):
            return None
        if resp.status_code != 200:
            resp.read()
            raise_for(resp, f"GET {what}", url, hint="check the repo URL and the registries.<host>.endpoint")
        buf = bytearray()
        # (a mock transport hands back an already-read response)
        for chunk in ([resp.content] if resp.is_stream_consumed else iter_response(resp)):
            buf += chunk
            if len(buf) > limit:
                raise UnsupportedError(f"{what} is larger than {limit >> 20} MiB", where=url)
        return bytes(buf)
    finally:
        resp.close()


class IndexCache:
    """index.yaml per repo URL, fetched once per export."""

    def __init__(self, http: Http) -> None:
        self.http = http
        self._docs: dict[str, dict[str, Any]] = {}

    def get(self, repo_url: str) -> dict[str, Any]:
        key = repo_url.rstrip("/")
        if key not in self._docs:
            url = key + "/index.yaml"
            data = _get(self.http, url, "index.yaml", MAX_INDEX)
            assert data is not None
            try:
                doc = yaml.safe_load(data)
            except yaml.YAMLError as e:
                raise MirrorError(f"index.yaml is not YAML: {e}", where=url) from e
            if not isinstance(doc, dict) or not isinstance(doc.get("entries"), dict):
                raise MirrorError("index.yaml has no entries", where=url, hint="is this a Helm repository URL?")
            self._docs[key] = doc
        return self._docs[key]


def resolve_entry(index: dict[str, Any], name: str, constraint: str, where: str = "") -> dict[str, Any]:
    """The index entry of the highest version of `name` matching `constraint`."""
    import difflib

    entries = index["entries"].get(name)
    if not entries:
        close = difflib.get_close_matches(name, list(index["entries"]), n=1)
        raise NotFoundError(f"chart {name!r} is not in index.yaml", where=where,
                            hint=f"did you mean {close[0]!r}?" if close else "check the chart name")
    by_version = {str(e.get("version")): e for e in entries if isinstance(e, dict)}
    try:
        best = constraint if constraint in by_version else VersionRange(constraint).best(by_version)
    except ValueError as e:
        raise ContentFileError(str(e), where=where, hint="write e.g. 17.11.3, ~17.11 or >=1.2 <2") from e
    if best is None:
        newest = sorted((v for v in by_version if Version.parse(v)), key=lambda v: Version.parse(v).key())  # type: ignore[union-attr]
        raise NotFoundError(f"no version of chart {name!r} matches {constraint!r}", where=where,
                            hint="available: " + ", ".join(newest[-5:]))
    return by_version[best]


@dataclass
class FetchedChart:
    name: str
    version: str
    source: Reference
    tgz: bytes
    chart_yaml: dict[str, Any]
    prov: bytes | None = None
    url: str = ""


def fetch_classic(http: Http, index_cache: IndexCache, repo_url: str, name: str, constraint: str,
                  where: str = "") -> FetchedChart:
    index = index_cache.get(repo_url)
    entry = resolve_entry(index, name, constraint, where=where)
    version = str(entry["version"])
    urls = entry.get("urls") or []
    if not urls:
        raise MirrorError(f"index.yaml lists no url for {name} {version}", where=repo_url)
    url = chart_url(repo_url, str(urls[0]))
    tgz = _get(http, url, f"chart {name} {version}", MAX_CHART)
    assert tgz is not None
    want = str(entry.get("digest") or "")
    if want:
        got = sha256_digest(tgz).partition(":")[2]
        if got != want.removeprefix("sha256:"):
            raise DigestMismatchError(f"{name}-{version}.tgz hashes to {got}, index.yaml says {want}", where=url,
                                      hint="the repository or a proxy serves a different file; fetch again later")
    prov = _get(http, url + ".prov", "provenance", MAX_MEMBER, missing_ok=True)
    chart_yaml = chart_metadata(tgz)
    if str(chart_yaml.get("name")) != name or str(chart_yaml.get("version")) != version:
        raise MirrorError(f"the archive holds {chart_yaml.get('name')} {chart_yaml.get('version')}, "
                          f"not {name} {version}", where=url)
    source = parse(f"{repo_source_name(repo_url, name)}:{oci_tag(version)}")
    return FetchedChart(name, version, source, tgz, chart_yaml, prov, url)


def fetch_oci(store: Any, source: Reference) -> tuple[bytes, dict[str, Any]]:
    """The .tgz and Chart.yaml of an OCI chart (to discover its images)."""
    m = store.get_manifest(source)
    _, doc = parse_manifest(m.data, m.media_type)
    cfg = (doc.get("config") or {}).get("mediaType")
    layer = next((x for x in doc.get("layers") or [] if x.get("mediaType") == HELM_CONTENT), None)
    if cfg != HELM_CONFIG or layer is None:
        raise UnsupportedError(f"{source} is not a Helm chart (config {cfg})", where=str(source.registry),
                               hint="charts: oci: must name a chart pushed with `helm push`")
    desc = Descriptor(HELM_CONTENT, layer["digest"], int(layer["size"]))
    if desc.size > MAX_CHART:
        raise UnsupportedError(f"chart layer is larger than {MAX_CHART >> 20} MiB", where=str(source))
    with store.open_blob(source.name, desc) as chunks:
        tgz = b"".join(Verifier(chunks, desc.digest, desc.size, where=str(source)))
    return tgz, chart_metadata(tgz)


# -- the export hook -------------------------------------------------------------------------------------

def _entry_where(ctx: ExportContext, entry: dict[str, Any]) -> str:
    return f"{ctx.content.path}:{entry.get('line', 0)}"


def validate_entry(entry: dict[str, Any], where: str) -> None:
    for k in ("version",):
        if not isinstance(entry.get(k), str | int | float) or str(entry.get(k)).strip() == "":
            raise ContentFileError(f"a charts entry needs {k}:", where=where,
                                   hint="an exact version (17.11.3) or a range (~17.11, \">=1.2 <2\")")
    if "repo" in entry:
        if not isinstance(entry.get("name"), str) or not entry["name"]:
            raise ContentFileError("a charts entry with repo: needs name:", where=where)
        if not str(entry["repo"]).startswith(("http://", "https://")):
            raise ContentFileError(f"repo {entry['repo']!r} must be an http(s) URL", where=where,
                                   hint="for OCI charts write oci: oci://host/path/name")
    if "oci" in entry:
        if not str(entry["oci"]).startswith("oci://"):
            raise ContentFileError(f"oci {entry['oci']!r} must start with oci://", where=where)
        if "name" in entry and str(entry["oci"]).rstrip("/").rsplit("/", 1)[-1] != entry["name"]:
            raise ContentFileError(f"name {entry['name']!r} differs from the last path part of {entry['oci']}",
                                   where=where, hint="drop name: for OCI charts; the URL names the chart")
    images = entry.get("images", True)
    if not isinstance(images, bool) and not (isinstance(images, list) and all(isinstance(i, str) for i in images)):
        raise ContentFileError("images must be true, false or a list of image references", where=where)


def chart_items(ctx: ExportContext) -> list[CopyItem]:
    """Export hook: a CopyItem per chart (+ the images it needs); classic charts go into ctx.overlays."""
    from .copy import CopyItem
    from .registry import RegistrySet

    if not ctx.content.charts:
        return []
    no_images = bool(getattr(ctx.args, "no_chart_images", False))
    platforms = list(getattr(ctx.args, "platform", None) or ctx.content.platforms)
    index_cache = IndexCache(ctx.http)
    store = ChartStore()
    registries = RegistrySet(ctx.http)
    items: list[CopyItem] = []
    images: dict[str, CopyItem] = {}          # one item per image; meta["from"] names every chart needing it
    for entry in ctx.content.charts:
        where = _entry_where(ctx, entry)
        validate_entry(entry, where)
        constraint = str(entry["version"]).strip()
        images_opt = entry.get("images", True)
        want_images = images_opt is not False and not no_images
        if "repo" in entry:
            repo_url = str(entry["repo"]).rstrip("/")
            try:
                fc = fetch_classic(ctx.http, index_cache, repo_url, entry["name"], constraint, where=where)
            except ValueError as e:
                raise ContentFileError(str(e), where=where) from e
            store.add(fc.source.name, fc.source.tag or "", build_artifact(
                fc.tgz, fc.chart_yaml, fc.prov, _created(index_cache.get(repo_url), fc)))
            ctx.overlays[fc.source.name] = store
            name, version, tgz, source = fc.name, fc.version, fc.tgz, fc.source
            meta = {"chart": name, "version": version, "repo": repo_url, "url": fc.url}
            log.info("chart %s %s from %s (%s)", name, version, repo_url, "with .prov" if fc.prov else "no .prov")
        else:
            if re.search(r"[\s<>=~^*|,]", constraint):
                raise ContentFileError(f"OCI charts need an exact version, not {constraint!r}", where=where,
                                       hint="write the chart version that was pushed, e.g. 1.2.3")
            try:
                source = oci_source(str(entry["oci"]), constraint)
            except (ValueError, MirrorError) as e:
                raise ContentFileError(f"{e}", where=where) from e
            name, version = source.repository.rsplit("/", 1)[-1], constraint
            tgz = b""
            if want_images:
                tgz, _ = fetch_oci(registries, source)
            meta = {"chart": name, "version": version, "oci": str(entry["oci"])}
        items.append(CopyItem(source, source, [], kind="chart", meta=meta, referrers=bool(entry.get("referrers"))))
        refs = discover_images(tgz) if want_images else []
        if isinstance(images_opt, list):
            for text in images_opt:
                try:
                    refs.append(parse(text))
                except MirrorError as e:
                    raise ContentFileError(e.what, where=where, hint=e.hint) from None
        for ref in refs:
            needed_by = f"chart {name}:{version}"
            it = images.get(str(ref))
            if it is None:
                images[str(ref)] = it = CopyItem(ref, ref, platforms, meta={"from": needed_by},
                                                 referrers=ctx.content.referrers)
                items.append(it)
            elif needed_by not in it.meta["from"].split(", "):
                it.meta["from"] += f", {needed_by}"
    return items


def _created(index: dict[str, Any], fc: FetchedChart) -> str | None:
    for e in index["entries"].get(fc.name) or []:
        if str(e.get("version")) == fc.version and e.get("created"):
            return str(e["created"])
    return None


# -- import: the oci:// location of each chart -----------------------------------------------------------

def oci_url_of(target: Reference) -> str:
    return f"oci://{target.registry}/{target.repository}"


def _set_oci_urls(args: argparse.Namespace, http: Any, target: Any, items: list[CopyItem]) -> None:
    """Import prepare hook: the receipt's oci_url for charts (the target is only known at import)."""
    for it in items:
        if it.kind == "chart":
            it.meta = {**it.meta, "oci_url": oci_url_of(it.target)}


# -- mirrors --format helm -------------------------------------------------------------------------------

def _split_target(target: str) -> tuple[str, str, str]:
    """`host:port/base/x/name:tag` -> (registry, repository, tag)."""
    slash = target.find("/")
    reg, rest = target[:slash], target[slash + 1:]
    rest = rest.split("@", 1)[0]
    repo, _, tag = rest.rpartition(":")
    return reg, repo, tag


def render_helm(receipt: Receipt, *, ca_pem: str | None = None, insecure: bool | None = None) -> dict[str, str]:
    """Palette OCI Helm registry settings and a classic index.yaml pointing at the imported charts."""
    charts = [a for a in receipt.artifacts if a.kind == "chart"]
    t = receipt.target
    scheme = "http" if t.plain_http else "https"
    skip = bool(t.insecure if insecure is None else insecure)
    entries: dict[str, list[dict[str, Any]]] = {}
    listed = []
    for a in sorted(charts, key=lambda a: a.target):
        _, repo, tag = _split_target(a.target)
        name = repo.rsplit("/", 1)[-1]
        version = tag.replace("_", "+")
        url = a.oci_url or f"oci://{t.registry}/{repo}"
        entries.setdefault(name, []).append({
            "apiVersion": "v2", "name": name, "version": version, "urls": [f"{url}:{tag}"],
            "annotations": {"airgap-mirror/source": a.source, "airgap-mirror/manifest-digest": a.digest},
        })
        listed.append({"name": name, "version": version, "oci": url,
                       "repository": repo[len(t.base.strip("/")) + 1:] if t.base else repo, "source": a.source})
    settings: dict[str, Any] = {
        "providerType": "helm", "endpoint": f"{scheme}://{t.registry}", "baseContentPath": t.base.strip("/"),
        "insecureSkipVerify": skip, "username": t.username or "", "caCert": ca_pem or "",
        "charts": listed,
    }
    header = ("# Palette: Tenant Settings > Registries > OCI Registries > Add: provider type Helm.\n"
              "# The password is not written here; enter it in Palette. `helm pull <oci> --version V` works too.\n")
    index = {"apiVersion": "v1", "entries": entries, "generated": receipt.created or ""}
    return {"helm-registry.yaml": header + yaml.safe_dump(settings, sort_keys=False),
            "index.yaml": yaml.safe_dump(index, sort_keys=True)}


# -- wiring ----------------------------------------------------------------------------------------------

def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Called by cli.build_parser(): register the export and import hooks (once), add no subcommand."""
    from .cli import EXPORT_HOOKS, IMPORT_PREPARE_HOOKS

    if chart_items not in EXPORT_HOOKS:
        EXPORT_HOOKS.append(chart_items)
    if _set_oci_urls not in IMPORT_PREPARE_HOOKS:
        IMPORT_PREPARE_HOOKS.append(_set_oci_urls)


__all__ = ["ChartStore", "add_parser", "build_artifact", "chart_items", "chart_url",
           "discover_images", "fetch_url", "oci_source", "oci_tag", "render_helm", "repo_source_name"]
