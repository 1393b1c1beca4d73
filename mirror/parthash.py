"""The sha256 of every part of a bundle stream, hashed in stream order: `PartSums`.

Used in two places. In the exporting process, for a stream too small to be worth a process, or hashed
again after a failed frame (mirror.bundle._TrailingHasher). And as that hasher's child process, which
runs this file by its path (`python -I parthash.py DIRECTORY NAME SPLIT`): so this module imports nothing
but the standard library. In the child, each line on stdin is an end to hash to; "END <end>" hashes to
it, prints every part's sha256 as JSON and exits; end of input without it (the export failed, or its
process was killed) exits.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys


def part_name(name: str, split: int | None, i: int) -> str:
    """The file name of part `i` of stream `name` (split into parts of `split` bytes, or not split)."""
    return f"{name}.tar.zst.{i:03d}" if split else f"{name}.tar.zst"


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
    view = memoryview(bytearray(1 << 20))
    for line in sys.stdin:
        word, _, last = line.strip().rpartition(" ")
        end = int(last)
        while sums.pos < end:
            i, within = divmod(sums.pos, split) if split else (0, sums.pos)
            if i not in fds:
                fds[i] = os.open(os.path.join(directory, part_name(name, split, i)), os.O_RDONLY)
            n = os.preadv(fds[i], [view[:min(sums.room(end), len(view))]], within)
            if n <= 0:
                print(f"the stream ends early at {sums.pos}", file=sys.stderr)
                return 1
            sums.update(view[:n])
        if word == "END":
            print(json.dumps(sums.sums()), flush=True)
            break
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
