"""Verification while streaming: hash as bytes pass, fail at end of stream on a mismatch."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator

from .errors import DigestMismatchError


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Verifier:
    """Wraps a chunk stream; after it is exhausted, raises if size or digest differ from expected."""

    def __init__(self, chunks: Iterable[bytes], digest: str, size: int, where: str = "") -> None:
        algo, _, self.hex = digest.partition(":")
        if algo != "sha256":
            raise DigestMismatchError(f"unsupported digest algorithm {algo!r}", where=where)
        self.digest = digest
        self.size = size
        self.where = where
        self._chunks = chunks
        self._h = hashlib.sha256()
        self.seen = 0

    def __iter__(self) -> Iterator[bytes]:
        h = self._h
        for chunk in self._chunks:
            self.seen += len(chunk)
            if self.seen > self.size:
                raise DigestMismatchError(
                    f"blob {self.digest} is longer than its descriptor's {self.size} bytes", where=self.where,
                    hint="the source serves different content than the manifest names")
            h.update(chunk)
            yield chunk
        if self.seen != self.size:
            raise DigestMismatchError(f"blob {self.digest} ended after {self.seen} of {self.size} bytes",
                                      where=self.where, hint="the transfer was truncated; rerun to resume")
        if h.hexdigest() != self.hex:
            raise DigestMismatchError(f"blob content does not match {self.digest}", where=self.where,
                                      hint="the data is corrupted; fetch it again")
