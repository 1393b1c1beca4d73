"""The one reference parser. Everything below the CLI takes a `Reference`, never a string it splits again.

Normalisation follows Docker: a first component that has no '.' or ':' and is not 'localhost' is a
repository path on docker.io, and one-component docker.io names get 'library/'.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from .defaults import DOCKER_HUB
from .errors import ReferenceError_

_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
NAME_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
DIGEST_RE = re.compile(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$")
_HOST_RE = re.compile(r"^(?:[a-zA-Z0-9-]+(?:\.[a-zA-Z0-9-]+)*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?$")
_DOCKER_HUB_ALIASES = {"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"}


@dataclass(frozen=True, order=True)
class Reference:
    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def identifier(self) -> str:
        """What goes after /manifests/: the digest when pinned, else the tag."""
        return self.digest or self.tag or "latest"

    @property
    def name(self) -> str:
        return f"{self.registry}/{self.repository}"

    def __str__(self) -> str:
        s = self.name
        if self.tag:
            s += f":{self.tag}"
        if self.digest:
            s += f"@{self.digest}"
        return s

    def with_digest(self, digest: str) -> Reference:
        return replace(self, digest=digest)

    def with_tag(self, tag: str | None) -> Reference:
        return replace(self, tag=tag)

    def in_repo(self, registry: str, repository: str) -> Reference:
        return replace(self, registry=registry, repository=repository)


def split_host(name: str) -> tuple[str, str]:
    first, sep, rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
        return first, rest
    return DOCKER_HUB, name


def parse(text: str, *, where: str = "") -> Reference:
    """Parse and normalise an image reference; raise ReferenceError_ with a hint when it is not one."""
    s = text.strip()
    if not s:
        raise ReferenceError_("empty image reference", where=where, hint="write e.g. nginx:1.25")
    if "://" in s:
        raise ReferenceError_(f"{text!r} is a URL, not an image reference", where=where,
                              hint="drop the scheme: write host/repo:tag")
    digest = None
    if "@" in s:
        s, digest = s.split("@", 1)
        if not DIGEST_RE.match(digest):
            raise ReferenceError_(f"invalid digest in {text!r}", where=where,
                                  hint="digests look like sha256:<64 hex>")
    tag = None
    slash = s.rfind("/")
    colon = s.rfind(":")
    if colon > slash:
        s, tag = s[:colon], s[colon + 1:]
        if not TAG_RE.match(tag):
            raise ReferenceError_(f"invalid tag {tag!r} in {text!r}", where=where,
                                  hint="tags are [A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
    host, path = split_host(s)
    if not _HOST_RE.match(host):
        raise ReferenceError_(f"invalid registry host {host!r} in {text!r}", where=where)
    if host in _DOCKER_HUB_ALIASES:
        host = DOCKER_HUB
        if "/" not in path:
            path = f"library/{path}"
    if not NAME_RE.match(path):
        raise ReferenceError_(f"invalid repository name {path!r} in {text!r}", where=where,
                              hint="repository names are lowercase [a-z0-9] separated by . _ __ - and /")
    if tag is None and digest is None:
        tag = "latest"
    return Reference(host, path, tag, digest)


def host_segment(host: str) -> str:
    """The path segment a source host becomes under the target's base path.

    Rule (documented in README): lowercase; a port ':N' becomes '_N' (so `harbor.corp:8443` ->
    `harbor.corp_8443`), because ':' is not allowed in repository names and '_' is. IPv6 brackets are
    dropped and ':' inside them become '-'. The import receipt records the mapping for every host.
    """
    h = host.lower()
    if h.startswith("["):
        addr, _, port = h[1:].partition("]")
        h = addr.replace(":", "-") + (f"_{port[1:]}" if port.startswith(":") else "")
    else:
        h = h.replace(":", "_")
    if not NAME_RE.match(h):
        raise ReferenceError_(f"source host {host!r} cannot become a repository path segment")
    return h


def join_path(*parts: str) -> str:
    return "/".join(p.strip("/") for p in parts if p and p.strip("/"))


def mirrored(ref: Reference, target_registry: str, base: str) -> Reference:
    """Where `ref` lands under `target_registry/base`: HOST/BASE/<source-host>/<source-repo>."""
    return ref.in_repo(target_registry, join_path(base, host_segment(ref.registry), ref.repository))
