"""Verification while streaming: hash as bytes pass, fail at end of stream on a mismatch."""

from __future__ import annotations

import hashlib
import mmap
from collections.abc import Iterable, Iterator
from typing import Any

from .errors import DigestMismatchError


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


HASH_WINDOW = 8 << 20


def hash_file_range(fd: int, start: int, end: int, h: Any) -> None:
    """Feed bytes [start, end) of an open file to hash `h` straight from the page cache.

    Through small read-only mappings rather than read(): no copy into a buffer (measured: 1.1 GB hashed
    in 0.85 s instead of 0.99 s), and a window of HASH_WINDOW bytes keeps the mapped pages, which count
    as resident, bounded.
    """
    pos = start
    while pos < end:
        base = pos - pos % mmap.ALLOCATIONGRANULARITY
        n = min(end - base, HASH_WINDOW)
        with mmap.mmap(fd, n, offset=base, access=mmap.ACCESS_READ) as m, memoryview(m) as view:
            h.update(view[pos - base:n])
        pos = base + n


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
