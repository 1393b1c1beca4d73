"""The import receipt: what went where. Later commands (mirrors, delta) read it; it never holds secrets."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from . import shape
from .errors import UsageError

RECEIPT_FORMAT = "airgap-mirror/receipt/v1"


@dataclass
class Target:
    registry: str                    # host[:port] as given to --to
    base: str = ""                   # base content path, '' for none
    plain_http: bool = False
    insecure: bool = False
    ca_file: str | None = None
    username: str | None = None      # recorded so configs can name the user; the password never is
    pack_base: str | None = None


@dataclass
class ImportedArtifact:
    kind: str                        # image | chart | pack | artifact
    source: str                      # full source reference, e.g. docker.io/library/nginx:1.25
    target: str                      # full target reference
    digest: str
    media_type: str = ""
    oci_url: str | None = None       # charts: oci://host/base/path/name (without the tag)


@dataclass
class Receipt:
    target: Target
    hosts: dict[str, str] = field(default_factory=dict)      # source host -> path segment under base
    artifacts: list[ImportedArtifact] = field(default_factory=list)
    bundles: list[str] = field(default_factory=list)          # bundle ids imported
    blobs: list[str] = field(default_factory=list)            # every blob digest the target now holds
    signers: dict[str, str] = field(default_factory=dict)     # bundle id -> who signed it (--allowed-signers)
    created: str = ""
    tool_version: str = ""
    format: str = RECEIPT_FORMAT

    def mirror_prefix(self, host: str) -> str:
        """`HOST/BASE/<segment>` the source host was imported under."""
        seg = self.hosts[host]
        return "/".join(p for p in (self.target.registry, self.target.base.strip("/"), seg) if p)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def save(self, path: str | os.PathLike[str]) -> None:
        p = Path(path)
        tmp = p.with_name(p.name + ".tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=2) + "\n")
        tmp.replace(p)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Receipt:
        try:
            doc = json.loads(Path(path).read_text())
        except (OSError, ValueError) as e:
            raise UsageError(f"cannot read receipt: {e}", where=str(path),
                             hint="pass the file written by `airgap-mirror import --receipt`") from e
        if not isinstance(doc, dict) or doc.get("format") != RECEIPT_FORMAT:
            found = doc.get("format") if isinstance(doc, dict) else None
            raise UsageError(f"not an airgap-mirror receipt (format {found!r})", where=str(path))
        shape.require(doc, RECEIPT_SHAPE, what="the receipt", where=str(path),
                      hint="use the file `airgap-mirror import --receipt` wrote, or import again to rewrite it")
        return cls(
            target=Target(**_known(Target, doc["target"])),
            hosts=dict(doc.get("hosts", {})),
            artifacts=[ImportedArtifact(**_known(ImportedArtifact, a)) for a in doc.get("artifacts", [])],
            bundles=list(doc.get("bundles", [])),
            blobs=list(doc.get("blobs", [])),
            signers=dict(doc.get("signers", {})),
            created=doc.get("created", ""),
            tool_version=doc.get("tool_version", ""),
        )


RECEIPT_SHAPE = {
    "target": {"registry": str, "base?": str, "plain_http?": bool, "insecure?": bool, "ca_file?": (str, None),
               "username?": (str, None), "pack_base?": (str, None)},
    "hosts?": {str: str},
    "artifacts?": [{"kind": str, "source": str, "target": str, "digest": str, "media_type?": str,
                    "oci_url?": (str, None)}],
    "bundles?": [str], "blobs?": [str], "signers?": {str: str}, "created?": str, "tool_version?": str,
}


def _known(cls: type, doc: dict[str, Any]) -> dict[str, Any]:
    """The fields of dataclass `cls` in `doc` (a newer tool's extra keys are left out, not an error)."""
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in doc.items() if k in names}


def palette_mirror_string(receipt: Receipt, *, v2: bool = False) -> str:
    """`docker.io::HOST/BASE/docker.io,...` for the hosts the receipt imported (sorted, stable)."""
    out = []
    for host in sorted(receipt.hosts):
        prefix = receipt.mirror_prefix(host)
        if v2:
            reg, _, rest = prefix.partition("/")
            prefix = f"{reg}/v2/{rest}" if rest else f"{reg}/v2"
        out.append(f"{host}::{prefix}")
    return ",".join(out)
