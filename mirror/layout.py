"""OCI image layout directory as a Store (blobs/sha256/<hex>, index.json, oci-layout).

Blobs are written to a temp name while hashed, checked, then renamed, so a blob file is always complete.
index.json entries name artifacts by their full reference in org.opencontainers.image.ref.name.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .defaults import CHUNK_SIZE
from .digest import Verifier, sha256_digest
from .errors import NotFoundError, UsageError
from .mediatypes import ANNOTATION_REF_NAME, Descriptor, parse_manifest
from .reference import Reference
from .store import Manifest

OCI_LAYOUT = {"imageLayoutVersion": "1.0.0"}


def blob_path(root: Path, digest: str) -> Path:
    algo, _, hexd = digest.partition(":")
    return root / "blobs" / algo / hexd


class LayoutStore:
    """Reads and writes an OCI layout. Refs in index.json are full references (host/repo:tag)."""

    single_namespace = True
    verifies_blobs = True

    def repo_of(self, ref: Reference) -> str:
        return ref.name

    def __init__(self, root: str | os.PathLike[str], *, create: bool = False) -> None:
        self.root = Path(root)
        self.label = f"OCI layout {self.root}"
        self._lock = threading.Lock()
        if create:
            (self.root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
            if not (self.root / "oci-layout").exists():
                (self.root / "oci-layout").write_text(json.dumps(OCI_LAYOUT))
            if not (self.root / "index.json").exists():
                self._write_index({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                                   "manifests": []})
        elif not (self.root / "oci-layout").exists():
            raise NotFoundError("not an OCI layout (no oci-layout file)", where=str(self.root))

    # -- index.json -------------------------------------------------------------------------------
    def index(self) -> dict[str, Any]:
        return json.loads((self.root / "index.json").read_text())

    def _write_index(self, doc: dict[str, Any]) -> None:
        tmp = self.root / "index.json.tmp"
        tmp.write_text(json.dumps(doc, indent=1))
        tmp.replace(self.root / "index.json")

    def refs(self) -> list[tuple[str, Descriptor]]:
        out = []
        for m in self.index().get("manifests", []):
            name = (m.get("annotations") or {}).get(ANNOTATION_REF_NAME)
            if name:
                out.append((name, Descriptor(m["mediaType"], m["digest"], int(m["size"]))))
        return out

    # -- Store ------------------------------------------------------------------------------------
    def has_blob(self, repo: str, desc: Descriptor) -> bool:
        p = blob_path(self.root, desc.digest)
        try:
            return p.stat().st_size == desc.size
        except FileNotFoundError:
            return False

    has_manifest = has_blob

    @contextmanager
    def open_blob(self, repo: str, desc: Descriptor) -> Iterator[Iterator[bytes]]:
        p = blob_path(self.root, desc.digest)
        try:
            f = p.open("rb")
        except FileNotFoundError:
            raise NotFoundError(f"blob {desc.digest} not found", where=self.label) from None
        with f:
            yield iter(lambda: f.read(CHUNK_SIZE), b"")

    def put_blob(self, repo: str, desc: Descriptor, chunks: Iterable[bytes]) -> None:
        p = blob_path(self.root, desc.digest)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(f"{p.name}.{threading.get_ident()}.tmp")
        try:
            with tmp.open("wb") as f:
                for chunk in Verifier(chunks, desc.digest, desc.size, where=self.label):
                    f.write(chunk)
            tmp.replace(p)
        finally:
            tmp.unlink(missing_ok=True)

    def put_bytes(self, data: bytes, media_type: str = "") -> Descriptor:
        desc = Descriptor(media_type, sha256_digest(data), len(data))
        if not self.has_blob("", desc):
            self.put_blob("", desc, [data])
        return desc

    def get_manifest(self, ref: Reference) -> Manifest:
        if ref.digest:
            desc = next((d for _, d in self.refs() if d.digest == ref.digest), None)
            data = self._bytes(ref.digest)
            mt, _ = parse_manifest(data, desc.media_type if desc else None)
            return Manifest(data, mt, ref.digest)
        found = self._find(ref)
        return Manifest(self._bytes(found.digest), found.media_type, found.digest)

    def _find(self, ref: Reference) -> Descriptor:
        """The index.json entry a tagged reference names."""
        wanted = str(ref)
        for name, desc in self.refs():
            if name == wanted:
                return desc
        raise NotFoundError(f"{ref} is not in index.json", where=self.label)

    def _bytes(self, digest: str) -> bytes:
        try:
            return blob_path(self.root, digest).read_bytes()
        except FileNotFoundError:
            raise NotFoundError(f"manifest {digest} not found", where=self.label) from None

    def put_manifest(self, ref: Reference, manifest: Manifest) -> None:
        self.put_bytes(manifest.data)
        if not ref.tag:
            return
        name = str(ref.with_digest(None)) if ref.digest else str(ref)  # type: ignore[arg-type]
        entry = manifest.descriptor.to_json()
        entry["annotations"] = {ANNOTATION_REF_NAME: name}
        with self._lock:
            doc = self.index()
            doc["manifests"] = [m for m in doc.get("manifests", [])
                                if (m.get("annotations") or {}).get(ANNOTATION_REF_NAME) != name]
            doc["manifests"].append(entry)
            self._write_index(doc)


class LayoutSource(LayoutStore):
    """An OCI image layout made by another tool (buildah, `docker buildx --output type=oci`, kaniko, skopeo,
    umoci ...), a directory or an uncompressed tar of one (what buildx writes), read as the source of an image
    the content file names: its tag is looked up in index.json under `ref_name` when given, else under the
    full reference, `repository:tag`, or the tag alone (what skopeo and buildah write); a layout with one
    manifest and no names at all serves that one. A tar is read in place, member by member (no unpacking)."""

    def __init__(self, root: str | os.PathLike[str], ref_name: str | None = None) -> None:
        self.ref_name = ref_name
        self._members: dict[str, tuple[int, int]] | None = None
        path = Path(root)
        if not path.is_file():
            super().__init__(root)
            return
        self.root = path
        self.label = f"OCI layout archive {path}"
        self._lock = threading.Lock()
        self._members = _tar_members(path)
        if "oci-layout" not in self._members or "index.json" not in self._members:
            raise NotFoundError("not an OCI layout archive (no oci-layout and index.json in it)", where=str(path))

    def _member(self, name: str) -> tuple[int, int] | None:
        assert self._members is not None
        return self._members.get(name)

    def _blob(self, digest: str) -> tuple[int, int] | None:
        return self._member("blobs/" + digest.replace(":", "/", 1))

    def _read(self, offset: int, size: int) -> bytes:
        with self.root.open("rb") as f:
            return os.pread(f.fileno(), size, offset)

    def index(self) -> dict[str, Any]:
        if self._members is None:
            return super().index()
        at = self._member("index.json")
        assert at is not None
        return json.loads(self._read(*at))  # type: ignore[no-any-return]

    def has_blob(self, repo: str, desc: Descriptor) -> bool:
        if self._members is None:
            return super().has_blob(repo, desc)
        at = self._blob(desc.digest)
        return at is not None and at[1] == desc.size

    has_manifest = has_blob

    @contextmanager
    def open_blob(self, repo: str, desc: Descriptor) -> Iterator[Iterator[bytes]]:
        if self._members is None:
            with super().open_blob(repo, desc) as chunks:
                yield chunks
            return
        at = self._blob(desc.digest)
        if at is None:
            raise NotFoundError(f"blob {desc.digest} not found", where=self.label)
        offset, size = at
        with self.root.open("rb") as f:
            def member() -> Iterator[bytes]:
                pos, end = offset, offset + size
                while pos < end:
                    data = os.pread(f.fileno(), min(CHUNK_SIZE, end - pos), pos)
                    if not data:
                        raise NotFoundError(f"blob {desc.digest} is cut short", where=self.label)
                    pos += len(data)
                    yield data
            yield member()

    def _bytes(self, digest: str) -> bytes:
        if self._members is None:
            return super()._bytes(digest)
        at = self._blob(digest)
        if at is None:
            raise NotFoundError(f"manifest {digest} not found", where=self.label)
        return self._read(*at)

    def _find(self, ref: Reference) -> Descriptor:
        names = [self.ref_name] if self.ref_name else [str(ref), f"{ref.repository}:{ref.tag}", ref.tag or "latest"]
        refs = self.refs()
        found = next((d for n in names for name, d in refs if name == n), None)
        entries = self.index().get("manifests", [])
        if found is None and not self.ref_name and not refs and len(entries) == 1:
            e = entries[0]
            found = Descriptor(e["mediaType"], e["digest"], int(e["size"]))
        if found is None:
            have = ", ".join(sorted(name for name, _ in refs)) or "no names"
            raise NotFoundError(f"{names[0] if self.ref_name else ref.tag} is not in index.json (it has {have})",
                                where=self.label, hint="set layout_ref: to the name the layout gives the image")
        return found


def _tar_members(path: Path) -> dict[str, tuple[int, int]]:
    """name -> (offset, size) of every file in an uncompressed tar: its members are read in place."""
    import tarfile

    try:
        with tarfile.open(path, "r:") as t:
            return {m.name.removeprefix("./"): (m.offset_data, m.size) for m in t if m.isfile()}
    except tarfile.ReadError as e:
        raise UsageError(f"{path} is not an uncompressed tar ({e})", where=str(path),
                         hint="decompress it first (gunzip, zstd -d), or give the layout directory") from None

