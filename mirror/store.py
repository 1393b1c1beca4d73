"""The one Store protocol, implemented by the registry client, the OCI layout directory and the bundle.

A Store holds blobs and manifests per repository. Stores with one shared blob namespace (layout, bundle)
simply ignore `repo` for blobs. Optional abilities are separate small protocols (`Mounter`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from typing import Protocol, runtime_checkable

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
