"""Media types and manifest walking. Manifests are kept as exact bytes; we only read them."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
OCI_EMPTY_JSON = "application/vnd.oci.empty.v1+json"

INDEXES = frozenset({OCI_INDEX, DOCKER_LIST})
MANIFESTS = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
DOCKER_TYPES = frozenset({DOCKER_LIST, DOCKER_MANIFEST})
ACCEPT = ", ".join([OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST])

ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
ANNOTATION_TITLE = "org.opencontainers.image.title"
# BuildKit attaches SBOM and provenance to an index as extra entries with platform unknown/unknown,
# naming the image manifest they describe (buildkit docs/attestations/attestation-storage.md).
DOCKER_REFERENCE_TYPE = "vnd.docker.reference.type"
DOCKER_REFERENCE_DIGEST = "vnd.docker.reference.digest"
ATTESTATION_MANIFEST = "attestation-manifest"


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    platform: str | None = None             # "os/arch[/variant]" for index children
    annotations: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.annotations:
            d["annotations"] = dict(self.annotations)
        return d


def platform_string(p: dict[str, Any] | None) -> str | None:
    if not p:
        return None
    s = f"{p.get('os', '')}/{p.get('architecture', '')}"
    if p.get("variant"):
        s += f"/{p['variant']}"
    return s


def attestation_subject(entry: dict[str, Any]) -> str | None:
    """The digest of the image manifest a BuildKit attestation entry describes; None for other entries."""
    ann = entry.get("annotations") or {}
    if ann.get(DOCKER_REFERENCE_TYPE) == ATTESTATION_MANIFEST:
        return ann.get(DOCKER_REFERENCE_DIGEST) or None
    return None


def platform_matches(have: str | None, wanted: list[str]) -> bool:
    """`linux/arm64` matches `linux/arm64/v8`; a wanted variant must match exactly."""
    if not wanted:
        return True
    if have is None:
        return True                  # entries without a platform are not platform images: keep
    h = have.split("/")
    for w in wanted:
        ws = w.split("/")
        if h[:2] == ws[:2] and (len(ws) < 3 or (len(h) >= 3 and h[2] == ws[2])):
            return True
    return False


def parse_manifest(data: bytes, media_type: str | None) -> tuple[str, dict[str, Any]]:
    """Decode manifest JSON and decide its media type: the Content-Type header wins over a missing field."""
    doc = json.loads(data)
    if not isinstance(doc, dict):
        raise ValueError("manifest is not a JSON object")
    mt = doc.get("mediaType") or media_type or ""
    if mt in ("", "application/json", "application/octet-stream"):
        mt = OCI_INDEX if "manifests" in doc else OCI_MANIFEST
    return mt, doc


def _desc(d: dict[str, Any]) -> Descriptor:
    return Descriptor(d["mediaType"], d["digest"], int(d["size"]), platform_string(d.get("platform")),
                      dict(d.get("annotations") or {}))


def children(media_type: str, doc: dict[str, Any]) -> tuple[list[Descriptor], list[Descriptor]]:
    """(child manifests, blobs) directly referenced by a manifest or index."""
    if media_type in INDEXES or "manifests" in doc:
        return [_desc(m) for m in doc.get("manifests", [])], []
    blobs: list[Descriptor] = []
    if "config" in doc:
        blobs.append(_desc(doc["config"]))
    blobs.extend(_desc(layer) for layer in doc.get("layers", []) or [])
    # `subject` is a reference to another manifest (referrers); it is not content we must carry.
    return [], blobs


def is_index(media_type: str) -> bool:
    return media_type in INDEXES


def artifact_type(doc: dict[str, Any]) -> str | None:
    at = doc.get("artifactType")
    if at:
        return str(at)
    cfg = doc.get("config") or {}
    mt = cfg.get("mediaType")
    if mt and mt not in ("application/vnd.oci.image.config.v1+json",
                         "application/vnd.docker.container.image.v1+json"):
        return str(mt)
    return None
