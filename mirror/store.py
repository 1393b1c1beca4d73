"""The one Store protocol, implemented by the registry client, the OCI layout directory and the bundle.

A Store holds blobs and manifests per repository. Stores with one shared blob namespace (layout, bundle)
simply ignore `repo` for blobs. Optional abilities are separate small protocols (`Mounter`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol, runtime_checkable

from .errors import NotFoundError, UnsupportedError
from .mediatypes import Descriptor
from .reference import Reference


class Manifest:
    """A manifest as exact bytes plus the media type and digest they were served with."""

    __slots__ = ("data", "digest", "media_type")

    def __init__(self, data: bytes, media_type: str, digest: str) -> None:
        self.data = data
        self.media_type = media_type
        self.digest = digest

    @property
    def descriptor(self) -> Descriptor:
        return Descriptor(self.media_type, self.digest, len(self.data))


@runtime_checkable
class Store(Protocol):
    """Where content is read from and written to."""

    label: str                      # for messages: "source registry 127.0.0.1:5001", "bundle ./b"

    def has_blob(self, repo: str, desc: Descriptor) -> bool: ...

    def open_blob(self, repo: str, desc: Descriptor) -> AbstractContextManager[Iterator[bytes]]:
        """Yield the blob's bytes in chunks. The caller verifies digest and size."""
        ...

    def put_blob(self, repo: str, desc: Descriptor, chunks: Iterable[bytes]) -> None:
        """Store a blob from a chunk stream; must verify digest and size before it becomes visible."""
        ...

    def get_manifest(self, ref: Reference) -> Manifest: ...

    def has_manifest(self, repo: str, desc: Descriptor) -> bool: ...

    def put_manifest(self, ref: Reference, manifest: Manifest) -> None:
        """Store a manifest under ref.tag if set, else under its digest."""
        ...


@runtime_checkable
class Mounter(Protocol):
    def mount_blob(self, repo: str, desc: Descriptor, from_repo: str) -> bool:
        """Cross-repository mount; True if the blob is now present in `repo`."""
        ...


class MemoryStore:
    """Blobs and manifests held in memory: content built by the tool itself (a classic-repo chart turned
    into a Helm OCI artifact, a freshly built pack) served to `copy` like any other Store.
    Repositories are full names (`charts.example.com/stable/redis`), as OverlayStore passes them."""

    single_namespace = True
    verifies_blobs = True

    def __init__(self, label: str, *, read_only: bool = False) -> None:
        self.label = label
        self.read_only = read_only
        self.blobs: dict[str, bytes] = {}
        self.media_types: dict[str, str] = {}        # manifests only
        self.tags: dict[tuple[str, str], str] = {}   # (full repository name, tag) -> digest
        self._lock = threading.Lock()

    def repo_of(self, ref: Reference) -> str:
        return ref.name

    def put_bytes(self, data: bytes, media_type: str = "") -> Descriptor:
        from .digest import sha256_digest

        d = sha256_digest(data)
        with self._lock:
            self.blobs[d] = data
        return Descriptor(media_type, d, len(data))

    def add_manifest(self, repo: str, tag: str | None, manifest: Manifest) -> None:
        with self._lock:
            self.blobs[manifest.digest] = manifest.data
            self.media_types[manifest.digest] = manifest.media_type
            if tag:
                self.tags[(repo, tag)] = manifest.digest

    def has_blob(self, repo: str, desc: Descriptor) -> bool:
        return desc.digest in self.blobs

    def has_manifest(self, repo: str, desc: Descriptor) -> bool:
        return desc.digest in self.media_types

    @contextmanager
    def open_blob(self, repo: str, desc: Descriptor) -> Iterator[Iterator[bytes]]:
        data = self.blobs.get(desc.digest)
        if data is None:
            raise NotFoundError(f"blob {desc.digest} not found", where=self.label)
        yield iter([data])

    def put_blob(self, repo: str, desc: Descriptor, chunks: Iterable[bytes]) -> None:
        if self.read_only:
            raise UnsupportedError("this store is read-only", where=self.label)
        from .digest import Verifier

        data = b"".join(Verifier(chunks, desc.digest, desc.size, where=self.label))
        with self._lock:
            self.blobs[desc.digest] = data

    def get_manifest(self, ref: Reference) -> Manifest:
        digest = ref.digest or self.tags.get((ref.name, ref.tag or "latest"))
        if digest is None or digest not in self.media_types:
            raise NotFoundError(f"{ref} not found", where=self.label)
        return Manifest(self.blobs[digest], self.media_types[digest], digest)

    def put_manifest(self, ref: Reference, manifest: Manifest) -> None:
        if self.read_only:
            raise UnsupportedError("this store is read-only", where=self.label)
        self.add_manifest(ref.name, ref.tag, manifest)
