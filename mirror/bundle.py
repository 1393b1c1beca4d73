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

import hashlib
import io
import json
import os
import shutil
import tarfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import zstandard

from . import __version__, defaults
from .digest import Verifier
from .errors import BundleError, BundleVersionError, DigestMismatchError, NotFoundError, PartError
from .mediatypes import ANNOTATION_REF_NAME, OCI_INDEX, Descriptor, parse_manifest
from .reference import Reference
from .store import Manifest

BUNDLE_JSON = "bundle.json"
SUMS = "SHA256SUMS"
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
    """'700M', '4G', '1.5GiB', '123' -> bytes (K/M/G/T are binary multiples, as split(1) uses)."""
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
    return n


COMPRESSED_SUFFIXES = ("gzip", "zstd", "+gzip", "+zstd", ".gz", "tar.gz")
RAW_BLOCK = 128 << 10


class RawFrameWriter:
    """A zstd frame made only of raw (stored) blocks, for data that is already compressed.

    Hand-written because no zstd binding exposes "store": the format is a 4-byte magic, a frame header
    (content size; a 128 KiB window so `zstd -d` needs no extra memory flags) and 3-byte block headers.
    Standard decoders read it like any other frame; writing it costs only a memcpy.
    """

    MAGIC = b"\x28\xb5\x2f\xfd"

    def __init__(self, f: IO[bytes], content_size: int) -> None:
        self.f = f
        self.left = content_size
        self.buf = bytearray()
        self.out = bytearray()
        # descriptor: FCS field 8 bytes (flag 3), not single-segment; window descriptor: 2^17 bytes
        f.write(self.MAGIC + bytes([0xC0, (17 - 10) << 3]) + content_size.to_bytes(8, "little"))
        if content_size == 0:
            f.write((1).to_bytes(3, "little"))           # one empty last raw block

    def _block(self, data: bytes | memoryview, last: bool) -> None:
        self.out += (int(last) | (len(data) << 3)).to_bytes(3, "little")
        self.out += data
        if len(self.out) >= 8 * RAW_BLOCK or last:
            self.f.write(self.out)                    # one syscall per ~1 MiB, not two per block
            self.out.clear()

    def write(self, data: bytes) -> int:
        self.buf += data
        while len(self.buf) >= RAW_BLOCK:
            self.left -= RAW_BLOCK
            self._block(memoryview(self.buf)[:RAW_BLOCK], last=self.left == 0)
            del self.buf[:RAW_BLOCK]
        return len(data)

    def __enter__(self) -> RawFrameWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is not None:
            return
        if self.buf:
            self.left -= len(self.buf)
            self._block(bytes(self.buf), last=True)
            self.buf.clear()
        if self.left != 0:
            raise BundleError(f"raw frame content size mismatch ({self.left} bytes left)")


# -- the description --------------------------------------------------------------------------------

@dataclass
class BlobEntry:
    size: int
    offset: int            # global offset of the frame over the concatenated parts
    length: int            # compressed frame length
    media_type: str = ""


@dataclass
class Part:
    name: str
    size: int
    sha256: str


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
            raise NotFoundError("no bundle.json: not a bundle directory", where=str(directory),
                                hint="pass the directory written by `airgap-mirror export -o`")
        try:
            doc = json.loads(path.read_text())
        except ValueError as e:
            raise BundleError(f"bundle.json is not valid JSON: {e}", where=str(path)) from e
        version = doc.get("format_version")
        if not isinstance(version, int) or version > defaults.BUNDLE_FORMAT_VERSION:
            raise BundleVersionError(
                f"bundle format version {version} is newer than this tool understands "
                f"({defaults.BUNDLE_FORMAT_VERSION})", where=str(path),
                hint="upgrade airgap-mirror on this side to the version that wrote the bundle")
        return cls(
            id=doc["id"], created=doc["created"], tool_version=doc.get("tool_version", ""),
            artifacts=doc["artifacts"], name=doc.get("name", defaults.BUNDLE_NAME),
            blobs={d: BlobEntry(**e) for d, e in doc["blobs"].items()},
            parts=[Part(**p) for p in doc["parts"]], format_version=version,
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
        return [d for d, e in self.blobs.items() if e.offset < end and e.offset + e.length > start]

    def artifacts_using(self, digests: Iterable[str]) -> list[str]:
        bad = set(digests)
        return [a["ref"] for a in self.artifacts if bad.intersection(a.get("contents", []))]


# -- writing -----------------------------------------------------------------------------------------

class _CountingWriter(io.RawIOBase):
    def __init__(self, f: IO[bytes]) -> None:
        self.f = f
        self.n = 0

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        n = self.f.write(b)
        self.n += n
        return n


class BundleWriter:
    """Write side of a bundle: a Store that accepts blobs and manifests, then `finalize()`."""

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
        self.frames.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._media: dict[str, str] = {}

    def repo_of(self, ref: Reference) -> str:
        return ref.name

    def _frame(self, digest: str) -> Path:
        return self.frames / digest.replace(":", "-")

    def has_blob(self, repo: str, desc: Descriptor) -> bool:
        if desc.digest in self.baseline:
            return True
        if not self._frame(desc.digest).exists():
            return False
        if desc.media_type:     # a frame reused from an interrupted run: keep its media type for bundle.json
            with self._lock:
                self._media.setdefault(desc.digest, desc.media_type)
        return True

    def has_manifest(self, repo: str, desc: Descriptor) -> bool:
        return self._frame(desc.digest).exists()

    @contextmanager
    def open_blob(self, repo: str, desc: Descriptor) -> Iterator[Iterator[bytes]]:
        raise NotFoundError("a bundle being written cannot be read", where=self.label)
        yield iter(())  # pragma: no cover

    def get_manifest(self, ref: Reference) -> Manifest:
        raise NotFoundError("a bundle being written cannot be read", where=self.label)

    def put_blob(self, repo: str, desc: Descriptor, chunks: Iterable[bytes]) -> None:
        final = self._frame(desc.digest)
        tmp = final.with_name(f"{final.name}.{threading.get_ident()}.tmp")
        total = TAR_BLOCK + desc.size + padding(desc.size)
        try:
            with tmp.open("wb") as f:
                z: Any
                if desc.media_type.endswith(COMPRESSED_SUFFIXES):
                    # Already-compressed layers: zstd would spend CPU to gain nothing; store them raw.
                    z = RawFrameWriter(f, total)
                else:
                    cctx = zstandard.ZstdCompressor(level=self.level, write_content_size=True)
                    z = cctx.stream_writer(f, size=total, closefd=False)
                with z:
                    z.write(tar_header(blob_member(desc.digest), desc.size))
                    for chunk in Verifier(chunks, desc.digest, desc.size, where=self.label):
                        z.write(chunk)
                    z.write(b"\0" * padding(desc.size))
            tmp.replace(final)
        finally:
            tmp.unlink(missing_ok=True)
        if desc.media_type:
            with self._lock:
                self._media[desc.digest] = desc.media_type

    def put_manifest(self, ref: Reference, manifest: Manifest) -> None:
        desc = manifest.descriptor
        if not self._frame(desc.digest).exists():
            self.put_blob("", desc, [manifest.data])
        with self._lock:
            self._media[desc.digest] = manifest.media_type

    def _small_frame(self, name: str, data: bytes) -> bytes:
        raw = tar_header(name, len(data)) + data + b"\0" * padding(len(data))
        return zstandard.ZstdCompressor(level=self.level).compress(raw)

    def finalize(self, artifacts: list[dict[str, Any]], *, depends_on: list[dict[str, Any]] | None = None,
                 external_blobs: Iterable[str] = ()) -> BundleInfo:
        """Assemble the parts and publish bundle.json. Everything before this is invisible to verify."""
        # index.json names every artifact by its full source reference (tag, or digest when pinned only).
        index: dict[str, Any] = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
        for art in sorted(artifacts, key=lambda a: a["ref"]):
            index["manifests"].append({"mediaType": art["media_type"], "digest": art["digest"],
                                       "size": art["manifest_size"],
                                       "annotations": {ANNOTATION_REF_NAME: art["ref"]}})
        head = [
            self._small_frame("oci-layout", json.dumps({"imageLayoutVersion": "1.0.0"}).encode()),
            self._small_frame("index.json", json.dumps(index, indent=1).encode()),
            zstandard.ZstdCompressor().compress(tar_header("blobs/", 0) + tar_header("blobs/sha256/", 0)),
        ]
        tail = zstandard.ZstdCompressor().compress(b"\0" * (2 * TAR_BLOCK))
        frames = sorted(p for p in self.frames.iterdir() if not p.name.endswith(".tmp"))
        staged = self.work / "parts"
        if staged.exists():
            shutil.rmtree(staged)
        staged.mkdir()
        out = _PartSink(staged, self.name, self.split_size)
        for chunk in head:
            out.write(chunk)
        blobs: dict[str, BlobEntry] = {}
        for p in frames:
            digest = p.name.replace("-", ":", 1)
            offset = out.pos
            with p.open("rb") as f:
                while True:
                    buf = f.read(defaults.CHUNK_SIZE * 4)
                    if not buf:
                        break
                    out.write(buf)
            blobs[digest] = BlobEntry(_frame_data_size(p), offset, out.pos - offset, self._media.get(digest, ""))
        out.write(tail)
        parts = out.close()
        info = BundleInfo(
            id=str(uuid.uuid4()), created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            tool_version=__version__, artifacts=artifacts, blobs=blobs, parts=parts, name=self.name,
            split_size=self.split_size, depends_on=list(depends_on or []),
            external_blobs=sorted(set(external_blobs)),
        )
        self._publish(staged, info)
        return info

    def _publish(self, staged: Path, info: BundleInfo) -> None:
        # Retire any older bundle in this directory first: bundle.json goes first, so at no moment
        # does a bundle.json describe parts that are not (yet) the right ones.
        (self.dir / BUNDLE_JSON).unlink(missing_ok=True)
        for old in self.dir.glob(f"{self.name}.tar.zst*"):
            old.unlink()
        (self.dir / SUMS).unlink(missing_ok=True)
        for p in info.parts:
            (staged / p.name).replace(self.dir / p.name)
        (self.dir / SUMS).write_text("".join(f"{p.sha256}  {p.name}\n" for p in info.parts))
        tmp = self.dir / (BUNDLE_JSON + ".tmp")
        tmp.write_text(json.dumps(info.to_json(), indent=1) + "\n")
        tmp.replace(self.dir / BUNDLE_JSON)
        shutil.rmtree(self.work, ignore_errors=True)


def _frame_data_size(path: Path) -> int:
    """The blob size, read back from the tar header at the start of its frame (works for reused frames)."""
    with path.open("rb") as f, zstandard.ZstdDecompressor().stream_reader(f) as z:
        return tarfile.TarInfo.frombuf(z.read(TAR_BLOCK), "utf-8", "strict").size


class _PartSink:
    """Writes a byte stream into parts of at most `split` bytes, hashing each."""

    def __init__(self, directory: Path, name: str, split: int | None) -> None:
        self.dir = directory
        self.name = name
        self.split = split
        self.parts: list[Part] = []
        self.pos = 0
        self._f: IO[bytes] | None = None
        self._h = hashlib.sha256()
        self._size = 0

    def _part_name(self, i: int) -> str:
        return f"{self.name}.tar.zst.{i:03d}" if self.split else f"{self.name}.tar.zst"

    def _open(self) -> IO[bytes]:
        if self._f is None:
            self._f = (self.dir / self._part_name(len(self.parts))).open("wb")
            self._h = hashlib.sha256()
            self._size = 0
        return self._f

    def _close_part(self) -> None:
        if self._f is not None:
            self._f.close()
            self.parts.append(Part(self._part_name(len(self.parts)), self._size, self._h.hexdigest()))
            self._f = None

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            f = self._open()
            room = len(view) if not self.split else min(len(view), self.split - self._size)
            f.write(view[:room])
            self._h.update(view[:room])
            self._size += room
            self.pos += room
            view = view[room:]
            if self.split and self._size >= self.split:
                self._close_part()

    def close(self) -> list[Part]:
        self._close_part()
        return self.parts


# -- reading -----------------------------------------------------------------------------------------

class _RangeReader(io.RawIOBase):
    """A file-like view of [start, start+length) over the concatenated parts, without joining them."""

    def __init__(self, directory: Path, info: BundleInfo, start: int, length: int) -> None:
        self.dir = directory
        self.bounds = info.part_bounds()
        self.pos = start
        self.end = start + length
        self._f: IO[bytes] | None = None
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
        return io.BufferedReader(_RangeReader(self.dir, self.info, e.offset, e.length), defaults.CHUNK_SIZE)

    @contextmanager
    def open_blob(self, repo: str, desc: Descriptor) -> Iterator[Iterator[bytes]]:
        e = self.info.blobs.get(desc.digest)
        if e is None:
            raise NotFoundError(f"blob {desc.digest} is not in this bundle", where=self.label)
        raw = self.raw_frame(desc.digest)
        reader = zstandard.ZstdDecompressor().stream_reader(raw, read_size=defaults.CHUNK_SIZE)
        try:
            yield _data_chunks(reader, e.size, self.label, desc.digest)
        finally:
            reader.close()
            raw.close()

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
        data = self.read_blob(digest)
        mt, _ = parse_manifest(data, self.info.blobs[digest].media_type or None)
        return Manifest(data, mt, digest)

    def put_blob(self, repo: str, desc: Descriptor, chunks: Iterable[bytes]) -> None:
        raise BundleError("bundles are read-only", where=self.label)

    def put_manifest(self, ref: Reference, manifest: Manifest) -> None:
        raise BundleError("bundles are read-only", where=self.label)


def _data_chunks(reader: Any, size: int, where: str, digest: str) -> Iterator[bytes]:
    header = reader.read(TAR_BLOCK)
    if len(header) != TAR_BLOCK:
        raise PartError(f"frame of {digest} is truncated", where=where)
    left = size
    while left:
        try:
            buf = reader.read(min(defaults.CHUNK_SIZE, left))
        except zstandard.ZstdError as e:
            raise PartError(f"frame of {digest} is corrupted: {e}", where=where,
                            hint="copy the affected part again and run `airgap-mirror verify`") from e
        if not buf:
            raise PartError(f"frame of {digest} ends early", where=where)
        left -= len(buf)
        yield buf


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
        while buf := f.read(defaults.CHUNK_SIZE * 4):
            h.update(buf)
    return h.hexdigest()


def check_parts(directory: Path, info: BundleInfo, jobs: int = defaults.JOBS) -> dict[str, str]:
    """Every part on its own: present, right size, right checksum. Returns {part: problem}."""
    bad: dict[str, str] = {}

    def one(p: Part) -> tuple[str, str | None]:
        path = directory / p.name
        if not path.exists():
            return p.name, "missing"
        size = path.stat().st_size
        if size != p.size:
            return p.name, f"truncated or extended: {size} bytes, expected {p.size}"
        if _hash_file(path) != p.sha256:
            return p.name, "checksum mismatch (corrupted)"
        return p.name, None

    with ThreadPoolExecutor(max(1, min(jobs, 4))) as pool:
        for name, problem in pool.map(one, info.parts):
            if problem:
                bad[name] = problem
    sums = directory / SUMS
    if not sums.exists():
        bad[SUMS] = "missing"
    else:
        listed = dict(reversed(line.split(None, 1)) for line in sums.read_text().splitlines() if line.strip())
        for p in info.parts:
            if listed.get(p.name.strip()) != p.sha256 and listed.get(f"*{p.name}") != p.sha256:
                bad.setdefault(SUMS, f"does not list {p.name} with its checksum")
    return bad


def verify(directory: str | os.PathLike[str], *, jobs: int = defaults.JOBS,
           on_blob: Callable[[int], None] | None = None) -> VerifyReport:
    d = Path(directory)
    info = BundleInfo.load(d)
    report = VerifyReport()
    report.bad_parts = check_parts(d, info, jobs)
    bad_ranges = [(s, e) for p, s, e in info.part_bounds() if p.name in report.bad_parts]
    reader = BundleReader(d)

    def one(item: tuple[str, BlobEntry]) -> tuple[str, str | None, int]:
        digest, e = item
        if any(e.offset < end and e.offset + e.length > start for start, end in bad_ranges):
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
