"""Verification while streaming: hash as bytes pass, fail at end of stream on a mismatch."""

from __future__ import annotations

import errno
import hashlib
import os
from collections.abc import Iterable, Iterator
from typing import Any

from .errors import DigestMismatchError


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


HASH_CHUNK = 1 << 20


def hash_file_range(fd: int, start: int, end: int, h: Any) -> None:
    """Feed bytes [start, end) of an open file to hash `h`.

    pread() into one buffer of HASH_CHUNK bytes, reused: it stays in the CPU's cache while it is hashed.
    Measured on the 1.1 GB bench bundle in the page cache: 0.70 s of CPU, against 0.97 s through read-only
    mappings of 8 MiB, where every page is faulted in and then hashed from memory (sha256 alone runs at
    1.9 GB/s on a buffer in cache, 1.1 GB/s on one of 64 MiB).
    """
    buf = bytearray(min(HASH_CHUNK, max(0, end - start)))
    view = memoryview(buf)
    pos = start
    while pos < end:
        n = os.preadv(fd, [view[:end - pos]], pos)
        if n <= 0:
            raise OSError(errno.EIO, f"file ends at {pos}, before {end}")
        h.update(view[:n])
        pos += n


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
