"""The content file: what to carry. Versioned; unknown keys and versions are rejected with file:line and a hint.

We walk PyYAML's node tree (not the plain loaded dict) so every error can name the line it is about.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._yaml import yaml
from .errors import ContentFileError, MirrorError, has_userinfo
from .http import HostSettings
from .reference import Reference, parse
from .versions import Version, VersionRange

API_VERSION = "airgap-mirror/v1"
KIND = "Content"

TOP_KEYS = {"apiVersion", "kind", "platforms", "referrers", "registries", "images", "charts", "packs"}
REGISTRY_KEYS = {"endpoint", "insecure", "ca_file", "plain_http", "auth", "ecr"}
# "password" is accepted by the key check only so it gets its own refusal below (never a "did you mean").
AUTH_KEYS = {"username", "password", "password_env", "password_file", "username_env"}
ECR_KEYS = {"region", "default_region", "role_arn", "external_id", "access_key_env", "secret_key_env", "profile"}
IMAGE_KEYS = {"ref", "platforms", "referrers", "tags", "layout", "layout_ref"}
TAGS_KEYS = {"semver", "regex", "latest"}
CHART_KEYS = {"repo", "oci", "name", "version", "images", "referrers"}
PACK_KEYS = {"registry", "name", "version", "images"}


@dataclass
class TagFilter:
    """`tags:` of an images entry: the repository's tags to carry, chosen when the export runs."""

    semver: VersionRange | None = None      # a Helm-style constraint, e.g. "~1.30" or ">=1.29 <1.31"
    regex: re.Pattern[str] | None = None    # must match the whole tag
    latest: int | None = None               # only the newest N of the tags that match

    def describe(self) -> str:
        parts = ([f"semver {self.semver.text!r}"] if self.semver else []) + \
            ([f"regex {self.regex.pattern!r}"] if self.regex else []) + \
            ([f"latest {self.latest}"] if self.latest else [])
        return ", ".join(parts)

    def select(self, tags: Iterable[str]) -> list[str]:
        """The matching tags, newest first: semver versions by precedence, above any other tag (by name)."""
        picked = [t for t in tags if (self.regex is None or self.regex.fullmatch(t))
                  and (self.semver is None or self.semver.matches(t))]

        def newest(t: str) -> tuple[Any, ...]:
            v = Version.parse(t)
            return (1, v.key(), t) if v else (0, (), t)

        picked.sort(key=newest, reverse=True)
        return picked[:self.latest] if self.latest else picked


@dataclass
class ImageSpec:
    ref: Reference
    platforms: list[str]
    line: int
    referrers: bool = False         # carry what refers to it too (signatures, SBOMs, attestations)
    tags: TagFilter | None = None   # carry these tags of the repository (ref then names no tag)
    layout: str | None = None       # read it from this OCI image layout directory, not from a registry
    layout_ref: str | None = None   # its org.opencontainers.image.ref.name there (default: found by tag)


@dataclass
class RegistrySpec:
    host: str
    endpoint: str | None = None
    insecure: bool = False
    ca_file: str | None = None
    plain_http: bool = False
    username: str | None = None
    password_env: str | None = None
    password_file: str | None = None
    ecr: dict[str, Any] | None = None
    line: int = 0

    def settings(self) -> HostSettings:
        password = None
        if self.password_env:
            password = os.environ.get(self.password_env)
            if password is None:
                raise MirrorError(f"environment variable {self.password_env} is not set",
                                  where=f"registries.{self.host}.auth (line {self.line})",
                                  hint=f"export {self.password_env}=... before running")
        elif self.password_file:
            password = Path(self.password_file).expanduser().read_text().strip()
        return HostSettings(endpoint=self.endpoint, insecure=self.insecure, ca_file=self.ca_file,
                            plain_http=self.plain_http or bool(self.endpoint and self.endpoint.startswith("http:")),
                            username=self.username, password=password)


@dataclass
class Content:
    path: str
    platforms: list[str] = field(default_factory=list)
    referrers: bool = False          # the default of every images entry, OCI chart and image a chart or pack needs
    registries: dict[str, RegistrySpec] = field(default_factory=dict)
    images: list[ImageSpec] = field(default_factory=list)
    charts: list[dict[str, Any]] = field(default_factory=list)   # validated entries, each with "line"
    packs: list[dict[str, Any]] = field(default_factory=list)

    def host_settings(self) -> dict[str, HostSettings]:
        return {h: r.settings() for h, r in self.registries.items()}

    def asks_referrers(self) -> bool:
        """Whether anything this file lists wants its referrers (signatures, SBOMs) carried."""
        return self.referrers or any(i.referrers for i in self.images) or any(c.get("referrers") for c in self.charts)


class _Ctx:
    def __init__(self, path: str) -> None:
        self.path = path

    def err(self, node: yaml.Node | None, what: str, hint: str = "") -> ContentFileError:
        line = node.start_mark.line + 1 if node is not None else 0
        return ContentFileError(what, where=f"{self.path}:{line}", hint=hint)

    def mapping(self, node: yaml.Node, allowed: set[str], what: str) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        if not isinstance(node, yaml.MappingNode):
            raise self.err(node, f"{what} must be a mapping")
        out: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for k, v in node.value:
            key = str(k.value)
            if key not in allowed:
                close = difflib.get_close_matches(key, sorted(allowed), n=1)
                hint = f"did you mean {close[0]!r}?" if close else f"allowed keys: {', '.join(sorted(allowed))}"
                raise self.err(k, f"unknown key {key!r} in {what}", hint)
            if key in out:
                raise self.err(k, f"duplicate key {key!r} in {what}")
            out[key] = (k, v)
        return out

    def scalar(self, node: yaml.Node, what: str) -> str:
        if not isinstance(node, yaml.ScalarNode):
            raise self.err(node, f"{what} must be a string")
        return str(node.value)

    def boolean(self, node: yaml.Node, what: str) -> bool:
        v = self.scalar(node, what).lower()
        if v in ("true", "yes", "on"):
            return True
        if v in ("false", "no", "off"):
            return False
        raise self.err(node, f"{what} must be true or false")

    def seq(self, node: yaml.Node, what: str) -> list[yaml.Node]:
        if not isinstance(node, yaml.SequenceNode):
            raise self.err(node, f"{what} must be a list")
        return list(node.value)

    def platforms(self, node: yaml.Node, what: str) -> list[str]:
        out = []
        for n in self.seq(node, what):
            p = self.scalar(n, what)
            if p.count("/") not in (1, 2):
                raise self.err(n, f"invalid platform {p!r}", "write os/arch[/variant], e.g. linux/arm64")
            out.append(p)
        return out


def _plain(node: yaml.Node) -> Any:
    return yaml.SafeLoader(yaml.serialize(node)).get_single_data() if node is not None else None


def load(path: str | os.PathLike[str]) -> Content:
    p = str(path)
    try:
        text = Path(p).read_text()
    except OSError as e:
        raise ContentFileError(f"cannot read content file: {e.strerror}", where=p) from e
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 1 if mark else 0
        raise ContentFileError(f"invalid YAML: {getattr(e, 'problem', e)}", where=f"{p}:{line}") from e
    return parse_content(root, p)


def parse_content(root: yaml.Node | None, path: str) -> Content:
    ctx = _Ctx(path)
    if root is None:
        raise ContentFileError("content file is empty", where=path, hint=f"start with apiVersion: {API_VERSION}")
    top = ctx.mapping(root, TOP_KEYS, "the content file")
    if "apiVersion" not in top:
        raise ctx.err(root, "apiVersion is missing", f"add apiVersion: {API_VERSION}")
    _, v = top["apiVersion"]
    if ctx.scalar(v, "apiVersion") != API_VERSION:
        raise ctx.err(v, f"unsupported apiVersion {v.value!r}", f"this tool reads {API_VERSION}; upgrade it "
                      "if the file is newer")
    if "kind" not in top or ctx.scalar(top["kind"][1], "kind") != KIND:
        raise ctx.err(top.get("kind", (root, root))[1], "kind must be Content")
    content = Content(path)
    if "platforms" in top:
        content.platforms = ctx.platforms(top["platforms"][1], "platforms")
    if "referrers" in top:
        content.referrers = ctx.boolean(top["referrers"][1], "referrers")
    if "registries" in top:
        regs = top["registries"][1]
        if not isinstance(regs, yaml.MappingNode):
            raise ctx.err(regs, "registries must be a mapping of host -> settings")
        for hk, hv in regs.value:
            host = str(hk.value)
            spec = RegistrySpec(host, line=hk.start_mark.line + 1)
            fields = ctx.mapping(hv, REGISTRY_KEYS, f"registries.{host}")
            if "endpoint" in fields:
                ep = ctx.scalar(fields["endpoint"][1], "endpoint").rstrip("/")
                if not ep.startswith(("http://", "https://")):
                    raise ctx.err(fields["endpoint"][1], f"endpoint {ep!r} needs a scheme",
                                  "write http://host:port or https://host:port")
                if has_userinfo(ep):
                    # a URL's userinfo would reach logs and error messages; `auth:` keeps secrets out of both
                    raise ctx.err(fields["endpoint"][1], "endpoint carries credentials (user:password@)",
                                  f"drop them from the URL and give `auth:` under registries.{host}")
                spec.endpoint = ep
            if "insecure" in fields:
                spec.insecure = ctx.boolean(fields["insecure"][1], "insecure")
            if "plain_http" in fields:
                spec.plain_http = ctx.boolean(fields["plain_http"][1], "plain_http")
            if "ca_file" in fields:
                spec.ca_file = ctx.scalar(fields["ca_file"][1], "ca_file")
            if "auth" in fields:
                auth = ctx.mapping(fields["auth"][1], AUTH_KEYS, f"registries.{host}.auth")
                if "password" in auth:
                    raise ctx.err(auth["password"][0], "passwords are not written in content files",
                                  "use password_env or password_file")
                if "username" in auth:
                    spec.username = ctx.scalar(auth["username"][1], "username")
                if "username_env" in auth:
                    spec.username = os.environ.get(ctx.scalar(auth["username_env"][1], "username_env"))
                if "password_env" in auth:
                    spec.password_env = ctx.scalar(auth["password_env"][1], "password_env")
                if "password_file" in auth:
                    spec.password_file = ctx.scalar(auth["password_file"][1], "password_file")
            if "ecr" in fields:
                ctx.mapping(fields["ecr"][1], ECR_KEYS, f"registries.{host}.ecr")
                spec.ecr = _plain(fields["ecr"][1])
            content.registries[host] = spec
    if "images" in top:
        for n in ctx.seq(top["images"][1], "images"):
            line = n.start_mark.line + 1
            if isinstance(n, yaml.ScalarNode):
                ref = _ref(ctx, n)
                content.images.append(ImageSpec(ref, list(content.platforms), line, content.referrers))
            else:
                f = ctx.mapping(n, IMAGE_KEYS, "an images entry")
                if "ref" not in f:
                    raise ctx.err(n, "an images entry needs ref:")
                plats = ctx.platforms(f["platforms"][1], "platforms") if "platforms" in f else content.platforms
                refs = ctx.boolean(f["referrers"][1], "referrers") if "referrers" in f else content.referrers
                tags = _tag_filter(ctx, f["tags"][1], f["ref"][1]) if "tags" in f else None
                image = ImageSpec(_ref(ctx, f["ref"][1]), list(plats), line, refs, tags)
                if "layout_ref" in f and "layout" not in f:
                    raise ctx.err(f["layout_ref"][0], "layout_ref: needs layout:", "add layout: <directory>")
                if "layout" in f:
                    for key in ("tags", "referrers"):
                        if key in f:
                            raise ctx.err(f[key][0], f"{key}: asks a registry, and this image comes from a layout",
                                          f"drop {key}: from this entry")
                    image.referrers = False
                    where = Path(ctx.scalar(f["layout"][1], "layout")).expanduser()
                    image.layout = str(where if where.is_absolute() else Path(path).parent / where)
                    if "layout_ref" in f:
                        image.layout_ref = ctx.scalar(f["layout_ref"][1], "layout_ref")
                content.images.append(image)
    for key, allowed, store in (("charts", CHART_KEYS, content.charts), ("packs", PACK_KEYS, content.packs)):
        if key in top:
            for n in ctx.seq(top[key][1], key):
                f = ctx.mapping(n, allowed, f"a {key} entry")
                entry = {k: _plain(v) for k, (_, v) in f.items()}
                entry["line"] = n.start_mark.line + 1
                if "name" not in entry and key == "packs":
                    raise ctx.err(n, "a packs entry needs name:")
                if key == "charts" and not ("repo" in entry) ^ ("oci" in entry):
                    raise ctx.err(n, "a charts entry needs exactly one of repo: or oci:")
                if key == "charts":
                    entry["referrers"] = _chart_referrers(ctx, f, content.referrers)
                store.append(entry)
    return content


def _chart_referrers(ctx: _Ctx, f: dict[str, tuple[yaml.Node, yaml.Node]], default: bool) -> bool:
    """Whether an OCI chart's referrers (cosign signatures, as Flux verifies them) come along. A chart from a
    classic repository has none: its provenance is the .prov file, carried with it."""
    if "referrers" not in f:
        return default and "oci" in f
    if "repo" in f:
        raise ctx.err(f["referrers"][0], "referrers: asks a registry, and this chart comes from a classic "
                      "repository", "drop referrers: (its .prov file, if any, is carried with it)")
    return ctx.boolean(f["referrers"][1], "referrers")


def _tag_filter(ctx: _Ctx, node: yaml.Node, ref_node: yaml.Node) -> TagFilter:
    text = ctx.scalar(ref_node, "image reference")
    if "@" in text or text.rfind(":") > text.rfind("/"):
        raise ctx.err(ref_node, f"{text!r} names a tag or digest, and tags: chooses the tags",
                      "write the repository alone, e.g. ref: registry.k8s.io/kube-apiserver")
    f = ctx.mapping(node, TAGS_KEYS, "tags")
    if not {"semver", "regex"} & set(f):
        raise ctx.err(node, "tags: needs semver: or regex: (or both)",
                      "e.g. tags: {semver: \"~1.30\", latest: 2}")
    out = TagFilter()
    if "semver" in f:
        try:
            out.semver = VersionRange(ctx.scalar(f["semver"][1], "semver"))
        except ValueError as e:
            raise ctx.err(f["semver"][1], str(e), "write e.g. \"~1.30\", \">=1.29 <1.31\" or \"1.30.x\"") from None
    if "regex" in f:
        try:
            out.regex = re.compile(ctx.scalar(f["regex"][1], "regex"))
        except re.error as e:
            raise ctx.err(f["regex"][1], f"invalid regex: {e}",
                          "it must match the whole tag, e.g. 'v1\\.30\\.\\d+'") from None
    if "latest" in f:
        n = ctx.scalar(f["latest"][1], "latest")
        if not n.isdigit() or int(n) < 1:
            raise ctx.err(f["latest"][1], f"latest must be a whole number of tags, not {n!r}", "e.g. latest: 3")
        out.latest = int(n)
    return out


def _ref(ctx: _Ctx, node: yaml.Node) -> Reference:
    text = ctx.scalar(node, "image reference")
    try:
        return parse(text)
    except MirrorError as e:
        raise ctx.err(node, e.what, e.hint) from None
