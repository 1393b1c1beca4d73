"""The offline bundle: an OCI image layout, as a tar, as independent zstd frames, cut into parts.

Why hand-written rather than tarfile + a zstd stream: the layout must be readable by standard tools
(`cat parts | zstd -d | tar -x`) *and* every blob must be readable on its own, without decompressing what
precedes it, straight from the parts. So each tar member (512-byte header + data + padding) is compressed
as its own zstd frame; concatenated frames are one valid zstd stream, and bundle.json records where each
blob's frame starts (a global offset over the concatenated parts) and how long it is.

Writing: each blob is compressed into its own frame file under `<dir>/.work/frames/` (temp name, verified,
renamed: a rerun reuses them), then `finalize()` concatenates the frames into parts, hashes them, and moves
parts, SHA256SUMS and, last of all, bundle.json into place. Without bundle.json nothing is a bundle.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import io
import json
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import zstandard

from . import __version__, defaults, filesend, parthash, shape
from .digest import Verifier
from .errors import (
    BundleError,
    BundleVersionError,
    DigestMismatchError,
    DiskFullError,
    MirrorError,
    NotFoundError,
    PartError,
    SourceDamageError,
    UsageError,
)
from .mediatypes import ANNOTATION_REF_NAME, OCI_INDEX, Descriptor, parse_manifest
from .parthash import hash_file_range
from .reference import Reference
from .store import Manifest

log = logging.getLogger("mirror")

BUNDLE_JSON = "bundle.json"
SUMS = "SHA256SUMS"
SIG = ".sig"                          # an SSH signature beside a signed file (mirror.signing)
WORK = ".work"
TAR_BLOCK = 512


def tar_header(name: str, size: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o644
    info.mtime = 0
    info.type = tarfile.DIRTYPE if name.endswith("/") else tarfile.REGTYPE
    return info.tobuf(format=tarfile.USTAR_FORMAT)


def padding(size: int) -> int:
    return (-size) % TAR_BLOCK


def blob_member(digest: str) -> str:
    algo, _, hexd = digest.partition(":")
    return f"blobs/{algo}/{hexd}"


def parse_size(text: str) -> int:
    """'700M', '4G', '1.5GiB', '123' -> bytes (K/M/G/T are binary multiples, as split(1) uses); exactly
    4 GiB means FAT32's largest file, 4 GiB - 1 byte."""
    s = text.strip().upper().removesuffix("B").removesuffix("I")
    mult = 1
    for i, unit in enumerate("KMGT", start=1):
        if s.endswith(unit):
            mult = 1024 ** i
            s = s[:-1]
            break
    try:
        n = int(float(s) * mult)
    except ValueError:
        raise BundleError(f"invalid size {text!r}", hint="use a number with K, M, G or T, e.g. 4G") from None
    if n < 1 << 20:
        raise BundleError(f"split size {text!r} is below 1M", hint="use e.g. 700M or 4G")
    if n == defaults.FAT32_MAX_FILE + 1:
        # 4G is what people give for a FAT32 stick, whose largest file is one byte short of 4 GiB: a part
        # of exactly 4 GiB would fail to copy at its last byte (as `split -b 4G` output does).
        n = defaults.FAT32_MAX_FILE
    return n


COMPRESSED_SUFFIXES = ("gzip", "zstd", ".gz")          # media types of already-compressed layers
RAW_BLOCK = 128 << 10


class RawFrameWriter:
    """A zstd frame made only of raw (stored) blocks, for data that is already compressed.

    Hand-written because no zstd binding exposes "store": the format is a 4-byte magic, a frame header
    (content size; a 128 KiB window so `zstd -d` needs no extra memory flags) and 3-byte block headers.
    Standard decoders read it like any other frame; writing it costs no CPU beyond the copy, and its
    length is known before the first byte arrives (`raw_frame_length`).
    """

    MAGIC = b"\x28\xb5\x2f\xfd"
    FLUSH = 8 * RAW_BLOCK

    def __init__(self, stream: _Stream, offset: int, content_size: int,
                 flushed: Callable[[int], None] | None = None) -> None:
        self.stream = stream
        self.pos = offset
        self.flushed = flushed              # told the end of what is written after every flush
        self.left = content_size
        self.buf = bytearray()
        self.out: list[bytes | memoryview] = []
        self.out_len = 0
        # descriptor: FCS field 8 bytes (flag 3), not single-segment; window descriptor: 2^17 bytes
        self._emit(raw_frame_head(content_size))
        if content_size == 0:
            self._emit((1).to_bytes(3, "little"))           # one empty last raw block

    def _emit(self, b: bytes | memoryview) -> None:
        self.out.append(b)
        self.out_len += len(b)

    def _flush(self) -> None:
        if self.out:
            self.stream.pwrite(self.pos, self.out)
            self.pos += self.out_len
            self.out = []
            self.out_len = 0
            if self.flushed is not None:
                self.flushed(self.pos)

    def write(self, data: bytes) -> int:
        view = memoryview(data)
        if self.buf:                                   # complete a partial block first
            take = min(RAW_BLOCK - len(self.buf), len(view))
            self.buf += view[:take]
            view = view[take:]
            if len(self.buf) == RAW_BLOCK:
                self._block(bytes(self.buf))
                self.buf = bytearray()
        while len(view) >= RAW_BLOCK:                  # whole blocks go out without a copy (pwritev)
            self._block(view[:RAW_BLOCK])
            view = view[RAW_BLOCK:]
        if len(view):
            self.buf += view
        if self.out_len >= self.FLUSH:
            self._flush()
        return len(data)

    def _block(self, data: bytes | memoryview) -> None:
        self.left -= len(data)
        last = self.left == 0
        self._emit((int(last) | (len(data) << 3)).to_bytes(3, "little"))
        self._emit(data)

    def close(self) -> None:
        if self.buf:
            self._block(bytes(self.buf))
            self.buf = bytearray()
        self._flush()
        if self.left != 0:
            raise BundleError(f"raw frame content size mismatch ({self.left} bytes left)")


# -- the description --------------------------------------------------------------------------------

@dataclass
class BlobEntry:
    size: int
    offset: int            # global offset of the frame over the concatenated parts
    length: int            # compressed frame length
    media_type: str = ""

    def overlaps(self, start: int, end: int) -> bool:
        """Whether a byte of this blob's frame lies in [start, end) of the concatenated parts."""
        return self.offset < end and self.offset + self.length > start


@dataclass
class Part:
    name: str
    size: int
    sha256: str


DAMAGED_HINT = "copy bundle.json again from the export side (SHA256SUMS and the parts do not cover it)"


BUNDLE_SHAPE = {
    "format_version": int, "id": str, "created": str, "name?": str, "tool_version?": str, "split_size?": (int, None),
    "artifacts": [{"ref": str, "digest": str, "platforms?": [str], "contents?": [str]}],
    "blobs": {str: {"size": int, "offset": int, "length": int, "media_type?": str}},
    "parts": [{"name": str, "size": int, "sha256": str}],
    "depends_on?": [dict], "external_blobs?": [str],
}


def check_bundle_doc(doc: Any, path: Path, error: type[BundleError] | type[UsageError] = BundleError) -> None:
    """bundle.json's shape, checked before any field is used (BundleInfo.load; export --since)."""
    shape.require(doc, BUNDLE_SHAPE, what="bundle.json", where=str(path), hint=DAMAGED_HINT, error=error)


@dataclass
class BundleInfo:
    id: str
    created: str
    tool_version: str
    artifacts: list[dict[str, Any]]
    blobs: dict[str, BlobEntry]
    parts: list[Part]
    name: str = defaults.BUNDLE_NAME
    format_version: int = defaults.BUNDLE_FORMAT_VERSION
    split_size: int | None = None
    depends_on: list[dict[str, Any]] = field(default_factory=list)   # delta: what it relies on
    external_blobs: list[str] = field(default_factory=list)          # blobs referenced but not carried

    def to_json(self) -> dict[str, Any]:
        return {
            "format_version": self.format_version, "id": self.id, "name": self.name, "created": self.created,
            "tool_version": self.tool_version, "split_size": self.split_size,
            "artifacts": self.artifacts, "depends_on": self.depends_on,
            "external_blobs": self.external_blobs,
            "parts": [p.__dict__ for p in self.parts],
            "blobs": {d: e.__dict__ for d, e in sorted(self.blobs.items())},
        }

    @classmethod
    def load(cls, directory: Path) -> BundleInfo:
        path = directory / BUNDLE_JSON
        if not path.exists():
            if (directory / WORK).exists():
                raise BundleError("bundle is incomplete (an export did not finish)", where=str(directory),
                                  hint="rerun the export; it reuses what was already fetched")
            what = "no bundle.json: not a bundle directory" if directory.is_dir() else "no such directory"
            raise NotFoundError(what, where=str(directory),
                                hint="pass the directory written by `airgap-mirror export -o`")
        try:
            doc = json.loads(path.read_text())
        except ValueError as e:
            raise BundleError(f"bundle.json is not valid JSON: {e}", where=str(path), hint=DAMAGED_HINT) from e
        version = doc.get("format_version") if isinstance(doc, dict) else None
        if isinstance(version, int) and not isinstance(version, bool) and version > defaults.BUNDLE_FORMAT_VERSION:
            raise BundleVersionError(
                f"bundle format version {version} is newer than this tool understands "
                f"({defaults.BUNDLE_FORMAT_VERSION})", where=str(path),
                hint="upgrade airgap-mirror on this side to the version that wrote the bundle")
        check_bundle_doc(doc, path)
        return cls(
            id=doc["id"], created=doc["created"], tool_version=doc.get("tool_version", ""),
            artifacts=doc["artifacts"], name=doc.get("name", defaults.BUNDLE_NAME),
            blobs={d: BlobEntry(e["size"], e["offset"], e["length"], str(e.get("media_type", "")))
                   for d, e in doc["blobs"].items()},
            parts=[Part(p["name"], p["size"], p["sha256"]) for p in doc["parts"]], format_version=doc["format_version"],
            split_size=doc.get("split_size"), depends_on=doc.get("depends_on", []),
            external_blobs=doc.get("external_blobs", []),
        )

    def unique_bytes(self) -> int:
        return sum(e.size for e in self.blobs.values())

    def part_bounds(self) -> list[tuple[Part, int, int]]:
        out, pos = [], 0
        for p in self.parts:
            out.append((p, pos, pos + p.size))
            pos += p.size
        return out

    def blobs_in_range(self, start: int, end: int) -> list[str]:
        return [d for d, e in self.blobs.items() if e.overlaps(start, end)]

    def parts_holding(self, digest: str) -> list[str]:
        """The parts that hold a byte of this blob's frame (none for a blob not in this bundle)."""
        e = self.blobs.get(digest)
        return [] if e is None else [p.name for p, s, end in self.part_bounds() if e.overlaps(s, end)]

    def artifacts_using(self, digests: Iterable[str]) -> list[str]:
        bad = set(digests)
        return [a["ref"] for a in self.artifacts if bad.intersection(a.get("contents", []))]


# -- writing -----------------------------------------------------------------------------------------

SKIPPABLE_MAGIC = 0x184D2A50
_MAX_SKIP = 0xFFFFFFFF


RAW_HEAD = 14                   # magic (4), frame header descriptor and window (2), content size (8)


def raw_frame_length(content_size: int) -> int:
    """Exact length of a RawFrameWriter frame: its head + 3 bytes per 128 KiB block + the data."""
    blocks = max(1, -(-content_size // RAW_BLOCK))
    return RAW_HEAD + 3 * blocks + content_size


def raw_frame_head(content_size: int) -> bytes:
    """The RAW_HEAD bytes a RawFrameWriter frame starts with: magic, frame header, content size."""
    return RawFrameWriter.MAGIC + bytes([0xC0, (17 - 10) << 3]) + content_size.to_bytes(8, "little")


def skippable_header(length: int) -> bytes:
    """A zstd skippable frame header covering `length` bytes (header included): decoders ignore it."""
    return SKIPPABLE_MAGIC.to_bytes(4, "little") + (length - 8).to_bytes(4, "little")


_FALLOC_FL_KEEP_SIZE = 1


@functools.cache
def _libc_fallocate() -> Any:
    """libc's fallocate(2), or None where there is none (not Linux, no ctypes)."""
    try:
        import ctypes

        fallocate = ctypes.CDLL(None, use_errno=True).fallocate
    except (ImportError, OSError, AttributeError):
        return None
    fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
    return fallocate


def _fallocate_keep_size(fd: int, offset: int, length: int) -> bool:
    """fallocate(2) with FALLOC_FL_KEEP_SIZE: the blocks of a region are allocated, the file size is left.

    By hand through ctypes because os has only posix_fallocate, which changes the size and, where a file
    system lacks fallocate (FAT on a USB stick, for one), emulates it by writing every block. Returns
    whether the blocks were reserved; a system without the call (not Linux) or a file system without it
    (EOPNOTSUPP) is not an error, only ENOSPC is (raised as OSError).
    """
    fallocate = _libc_fallocate()
    if fallocate is None:
        return False
    if fallocate(fd, _FALLOC_FL_KEEP_SIZE, offset, length) == 0:
        return True
    import ctypes

    err = ctypes.get_errno()
    if err == errno.ENOSPC:
        raise OSError(err, os.strerror(err))
    return False


class _Stream:
    """The bundle's byte stream, already cut into part files, written at offsets (pwrite, GIL-free).

    Workers reserve a region of exactly their frame's length and write it in place, so finished blobs
    are never copied again: the part files *are* the output.
    """

    def __init__(self, directory: Path, name: str, split: int | None) -> None:
        self.dir = directory
        self.name = name
        self.split = split
        self._fds: dict[int, int] = {}
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()

    def part_name(self, i: int) -> str:
        return parthash.part_name(self.name, self.split, i)

    def _fd(self, i: int) -> int:
        with self._lock:
            fd = self._fds.get(i)
            if fd is None:
                fd = self._fds[i] = os.open(self.dir / self.part_name(i), os.O_RDWR | os.O_CREAT, 0o644)
            return fd

    def reserve(self, start: int, end: int) -> bool:
        """Allocate the disk blocks of [start, end) before anything is written there (the file sizes stay
        as they are). Returns whether the file system did; raises OSError(ENOSPC) when they do not fit."""
        pos = start
        done = True
        while pos < end:
            i, within, n = self._at(pos, end - pos)
            done = _fallocate_keep_size(self._fd(i), within, n) and done
            pos += n
        return done

    def _at(self, offset: int, n: int) -> tuple[int, int, int]:
        """Where stream byte `offset` is: (part, offset in that part, how many of the n bytes from there
        that part holds)."""
        if not self.split:
            return 0, offset, n
        i, within = divmod(offset, self.split)
        return i, within, min(n, self.split - within)

    def pwrite(self, offset: int, bufs: list[bytes | memoryview]) -> None:
        # One writer at a time, on a lock that sleeps: writers of one file queue on its inode lock in the
        # kernel, which spins while the holder runs. Four threads writing 1.1 GB into one file cost 0.42
        # CPU-seconds that way and 0.27 taking turns here (0.20 with the blocks reserved, see reserve).
        with self._write_lock:
            if not self.split:
                os.pwritev(self._fd(0), bufs, offset)
                return
            for b in bufs:
                view = memoryview(b)
                while view:
                    i, within, n = self._at(offset, len(view))
                    os.pwrite(self._fd(i), view[:n], within)
                    offset += n
                    view = view[n:]

    def readinto(self, offset: int, view: memoryview) -> int:
        """Read into `view` from `offset`, not across a part boundary; returns how many bytes were read."""
        i, within, n = self._at(offset, len(view))
        return os.preadv(self._fd(i), [view[:n]], within)

    def hash_into(self, h: Any, offset: int, n: int) -> int:
        """Hash up to n bytes from offset, not across a part boundary; returns how many were hashed."""
        i, within, n = self._at(offset, n)
        fd = self._fd(i)
        n = min(n, os.fstat(fd).st_size - within)
        hash_file_range(fd, within, within + n, h)
        return n

    def close(self) -> None:
        with self._lock:
            for fd in self._fds.values():
                os.close(fd)
            self._fds.clear()

    def finish(self, end: int) -> list[Path]:
        """Size every part exactly (last one ends at `end`) and close; return the part paths in order."""
        n = max(1, -(-end // self.split)) if self.split else 1
        paths = []
        for i in range(n):
            size = min(self.split, end - i * self.split) if self.split else end
            os.ftruncate(self._fd(i), size)
            paths.append(self.dir / self.part_name(i))
        for i, fd in list(self._fds.items()):
            os.close(fd)
            if i >= n:
                (self.dir / self.part_name(i)).unlink(missing_ok=True)
        self._fds.clear()
        return paths


class _StreamRange(io.RawIOBase):
    """[start, start+length) of a stream being written, read as a finished bundle's range is read."""

    def __init__(self, stream: _Stream, start: int, length: int) -> None:
        self.stream, self.pos, self.end = stream, start, start + length

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        want = min(len(b), self.end - self.pos)
        if want <= 0:
            return 0
        n = self.stream.readinto(self.pos, memoryview(b)[:want])
        self.pos += n
        return n


class _TrailingHasher:
    """Hashes the parts while the export still runs, following the stream's written front.

    Frames finish out of order, but the hasher only reads the finished prefix and the written part of the
    frame at its end (BundleWriter._advance), so by finalize every part's sha256 is all but done and the
    parts need not be read back.

    The hashing runs in a child process, told each new end over a pipe. On a thread of this process (the
    way before) it had the GIL to share with the downloads and, with both cores busy with them and a
    registry on loopback, a third of a core: the checksum ended 280-420 MB behind the last byte and hashed
    those alone on one core for 0.2 s while the other idled. With a child, finish() waits 0.01-0.16 s,
    and 1.1 GB from distribution v3 exports in 1.75 s instead of 1.92 (medians of 7, alternating). When
    no child can be started, or before one is worth it (under HASHER_CHILD_MIN bytes, as in an export with
    nothing new), finish() hashes here.
    """

    def __init__(self, stream: _Stream) -> None:
        self.stream = stream
        self.pos = 0                            # bytes handed over to be hashed, in order
        self.target = 0
        self._lock = threading.Lock()
        self._child: subprocess.Popen[str] | None = None
        self._no_child = False                  # a start failed, or hashing restarted: hash here
        self._stopped = False

    def want(self, end: int) -> None:
        """Raise the end to hash to (it only ever grows)."""
        with self._lock:
            self.target = max(self.target, end)

    def advance(self, end: int) -> None:
        """Hash up to `end` (bytes that will not change) in the background; returns at once."""
        with self._lock:
            self.target = max(self.target, end)
            if self._stopped or self.target < defaults.HASHER_CHILD_MIN or self.target <= self.pos:
                return
            child = self._start()
            if child is None:
                return
            try:
                assert child.stdin is not None
                child.stdin.write(f"{self.target}\n")
                child.stdin.flush()
            except OSError:                     # it died: finish() reports how
                return
            self.pos = self.target

    def _start(self) -> subprocess.Popen[str] | None:
        if self._child is None and not self._no_child:
            try:
                self._child = subprocess.Popen(
                    [sys.executable, "-I", parthash.__file__, str(self.stream.dir), self.stream.name,
                     str(self.stream.split or 0)],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            except OSError as e:
                log.debug("part hasher: no child process (%s); hashing in this one", e)
                self._no_child = True
        return self._child

    def _end_child(self) -> None:
        child, self._child = self._child, None
        if child is not None:
            child.kill()
            child.communicate()

    def restart(self) -> None:
        """Forget everything hashed (bytes it read may since have changed); hash again from the start."""
        with self._lock:
            self._end_child()
            self.pos = self.target = 0
            self._no_child = True               # rare (a frame failed): finish() hashes it all here

    def stop(self) -> None:
        """Stop hashing and end the child (a failed export: its files are about to be closed)."""
        with self._lock:
            self._stopped = True
            self._end_child()

    def finish(self, end: int) -> list[str]:
        """Hash up to `end` (the stream's end: nothing writes any more) and return every part's sha256."""
        with self._lock:
            self.target = max(self.target, end)
            child, self._child = self._child, None
            if child is not None:
                try:
                    out, err = child.communicate(f"END {self.target}\n")
                except OSError as e:
                    out, err = "", str(e)
                if child.returncode == 0:
                    self.pos = self.target
                    sums: list[str] = json.loads(out)
                    return sums
                # hashed again here: a read error is then raised here, anything else of the child's is moot
                log.debug("part hasher's process failed (%s); hashing here", (err.strip().splitlines() or [""])[-1])
            return self._hash_here(self.target)

    def _hash_here(self, end: int) -> list[str]:
        sums = parthash.PartSums(self.stream.split)
        while sums.pos < end:
            if self.stream.hash_into(sums, sums.pos, min(end - sums.pos, 4 * defaults.CHUNK_SIZE)) <= 0:
                raise BundleError(f"the stream ends early at {sums.pos}", where=str(self.stream.dir))
        self.pos = sums.pos
        return sums.sums()


class BundleWriter:
    """Write side of a bundle: a Store that accepts blobs and manifests, then `finalize()`.

    Layout of the stream, fixed by the content alone so an interrupted and resumed export ends
    byte-identical to an uninterrupted one:
      [directory entries][already-compressed layers, sorted by digest, at planned offsets]
      [other blobs and manifests, zstd-compressed, sorted by digest][oci-layout][index.json][tar trailer]
    Already-compressed layers (the bulk) are stored as raw zstd blocks whose frame length is known in
    advance, so `prepare()` gives each its offset and workers write them straight into the part files:
    nothing big is ever copied twice. The rest is compressed into `.work/frames/` and appended at finalize.
    `.work/journal` records each finished blob (after its bytes), so a rerun after any interruption,
    SIGKILL included, reuses every finished blob. Planned slots never filled (a failure) become zstd
    skippable frames, so the stream stays valid for `zstd -d | tar -x`.
    """

    single_namespace = True
    verifies_blobs = True           # put_blob checks digest and size itself

    def __init__(self, directory: str | os.PathLike[str], *, name: str = defaults.BUNDLE_NAME,
                 split_size: int | None = None, level: int = defaults.ZSTD_LEVEL,
                 baseline: set[str] | None = None) -> None:
        self.dir = Path(directory)
        self.name = name
        self.split_size = split_size
        self.level = level
        self.baseline = set(baseline or ())
        self.label = f"bundle {self.dir}"
        self.work = self.dir / WORK
        self.frames = self.work / "frames"
        params = {"name": name, "split_size": split_size, "format_version": defaults.BUNDLE_FORMAT_VERSION}
        pfile = self.work / "params.json"
        if self.work.exists() and (not pfile.exists() or json.loads(pfile.read_text()) != params):
            shutil.rmtree(self.work)            # an interrupted run with other settings: start over
        self.frames.mkdir(parents=True, exist_ok=True)
        pfile.write_text(json.dumps(params))
        self._lock = threading.Lock()
        self._stream = _Stream(self.work, name, split_size)
        self._head = zstandard.ZstdCompressor().compress(tar_header("blobs/", 0) + tar_header("blobs/sha256/", 0))
        self._plan: dict[str, tuple[int, int]] = {}         # digest -> (offset, frame length)
        self._planned_end = len(self._head)
        self.done: dict[str, BlobEntry] = {}                # in the stream (planned slots)
        self.staged: dict[str, BlobEntry] = {}              # in .work/frames (offset assigned at finalize)
        self._media: dict[str, str] = {}
        self._load_journal()
        self._journal = (self.work / "journal").open("a")
        self._stream.pwrite(0, [self._head])
        self._hasher = _TrailingHasher(self._stream)
        self._finished: dict[int, int] = {0: len(self._head)}   # offset -> length of finished regions
        self._prefix = 0                                          # every byte below this is final
        self._writing: dict[int, int] = {}      # frame offset -> end of its bytes written so far
        self._rehash = False                    # a frame failed after the hasher had read part of it

    # -- journal and plan ---------------------------------------------------------------------------
    def _load_journal(self) -> None:
        journal = self.work / "journal"
        if not journal.exists():
            return
        entries: dict[str, BlobEntry] = {}
        for line in journal.read_text().splitlines():
            try:
                e = json.loads(line)
            except ValueError:
                continue                        # a line cut by a kill: that blob is simply fetched again
            entries[e["digest"]] = BlobEntry(e["size"], e["offset"], e["length"], e.get("media_type", ""))
        # A journal line is written after its blob's bytes, but neither is synced: after a power cut the
        # line can be on disk and the bytes not (reserved blocks read as zeros, a frame file is empty).
        # Every blob is read back and checked as an import would check it before it is reused; one that
        # fails is fetched again. Hashing runs without the GIL, in parallel, at ~1.5 GB/s per core.
        with ThreadPoolExecutor(defaults.JOBS) as pool:
            intact = list(pool.map(self._intact, entries.items()))
        for (digest, entry), ok in zip(entries.items(), intact, strict=True):
            if not ok:
                log.warning("%s: %s from the interrupted run is not intact on disk; fetching it again",
                            self.label, digest)
            elif entry.offset < 0:
                self.staged[digest] = entry
            else:
                self.done[digest] = entry

    def _intact(self, item: tuple[str, BlobEntry]) -> bool:
        """Whether a journaled blob's frame holds exactly that blob: its frame head, block headers, tar
        header and padding as they must be, and its bytes of the blob's digest and size."""
        digest, e = item
        open_frame: Callable[[], io.RawIOBase]
        if e.offset < 0:
            path = self._frame(digest)
            open_frame = lambda: io.FileIO(path)  # noqa: E731
        else:
            open_frame = lambda: _StreamRange(self._stream, e.offset, e.length)  # noqa: E731
        try:
            if e.offset < 0 and path.stat().st_size != e.length:
                return False
            with _blob_in_frame(open_frame, e, self.label, digest) as chunks:
                for _ in Verifier(chunks, digest, e.size):
                    pass
            return True
        except (MirrorError, OSError, zstandard.ZstdError):
            return False

    def _frame(self, digest: str) -> Path:
        return self.frames / digest.replace(":", "-")

    def prepare(self, blobs: Iterable[Descriptor]) -> None:
        """Give every already-compressed layer its place in the stream (called by copy after planning)."""
        raw = sorted({d.digest: d for d in blobs
                      if d.media_type.endswith(COMPRESSED_SUFFIXES) and d.digest not in self.baseline}.values(),
                     key=lambda d: d.digest)
        pos = len(self._head)
        plan = {}
        for d in raw:
            length = raw_frame_length(TAR_BLOCK + d.size + padding(d.size))
            plan[d.digest] = (pos, length)
            pos += length
        # The layers' blocks are allocated before the first byte comes (a file system that allocates as
        # pages are written does that work for every 4 KiB page otherwise: 0.07-0.13 CPU-seconds per GB
        # here), and a bundle that cannot fit fails now, not after most of it was fetched.
        try:
            self._stream.reserve(len(self._head), pos)
        except OSError as err:
            if err.errno != errno.ENOSPC:
                raise
            free = shutil.disk_usage(self.work).free
            raise DiskFullError(f"disk full: the bundle's layers need {(pos - len(self._head)) / 1e6:.1f} MB "
                                f"here, {free / 1e6:.1f} MB are free", where=str(self.dir),
                                hint="free space or export to another -o; rerunning resumes") from err
        with self._lock:
            self._plan, self._planned_end = plan, pos
            # a blob finished by an earlier run at another place (the content changed): fetch it again
            for digest, e in list(self.done.items()):
                if plan.get(digest) != (e.offset, e.length):
                    del self.done[digest]
                else:
                    self._finished[e.offset] = e.length
        self._advance()

    def _advance(self) -> None:
        """Let the part hasher follow the written front: the finished prefix, and the bytes written so far
        of the frame being written there (final unless that frame fails, see `_put_blob`). Following only
        finished frames, hashing began when the first frame was done (1.1 s into a 2.5 s export) and
        ended 0.2-0.3 s after the last byte arrived, on one core."""
        with self._lock:
            while self._prefix in self._finished:
                self._prefix += self._finished[self._prefix]
            front = self._writing.get(self._prefix, self._prefix)
            go = front - self._hasher.pos >= 8 * defaults.CHUNK_SIZE
            if go:
                self._hasher.want(front)    # under the lock: see the failure path in _put_blob
        if go:
            self._hasher.advance(front)

    def _written(self, offset: int, end: int) -> None:
        with self._lock:
            self._writing[offset] = end
            at_front = offset == self._prefix
        if at_front:
            self._advance()

    def _record(self, digest: str, entry: BlobEntry, *, staged: bool) -> None:
        with self._lock:
            (self.staged if staged else self.done)[digest] = entry
            line = {"digest": digest, **entry.__dict__}
            if staged:
                line["offset"] = -1
            self._journal.write(json.dumps(line) + "\n")
            self._journal.flush()

    # -- Store ------------------------------------------------------------------------------------------
    def repo_of(self, ref: Reference) -> str:
        return ref.name

    def has_blob(self, repo: str, desc: Descriptor) -> bool:
        if desc.digest in self.baseline:
            return True
        e = self.done.get(desc.digest) or self.staged.get(desc.digest)
        if e is not None and desc.media_type and not e.media_type:
            e.media_type = desc.media_type
        return e is not None

    def has_manifest(self, repo: str, desc: Descriptor) -> bool:
        # An artifact is never taken as complete from an earlier run's journal: copy would then skip its
        # blobs, and a blob of it can still have to be fetched again (prepare() moves it when the content
        # changed). Its manifests and blobs are each skipped by has_blob instead.
        return False

    def open_blob(self, repo: str, desc: Descriptor) -> AbstractContextManager[Iterator[bytes]]:
        raise NotFoundError("a bundle being written cannot be read", where=self.label)

    def get_manifest(self, ref: Reference) -> Manifest:
        raise NotFoundError("a bundle being written cannot be read", where=self.label)

    def put_blob(self, repo: str, desc: Descriptor, chunks: Iterable[bytes]) -> None:
        try:
            self._put_blob(desc, chunks)
        except OSError as e:
            if e.errno == errno.ENOSPC:
                raise DiskFullError("disk full while writing the bundle", where=str(self.dir),
                                    hint="free space or export to another -o; rerunning resumes") from e
            raise

    def _put_blob(self, desc: Descriptor, chunks: Iterable[bytes]) -> None:
        total = TAR_BLOCK + desc.size + padding(desc.size)
        header = tar_header(blob_member(desc.digest), desc.size)
        data = Verifier(chunks, desc.digest, desc.size, where=self.label)
        slot = self._plan.get(desc.digest)
        if slot is not None:
            # Already-compressed layer: raw zstd blocks straight into its planned place (no CPU, no copy).
            w = RawFrameWriter(self._stream, slot[0], total, flushed=lambda end: self._written(slot[0], end))
            try:
                w.write(header)
                for chunk in data:
                    w.write(chunk)
                w.write(b"\0" * padding(desc.size))
                w.close()
            except BaseException:
                # The hasher may have read bytes of this frame that a retry or finalize's gap filling
                # will change: finalize hashes the parts again from the start (only after a failure).
                with self._lock:
                    self._writing.pop(slot[0], None)
                    if self._hasher.target > slot[0]:
                        self._rehash = True
                raise
            self._record(desc.digest, BlobEntry(desc.size, slot[0], slot[1], desc.media_type), staged=False)
            with self._lock:
                self._writing.pop(slot[0], None)
                self._finished[slot[0]] = slot[1]
            self._advance()
            return
        final = self._frame(desc.digest)
        tmp = final.with_name(f"{final.name}.{threading.get_ident()}.tmp")
        try:
            with tmp.open("wb") as f:
                cctx = zstandard.ZstdCompressor(level=self.level, write_content_size=True)
                with cctx.stream_writer(f, size=total, closefd=False) as z:
                    z.write(header)
                    for chunk in data:
                        z.write(chunk)
                    z.write(b"\0" * padding(desc.size))
                length = f.tell()
            tmp.replace(final)
        finally:
            tmp.unlink(missing_ok=True)
        self._record(desc.digest, BlobEntry(desc.size, -1, length, desc.media_type), staged=True)

    def put_manifest(self, ref: Reference, manifest: Manifest) -> None:
        desc = manifest.descriptor
        if desc.digest not in self.done and desc.digest not in self.staged:    # a delta carries its manifests
            self.put_blob("", Descriptor(manifest.media_type, desc.digest, desc.size), [manifest.data])
        with self._lock:
            self._media[desc.digest] = manifest.media_type

    def close(self) -> None:
        """Release files without publishing (a failed export); `.work` stays for the rerun to reuse."""
        self._hasher.stop()
        if not self._journal.closed:
            self._journal.close()
        self._stream.close()

    # -- finalize ---------------------------------------------------------------------------------------
    def _small_frame(self, name: str, data: bytes) -> bytes:
        raw = tar_header(name, len(data)) + data + b"\0" * padding(len(data))
        return zstandard.ZstdCompressor(level=self.level).compress(raw)

    def finalize(self, artifacts: list[dict[str, Any]], *, depends_on: list[dict[str, Any]] | None = None,
                 external_blobs: Iterable[str] = (),
                 sign: Callable[[list[Path]], object] | None = None) -> BundleInfo:
        """Complete the stream and publish bundle.json. Everything before this is invisible to verify.
        `sign(files)` signs SHA256SUMS and bundle.json (as `<file>.sig`) before they are put in place."""
        # Only what the artifacts use goes into the index (frames of content dropped since an
        # interrupted run are left out); without artifacts (library use) everything written is kept.
        used = {d for a in artifacts for d in a.get("contents", [a["digest"]])}

        def wanted(d: str) -> bool:
            # a delta carries every manifest, even one its baseline lists (receipts list manifests too)
            return (d not in self.baseline or d in self._media) and (not artifacts or d in used)

        blobs: dict[str, BlobEntry] = {d: e for d, e in self.done.items() if wanted(d)}
        covered = [(0, len(self._head))] + [(e.offset, e.length) for e in blobs.values()]
        pos = self._planned_end
        for digest in sorted(d for d in self.staged if wanted(d) and d not in blobs):
            e = self.staged[digest]
            with self._frame(digest).open("rb") as f:
                start = pos
                while buf := f.read(defaults.CHUNK_SIZE * 4):
                    self._stream.pwrite(pos, [buf])
                    pos += len(buf)
            blobs[digest] = BlobEntry(e.size, start, pos - start, e.media_type)
        # index.json names every artifact by its full source reference (tag, or digest when pinned only).
        index: dict[str, Any] = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
        for art in sorted(artifacts, key=lambda a: a["ref"]):
            index["manifests"].append({"mediaType": art["media_type"], "digest": art["digest"],
                                       "size": art["manifest_size"],
                                       "annotations": {ANNOTATION_REF_NAME: art["ref"]}})
        tail = (self._small_frame("oci-layout", json.dumps({"imageLayoutVersion": "1.0.0"}).encode())
                + self._small_frame("index.json", json.dumps(index, indent=1).encode())
                + zstandard.ZstdCompressor().compress(b"\0" * (2 * TAR_BLOCK)))
        self._stream.pwrite(pos, [tail])
        end = pos + len(tail)
        self._fill_gaps(sorted(covered), self._planned_end)
        self._journal.close()
        # Nothing below the prefix changed since it was hashed: gaps lie above it, by definition, unless a
        # frame failed after the hasher had read into it.
        if self._rehash:
            self._hasher.restart()
        sums = self._hasher.finish(end)
        paths = self._stream.finish(end)
        parts = [Part(p.name, p.stat().st_size, h) for p, h in zip(paths, sums, strict=True)]
        for d, mt in self._media.items():
            if d in blobs:
                blobs[d].media_type = mt
        info = BundleInfo(
            id=str(uuid.uuid4()), created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            tool_version=__version__, artifacts=artifacts, blobs=dict(sorted(blobs.items())), parts=parts,
            name=self.name, split_size=self.split_size, depends_on=list(depends_on or []),
            external_blobs=sorted(set(external_blobs)),
        )
        self._publish(paths, info, sign)
        return info

    def _fill_gaps(self, used: list[tuple[int, int]], end: int) -> None:
        """Cover planned slots that hold no finished frame with skippable frames (decoders ignore them)."""
        pos = 0
        for off, length in [*used, (end, 0)]:
            while off - pos >= 8:
                n = min(off - pos, _MAX_SKIP)
                if 0 < off - pos - n < 8:
                    n -= 8
                self._stream.pwrite(pos, [skippable_header(n)])
                pos += n
            if off < pos:
                raise BundleError(f"overlapping frames at offset {off}", where=self.label)
            pos = max(pos, off + length)

    def _publish(self, paths: list[Path], info: BundleInfo, sign: Callable[[list[Path]], object] | None) -> None:
        # SHA256SUMS and bundle.json are written, and signed, in the work directory first: a signing that
        # fails changes nothing in the bundle directory, and a rerun resumes from the work directory.
        staged = {SUMS: "".join(f"{p.sha256}  {p.name}\n" for p in info.parts),
                  BUNDLE_JSON: json.dumps(info.to_json(), indent=1) + "\n"}
        tmps = {name: self.work / name for name in staged}
        for name, text in staged.items():
            tmps[name].write_text(text)
        if sign is not None:
            sign(list(tmps.values()))
        # Retire any older bundle in this directory first: bundle.json goes first, so at no moment
        # does a bundle.json describe parts that are not (yet) the right ones.
        (self.dir / BUNDLE_JSON).unlink(missing_ok=True)
        for old in self.dir.glob(f"{self.name}.tar.zst*"):
            old.unlink()
        for name in (SUMS, SUMS + SIG, BUNDLE_JSON + SIG):
            (self.dir / name).unlink(missing_ok=True)
        for p in paths:
            p.replace(self.dir / p.name)
        if sign is not None:
            for name, t in tmps.items():
                t.with_name(t.name + SIG).replace(self.dir / (name + SIG))
        tmps[SUMS].replace(self.dir / SUMS)
        tmps[BUNDLE_JSON].replace(self.dir / BUNDLE_JSON)        # last of all
        shutil.rmtree(self.work, ignore_errors=True)


# -- reading -----------------------------------------------------------------------------------------

class _RangeReader(io.RawIOBase):
    """A file-like view of [start, start+length) over the concatenated parts, without joining them."""

    def __init__(self, directory: Path, info: BundleInfo, start: int, length: int) -> None:
        self.dir = directory
        self.bounds = info.part_bounds()
        self.pos = start
        self.end = start + length
        self._f: io.BufferedReader | None = None
        self._fend = 0

    def readable(self) -> bool:
        return True

    def _seek_part(self) -> None:
        for part, s, e in self.bounds:
            if s <= self.pos < e:
                if self._f:
                    self._f.close()
                path = self.dir / part.name
                try:
                    self._f = path.open("rb")
                except FileNotFoundError:
                    raise PartError(f"part {part.name} is missing", where=str(self.dir),
                                    hint="copy the part again from the export side") from None
                self._f.seek(self.pos - s)
                self._fend = e
                return
        raise PartError(f"offset {self.pos} is beyond the last part", where=str(self.dir))

    def file_spans(self, length: int, offsets: list[int], n: int) -> list[filesend.Span] | None:
        """Where the next `length` bytes are, as (fd, offset, n) for each of `offsets` into them, and skip
        past them; None, skipping nothing, where they do not all lie in one part."""
        if self.pos + length > self.end:
            return None
        if self._f is None or self.pos >= self._fend:
            self._seek_part()
        assert self._f is not None
        if self.pos + length > self._fend:
            return None
        here = self._f.tell()
        fd = self._f.fileno()
        self._f.seek(here + length)
        self.pos += length
        return [(fd, here + o, n) for o in offsets]

    def readinto(self, b: Any) -> int:
        want = min(len(b), self.end - self.pos)
        if want <= 0:
            return 0
        if self._f is None or self.pos >= self._fend:
            self._seek_part()
        assert self._f is not None
        want = min(want, self._fend - self.pos)
        n = self._f.readinto(memoryview(b)[:want])
        if not n:
            raise PartError(f"part ends early at global offset {self.pos} (truncated?)", where=str(self.dir),
                            hint="copy the part again and run `airgap-mirror verify`")
        self.pos += n
        return n

    def close(self) -> None:
        if self._f:
            self._f.close()
        super().close()


class BundleReader:
    """Read side of a bundle: a Store over the parts, each blob streamed from its own frame."""

    single_namespace = True

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.dir = Path(directory)
        self.info = BundleInfo.load(self.dir)
        self.label = f"bundle {self.dir}"
        self._by_ref = {a["ref"]: a for a in self.info.artifacts}

    def repo_of(self, ref: Reference) -> str:
        return ref.name

    def has_blob(self, repo: str, desc: Descriptor) -> bool:
        return desc.digest in self.info.blobs

    has_manifest = has_blob

    def raw_frame(self, digest: str) -> IO[bytes]:
        e = self.info.blobs.get(digest)
        if e is None:
            raise NotFoundError(f"blob {digest} is not in this bundle", where=self.label,
                                hint="it belongs to the bundle this delta depends on")
        return io.BufferedReader(_RangeReader(self.dir, self.info, e.offset, e.length), _read_size(e.length))

    def open_blob(self, repo: str, desc: Descriptor) -> AbstractContextManager[Iterator[bytes]]:
        e = self.info.blobs.get(desc.digest)
        if e is None:
            raise NotFoundError(f"blob {desc.digest} is not in this bundle", where=self.label)
        return _blob_in_frame(lambda: _RangeReader(self.dir, self.info, e.offset, e.length), e,
                              self.label, desc.digest)

    def read_blob(self, digest: str) -> bytes:
        e = self.info.blobs[digest]
        with self.open_blob("", Descriptor(e.media_type, digest, e.size)) as chunks:
            return b"".join(Verifier(chunks, digest, e.size, where=self.label))

    def get_manifest(self, ref: Reference) -> Manifest:
        digest = ref.digest
        if digest is None:
            art = self._by_ref.get(str(ref))
            if art is None:
                raise NotFoundError(f"{ref} is not in this bundle", where=self.label,
                                    hint="`airgap-mirror inspect` lists what it holds")
            digest = art["digest"]
        if digest not in self.info.blobs:
            raise NotFoundError(f"manifest {digest} is not in this bundle", where=self.label)
        try:
            data = self.read_blob(digest)
        except (DigestMismatchError, PartError) as e:       # damage, named by digest (copy's damage_fails_all)
            raise SourceDamageError(f"manifest {digest}: {e.what}", damaged={digest: e.what},
                                    where=self.label, hint=e.hint) from e
        mt, _ = parse_manifest(data, self.info.blobs[digest].media_type or None)
        return Manifest(data, mt, digest)

    def put_blob(self, repo: str, desc: Descriptor, chunks: Iterable[bytes]) -> None:
        raise BundleError("bundles are read-only", where=self.label)

    def put_manifest(self, ref: Reference, manifest: Manifest) -> None:
        raise BundleError("bundles are read-only", where=self.label)


def _read_size(length: int) -> int:
    """Read buffers as big as the frame, up to a chunk: a 2 KB config does not hold 1 MiB while it is read."""
    return max(1, min(defaults.CHUNK_SIZE, length))


_RAW_GROUP = 8                  # raw blocks read per pread: 1 MiB of blob per chunk


def _frame_error(digest: str, what: str, where: str) -> PartError:
    return PartError(f"frame of {digest} {what}", where=where,
                     hint="copy the affected part again and run `airgap-mirror verify`")


def _fill(rng: io.RawIOBase, view: memoryview, where: str, digest: str) -> None:
    got = 0
    while got < len(view):
        n = rng.readinto(view[got:])
        if not n:
            raise _frame_error(digest, "ends early", where)
        got += n


def _raw_chunks(rng: io.RawIOBase, size: int, where: str, digest: str) -> Iterator[bytes]:
    """The blob inside a RawFrameWriter frame, read without a decoder (one copy less than zstd's, and no
    buffer in between). Everything around the blob is known in advance from its digest and size, the block
    headers, the tar header and the padding, so each is compared, not skipped on trust: a damaged byte
    there is a PartError here, a damaged byte in the blob is the digest check's."""
    end = TAR_BLOCK + size                             # the blob is member bytes [TAR_BLOCK, end)
    total = end + padding(size)
    tar_head = tar_header(blob_member(digest), size)
    nblocks = max(1, -(-total // RAW_BLOCK))
    # as big as the frame, up to a group: a config of 2 KB does not hold 1 MiB while it is read
    view = memoryview(bytearray(min(_RAW_GROUP, nblocks) * 3 + min(_RAW_GROUP * RAW_BLOCK, total)))
    spans_of = getattr(rng, "file_spans", None)
    for first in range(0, nblocks, _RAW_GROUP):
        stop = min(first + _RAW_GROUP, nblocks)
        if first and stop * RAW_BLOCK <= end and spans_of is not None and filesend.offered():
            # Whole blocks of blob bytes only (no tar header, no padding): where the consumer takes them,
            # their bytes go from the part file to the socket (mirror.filesend); their block headers are
            # then not read here, the digest check in the target covers the blob and `verify` the frame.
            spans = spans_of((stop - first) * (3 + RAW_BLOCK),
                             [(k - first) * (3 + RAW_BLOCK) + 3 for k in range(first, stop)], RAW_BLOCK)
            if spans is not None:
                yield filesend.chunk(spans)
                if not filesend.sent():
                    raise BundleError(f"the bytes of {digest} were not sent from the part file", where=where)
                continue
        blocks = []                                    # (offset in the buffer, member offset, length, last)
        at = 0
        for k in range(first, stop):
            blen = min(RAW_BLOCK, total - k * RAW_BLOCK)
            blocks.append((at, k * RAW_BLOCK, blen, k == nblocks - 1))
            at += 3 + blen
        _fill(rng, view[:at], where, digest)
        out = []
        for off, mpos, blen, last in blocks:
            if view[off:off + 3] != (int(last) | (blen << 3)).to_bytes(3, "little"):
                raise _frame_error(digest, f"is corrupted: bad block header at member byte {mpos}", where)
            data = view[off + 3:off + 3 + blen]
            head = data[:max(0, TAR_BLOCK - mpos)]
            if head and head != tar_head[mpos:mpos + len(head)]:
                raise _frame_error(digest, "is corrupted: its tar header differs", where)
            if any(data[max(0, end - mpos):]):
                raise _frame_error(digest, "is corrupted: non-zero tar padding", where)
            lo, hi = max(mpos, TAR_BLOCK), min(mpos + blen, end)
            if lo < hi:
                out.append(data[lo - mpos:hi - mpos])
        if out:
            yield b"".join(out)


@contextmanager
def _blob_in_frame(open_frame: Callable[[], io.RawIOBase], e: BlobEntry, where: str,
                   digest: str) -> Iterator[Iterator[bytes]]:
    """The blob inside its frame, whose bytes `open_frame()` reads from the start: a RawFrameWriter frame
    without a decoder, any other through zstd. The bundle reader and the writer's rerun check both read so."""
    total = TAR_BLOCK + e.size + padding(e.size)
    if e.length == raw_frame_length(total):
        rng = open_frame()
        try:
            head = bytearray(RAW_HEAD)
            _fill(rng, memoryview(head), where, digest)
            if bytes(head) == raw_frame_head(total):
                yield _raw_chunks(rng, e.size, where, digest)
                return
        finally:
            rng.close()
    raw = io.BufferedReader(open_frame(), _read_size(e.length))
    reader = zstandard.ZstdDecompressor().stream_reader(raw, read_size=_read_size(e.length))
    try:
        yield _data_chunks(reader, e.size, where, digest)
    finally:
        reader.close()
        raw.close()


def _read_upto(reader: Any, n: int) -> bytes:
    """n bytes, or fewer only where the frame ends."""
    out = b""
    while len(out) < n and (buf := reader.read(n - len(out))):
        out += buf
    return out


def _data_chunks(reader: Any, size: int, where: str, digest: str) -> Iterator[bytes]:
    """The blob inside a compressed frame. As for raw frames, the tar header and the padding around it are
    compared with what they must be and the frame must end there; the blob itself is the digest check's."""
    try:
        if _read_upto(reader, TAR_BLOCK) != tar_header(blob_member(digest), size):
            raise _frame_error(digest, "is corrupted: its tar header differs", where)
        left = size
        while left:
            buf = reader.read(min(defaults.CHUNK_SIZE, left))
            if not buf:
                raise _frame_error(digest, "ends early", where)
            left -= len(buf)
            yield buf
        tail = _read_upto(reader, padding(size) + 1)
    except zstandard.ZstdError as e:
        raise _frame_error(digest, f"is corrupted: {e}", where) from e
    if len(tail) != padding(size) or any(tail):
        raise _frame_error(digest, "is corrupted: bad tar padding or a longer frame", where)


# -- verify ------------------------------------------------------------------------------------------

@dataclass
class VerifyReport:
    bad_parts: dict[str, str] = field(default_factory=dict)       # part name -> problem
    bad_blobs: dict[str, str] = field(default_factory=dict)       # digest -> problem
    affected: list[str] = field(default_factory=list)
    checked_blobs: int = 0
    checked_bytes: int = 0

    @property
    def ok(self) -> bool:
        return not self.bad_parts and not self.bad_blobs


def _hash_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        hash_file_range(f.fileno(), 0, os.fstat(f.fileno()).st_size, h)
    return h.hexdigest()


def check_parts(directory: Path, info: BundleInfo, jobs: int = defaults.JOBS, *,
                checksums: bool = True) -> dict[str, str]:
    """Every part on its own: present, right size, and (unless `checksums=False`, the instant check)
    right checksum. Returns {part: problem}."""
    bad: dict[str, str] = {}

    def one(p: Part) -> tuple[str, str | None]:
        path = directory / p.name
        if not path.exists():
            return p.name, "missing"
        size = path.stat().st_size
        if size != p.size:
            return p.name, f"truncated or extended: {size} bytes, expected {p.size}"
        if checksums and _hash_file(path) != p.sha256:
            return p.name, "checksum mismatch (corrupted)"
        return p.name, None

    with ThreadPoolExecutor(max(1, min(jobs, 4))) as pool:
        for name, problem in pool.map(one, info.parts):
            if problem:
                bad[name] = problem
    if not checksums:
        return bad
    sums = directory / SUMS
    if not sums.exists():
        bad[SUMS] = "missing"
    else:
        listed: dict[str, str] = {}
        for line in sums.read_text().splitlines():
            checksum, _, name = line.strip().partition(" ")
            if name:
                listed[name.strip()] = checksum
        for p in info.parts:
            if listed.get(p.name.strip()) != p.sha256 and listed.get(f"*{p.name}") != p.sha256:
                bad.setdefault(SUMS, f"does not list {p.name} with its checksum")
    return bad


def verify(directory: str | os.PathLike[str], *, jobs: int = defaults.JOBS,
           on_blob: Callable[[int], None] | None = None) -> VerifyReport:
    """Check every part's checksum and every blob's digest."""
    d = Path(directory)
    info = BundleInfo.load(d)
    report = VerifyReport()
    report.bad_parts = check_parts(d, info, jobs)
    reader = BundleReader(d)

    def one(item: tuple[str, BlobEntry]) -> tuple[str, str | None, int]:
        digest, e = item
        if report.bad_parts and report.bad_parts.keys() & set(info.parts_holding(digest)):
            return digest, "in a bad part", 0
        try:
            with reader.open_blob("", Descriptor(e.media_type, digest, e.size)) as chunks:
                for _ in Verifier(chunks, digest, e.size, where=str(d)):
                    pass
        except (DigestMismatchError, PartError, zstandard.ZstdError) as exc:
            return digest, str(exc), 0
        return digest, None, e.size

    with ThreadPoolExecutor(max(1, jobs)) as pool:
        for digest, problem, n in pool.map(one, info.blobs.items()):
            report.checked_blobs += 1
            report.checked_bytes += n
            if on_blob:
                on_blob(n)
            if problem:
                report.bad_blobs[digest] = problem
    bad_digests = set(report.bad_blobs)
    for _, s, e in ((p, s, e) for p, s, e in info.part_bounds() if p.name in report.bad_parts):
        bad_digests.update(info.blobs_in_range(s, e))
    report.affected = info.artifacts_using(bad_digests)
    return report
