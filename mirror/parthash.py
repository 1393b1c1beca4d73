"""The sha256 of every part of a bundle stream, hashed in stream order: `PartSums`.

Used in two places. In the exporting process, for a stream too small to be worth a process, or hashed
again after a failed frame (mirror.bundle._TrailingHasher). And as that hasher's child process, which
runs this file by its path (`python -I parthash.py DIRECTORY NAME SPLIT`): so this module imports nothing
but the standard library, and hash_file_range() (any file region into a hash, also used by verify and the
import's part check) lives here so that the child reads the parts the same way. In the child, each line on
stdin is an end to hash to; "END <end>" hashes to it, prints every part's sha256 as JSON and exits; end
of input without it (the export failed, or its process was killed) exits.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import sys
from typing import Any


def part_name(name: str, split: int | None, i: int) -> str:
    """The file name of part `i` of stream `name` (split into parts of `split` bytes, or not split)."""
    return f"{name}.tar.zst.{i:03d}" if split else f"{name}.tar.zst"


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


class PartSums:
    """Bytes fed in stream order, never across a part's end in one update(); sums() gives each part's."""

    def __init__(self, split: int | None) -> None:
        self.split = split
        self.pos = 0
        self._h = hashlib.sha256()
        self._sums: list[str] = []

    def room(self, end: int) -> int:
        """How many bytes the next update() may take, towards `end`, without crossing a part's end."""
        left = end - self.pos
        return min(left, self.split - self.pos % self.split) if self.split else left

    def update(self, data: bytes | bytearray | memoryview) -> None:
        self._h.update(data)
        self.pos += len(data)
        if self.split and self.pos % self.split == 0:
            self._sums.append(self._h.hexdigest())
            self._h = hashlib.sha256()

    def sums(self) -> list[str]:
        """Every part's sha256 (call once, at the stream's end): the last part may be short, never empty
        unless the stream is."""
        if not self.split or self.pos % self.split or not self.pos:
            self._sums.append(self._h.hexdigest())
        return self._sums


def main(argv: list[str]) -> int:
    directory, name, split = argv[0], argv[1], int(argv[2]) or None
    sums = PartSums(split)
    fds: dict[int, int] = {}
    for line in sys.stdin:
        word, _, last = line.strip().rpartition(" ")
        end = int(last)
        while sums.pos < end:
            i, within = divmod(sums.pos, split) if split else (0, sums.pos)
            if i not in fds:
                fds[i] = os.open(os.path.join(directory, part_name(name, split, i)), os.O_RDONLY)
            hash_file_range(fds[i], within, within + sums.room(end), sums)   # a short part raises
        if word == "END":
            print(json.dumps(sums.sums()), flush=True)
            break
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
