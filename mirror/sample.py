"""Deterministic offline sample content: real, runnable images written into an OCI layout.

Layers are real tar archives built from generated files (plus the machine's static busybox at /bin/sh for
amd64 images when /bin/busybox is a static binary, so images can run). Configs carry correct
`rootfs.diff_ids`. Everything is deterministic: fixed mtimes, sorted entries, gzip mtime 0, seeded random
data; the same inputs give the same digests.

    build(path, profile, *, big_layer_bytes=None, scale_bytes=None, count=None) -> list[str]   # refs tagged
    python -m mirror.sample build OUT --profile test|demo|bench|many [--big-layer-bytes N] [--scale-bytes N]
                                      [--count N]
    python -m mirror.sample seed OUT --to http://127.0.0.1:PORT

Profiles: `test` (multi-arch OCI index, Docker manifest list, Docker v2 manifests, a shared base layer, a
non-image OCI artifact, optional big layer), `demo` (a handful of small images), `bench` (>= 30 artifacts,
~1.1 GB of unique, incompressible blob bytes with realistic sharing), `many` (`count` small images, default
300, every fifth a two-arch index, sharing eight base layers: where requests, not bytes, are the cost).
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import random
import sys
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .digest import sha256_digest
from .layout import LayoutStore
from .mediatypes import (
    ATTESTATION_MANIFEST,
    DOCKER_LIST,
    DOCKER_MANIFEST,
    DOCKER_REFERENCE_DIGEST,
    DOCKER_REFERENCE_TYPE,
    OCI_EMPTY_JSON,
    OCI_INDEX,
    OCI_MANIFEST,
)
from .reference import parse
from .store import Manifest

OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
ARTIFACT_TYPE = "application/vnd.example.thing.v1"
ARTIFACT_LAYER = "application/vnd.example.thing.content.v1"
IN_TOTO = "application/vnd.in-toto+json"
EMPTY_JSON = b"{}"

MTIME = 1704067200                       # 2024-01-01T00:00:00Z, for every tar entry
CREATED = "2024-01-01T00:00:00Z"
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
BUSYBOX = Path("/bin/busybox")
BUSYBOX_APPLETS = ("sh", "ls", "cat", "echo", "sleep", "env", "true", "false", "id", "uname")
MB = 1_000_000
BENCH_DEFAULT_BYTES = 1_100_000_000
PROFILES = ("test", "demo", "bench", "many")
MANY_DEFAULT_COUNT = 300


# -- layers ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Entry:
    """One tar member: a regular file (data), a directory (data None), or a symlink (link)."""

    name: str
    data: bytes | None = None
    mode: int = 0o644
    link: str | None = None


@dataclass(frozen=True)
class Layer:
    blob: bytes                         # the bytes stored (compressed or not)
    diff_id: str                        # sha256 of the uncompressed tar
    compressed: bool

    def media_type(self, docker: bool) -> str:
        if docker:
            if not self.compressed:
                raise ValueError("Docker v2 images need gzip layers")
            return DOCKER_LAYER_GZIP
        return OCI_LAYER_GZIP if self.compressed else OCI_LAYER_TAR


def _tarinfo(name: str, *, size: int = 0, mode: int = 0o644, kind: bytes = tarfile.REGTYPE,
             link: str = "") -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.size = size
    ti.mode = mode
    ti.type = kind
    ti.linkname = link
    ti.mtime = MTIME
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = "root"
    return ti


def tar_bytes(entries: Sequence[Entry]) -> bytes:
    """A deterministic tar: parent directories added, entries sorted by name, fixed owner and mtime."""
    by_name: dict[str, Entry] = {}
    for e in entries:
        name = e.name.strip("/")
        parts = name.split("/")
        for i in range(1, len(parts)):
            d = "/".join(parts[:i])
            by_name.setdefault(d, Entry(d, None, 0o755))
        by_name[name] = Entry(name, e.data, e.mode, e.link)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tf:
        for name in sorted(by_name):
            e = by_name[name]
            if e.link is not None:
                tf.addfile(_tarinfo(name, mode=0o777, kind=tarfile.SYMTYPE, link=e.link))
            elif e.data is None:
                tf.addfile(_tarinfo(name + "/", mode=e.mode if e.mode != 0o644 else 0o755,
                                    kind=tarfile.DIRTYPE))
            else:
                tf.addfile(_tarinfo(name, size=len(e.data), mode=e.mode), io.BytesIO(e.data))
    return buf.getvalue()


def single_file_tar(name: str, data: bytes) -> bytes:
    """A tar of one big file (and its parent dirs), assembled without extra copies of `data`."""
    parts = name.strip("/").split("/")
    out = []
    for i in range(1, len(parts)):
        out.append(_tarinfo("/".join(parts[:i]) + "/", mode=0o755, kind=tarfile.DIRTYPE)
                   .tobuf(tarfile.USTAR_FORMAT, "utf-8", "surrogateescape"))
    out.append(_tarinfo("/".join(parts), size=len(data)).tobuf(tarfile.USTAR_FORMAT, "utf-8", "surrogateescape"))
    out.append(data)
    out.append(b"\0" * (-len(data) % tarfile.BLOCKSIZE))
    out.append(b"\0" * (2 * tarfile.BLOCKSIZE))
    return b"".join(out)


def make_layer(tar: bytes, *, compresslevel: int | None = 6) -> Layer:
    """gzip (mtime 0) unless compresslevel is None, which stores the tar uncompressed."""
    diff_id = sha256_digest(tar)
    if compresslevel is None:
        return Layer(tar, diff_id, False)
    return Layer(gzip.compress(tar, compresslevel=compresslevel, mtime=0), diff_id, True)


def random_bytes(seed: str, size: int) -> bytes:
    """Incompressible, deterministic bytes. Drawn 64 MiB at a time: one randbytes() call takes at most
    2**31 bits (the same bytes as one call for anything smaller)."""
    rng = random.Random(seed)
    step = 64 << 20
    return b"".join(rng.randbytes(min(step, size - i)) for i in range(0, size, step))


def random_layer(seed: str, size: int, *, compresslevel: int | None = 0) -> Layer:
    """A layer with one file of `size` seeded random bytes (gzip level 0 by default: fast, still gzip)."""
    return make_layer(single_file_tar(f"opt/data/{_slug(seed)}.bin", random_bytes(seed, size)),
                      compresslevel=compresslevel)


def _slug(s: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in s)


def _static_busybox() -> bytes | None:
    """The machine's busybox when it is a static x86-64 ELF (so amd64 images get a working /bin/sh)."""
    if os.environ.get("AIRGAP_SAMPLE_NO_BUSYBOX") or not BUSYBOX.is_file():
        return None
    data = BUSYBOX.read_bytes()
    # ELF, 64-bit, x86-64 machine (0x3e), and no PT_INTERP program header (statically linked)
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[18:20] != b"\x3e\x00" or b"/lib64/ld-linux" in data[:4096]:
        return None
    return data


def base_layer(distro: str = "sample-linux", version: str = "1.0") -> Layer:
    """The shared, architecture-neutral base: /etc files and the usual directories."""
    os_release = (f'NAME="{distro}"\nID={distro}\nVERSION_ID="{version}"\n'
                  f'PRETTY_NAME="{distro} {version} (airgap-mirror sample)"\n').encode()
    return make_layer(tar_bytes([
        Entry("etc/os-release", os_release),
        Entry("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"),
        Entry("etc/group", b"root:x:0:\nnogroup:x:65534:\n"),
        Entry("etc/hostname", b"sample\n"),
        Entry("bin"), Entry("tmp", mode=0o1777), Entry("root", mode=0o700), Entry("usr/local/bin"),
        Entry("var/lib"),
    ]))


def shell_layer(arch: str) -> Layer | None:
    """busybox at /bin/busybox with applet symlinks (amd64 only, and only if the machine has it)."""
    bb = _static_busybox() if arch == "amd64" else None
    if bb is None:
        return None
    entries = [Entry("bin/busybox", bb, 0o755)]
    entries += [Entry(f"bin/{a}", link="busybox") for a in BUSYBOX_APPLETS]
    return make_layer(tar_bytes(entries), compresslevel=6)


def app_layer(name: str, version: str, arch: str, extra: int = 0) -> Layer:
    """The image's own files: a launcher script and some seeded data (`extra` random bytes)."""
    script = f'#!/bin/sh\necho "{name} {version} ({arch}) airgap-mirror sample"\nexec "$@"\n'.encode()
    entries = [Entry(f"usr/local/bin/{name}", script, 0o755),
               Entry(f"usr/share/{name}/VERSION", f"{version}\n".encode()),
               Entry(f"usr/share/{name}/ARCH", f"{arch}\n".encode())]
    if extra:
        entries.append(Entry(f"usr/share/{name}/data.bin", random_bytes(f"{name}:{version}:{arch}", extra)))
    return make_layer(tar_bytes(entries), compresslevel=6)


# -- manifests ---------------------------------------------------------------------------------------
def _json(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()


class Builder:
    """Writes blobs/manifests into a LayoutStore and records the tagged references."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.store = LayoutStore(path, create=True)
        self.refs: list[str] = []

    def blob(self, data: bytes, media_type: str) -> dict[str, Any]:
        d = self.store.put_bytes(data, media_type)
        return {"mediaType": media_type, "digest": d.digest, "size": d.size}

    def manifest(self, doc: dict[str, Any]) -> dict[str, Any]:
        data = _json(doc)
        return self.blob(data, doc["mediaType"])

    def tag(self, ref: str, desc: dict[str, Any]) -> None:
        r = parse(ref)
        data = (self.store.root / "blobs" / "sha256" / desc["digest"].split(":", 1)[1]).read_bytes()
        self.store.put_manifest(r, Manifest(data, desc["mediaType"], desc["digest"]))
        self.refs.append(str(r))

    def image(self, name: str, version: str, arch: str, layers: Sequence[Layer], *, docker: bool = False,
              cmd: Sequence[str] | None = None, labels: dict[str, str] | None = None) -> dict[str, Any]:
        """Config + manifest for one platform; returns the manifest descriptor (with platform)."""
        config: dict[str, Any] = {
            "created": CREATED,
            "architecture": arch,
            "os": "linux",
            "config": {"Env": [PATH_ENV], "Entrypoint": [f"/usr/local/bin/{name}"],
                       "Cmd": list(cmd or ["true"]), "WorkingDir": "/",
                       "Labels": {"org.opencontainers.image.title": name,
                                  "org.opencontainers.image.version": version, **(labels or {})}},
            "rootfs": {"type": "layers", "diff_ids": [la.diff_id for la in layers]},
            "history": [{"created": CREATED, "created_by": f"airgap-mirror sample layer {i}"}
                        for i in range(len(layers))],
        }
        if arch == "arm64":
            config["variant"] = "v8"
        cfg = self.blob(_json(config), DOCKER_CONFIG if docker else OCI_CONFIG)
        doc = {"schemaVersion": 2, "mediaType": DOCKER_MANIFEST if docker else OCI_MANIFEST, "config": cfg,
               "layers": [self.blob(la.blob, la.media_type(docker)) for la in layers]}
        desc = self.manifest(doc)
        desc["platform"] = {"architecture": arch, "os": "linux", **({"variant": "v8"} if arch == "arm64" else {})}
        return desc

    def index(self, children: Sequence[dict[str, Any]], *, docker: bool = False) -> dict[str, Any]:
        doc = {"schemaVersion": 2, "mediaType": DOCKER_LIST if docker else OCI_INDEX,
               "manifests": list(children)}
        return self.manifest(doc)

    def attestation(self, subject: dict[str, Any]) -> dict[str, Any]:
        """A provenance attestation entry for an index, the way BuildKit attaches one to each image."""
        statement = _json({"_type": "https://in-toto.io/Statement/v0.1",
                           "predicateType": "https://slsa.dev/provenance/v0.2",
                           "subject": [{"name": "sample", "digest": {"sha256": subject["digest"].split(":")[1]}}],
                           "predicate": {"builder": {"id": "airgap-mirror sample"}}})
        layer = self.blob(statement, IN_TOTO)
        layer["annotations"] = {"in-toto.io/predicate-type": "https://slsa.dev/provenance/v0.2"}
        config = _json({"architecture": "unknown", "os": "unknown", "config": {},
                        "rootfs": {"type": "layers", "diff_ids": [sha256_digest(statement)]}})
        desc = self.manifest({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                              "config": self.blob(config, OCI_CONFIG), "layers": [layer]})
        desc["annotations"] = {DOCKER_REFERENCE_DIGEST: subject["digest"],
                               DOCKER_REFERENCE_TYPE: ATTESTATION_MANIFEST}
        desc["platform"] = {"architecture": "unknown", "os": "unknown"}
        return desc

    def single(self, desc: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in desc.items() if k != "platform"}

    def artifact(self, payload: bytes, title: str, *, artifact_type: str = ARTIFACT_TYPE,
                 layer_type: str = ARTIFACT_LAYER) -> dict[str, Any]:
        cfg = self.blob(EMPTY_JSON, OCI_EMPTY_JSON)
        layer = self.blob(payload, layer_type)
        layer["annotations"] = {"org.opencontainers.image.title": title}
        return self.manifest({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": artifact_type,
                              "config": cfg, "layers": [layer],
                              "annotations": {"org.opencontainers.image.created": CREATED}})

    def app(self, ref: str, name: str, version: str, arches: Sequence[str], *, docker: bool,
            shared: Sequence[Layer], extra: int = 0, multi: bool | None = None,
            more: Sequence[Layer] = (), attest: Sequence[str] = ()) -> None:
        """Tag `ref` as a single-platform image or (several arches / multi=True) an index or list;
        the images of the arches in `attest` get a BuildKit provenance attestation in the index."""
        children = []
        for arch in arches:
            sh = shell_layer(arch)
            layers = [*shared, *([sh] if sh else []), *more, app_layer(name, version, arch, extra)]
            children.append(self.image(name, version, arch, layers, docker=docker))
        children += [self.attestation(c) for c, arch in zip(children, arches, strict=True) if arch in attest]
        if multi or (multi is None and len(children) > 1):
            self.tag(ref, self.index(children, docker=docker))
        else:
            self.tag(ref, self.single(children[0]))


# -- profiles ---------------------------------------------------------------------------------------
def _build_test(b: Builder, big_layer_bytes: int | None) -> None:
    base = [base_layer()]                       # shared by nginx (2), etcd (2), pause, tool, big
    b.app("docker.io/library/nginx:1.25", "nginx", "1.25", ["amd64", "arm64"], docker=False, shared=base,
          attest=["amd64"])
    b.app("quay.io/coreos/etcd:v3.5.9", "etcd", "v3.5.9", ["amd64", "arm64"], docker=True, shared=base)
    b.app("registry.k8s.io/pause:3.9", "pause", "3.9", ["amd64"], docker=True, shared=base)
    b.app("ghcr.io/example/tool:v1", "tool", "v1", ["amd64"], docker=True, shared=base)
    b.tag("ghcr.io/example/artifact:v1",
          b.artifact(b"an example artifact payload\n" * 4, "thing.txt"))
    if big_layer_bytes:
        b.app("docker.io/example/big:v1", "big", "v1", ["amd64"], docker=False, shared=base,
              more=[random_layer("big:v1", int(big_layer_bytes))])


def _build_demo(b: Builder) -> None:
    base = [base_layer()]
    b.app("docker.io/library/nginx:1.25", "nginx", "1.25", ["amd64", "arm64"], docker=False, shared=base,
          extra=64 * 1024)
    b.app("docker.io/library/redis:7.2", "redis", "7.2", ["amd64"], docker=False, shared=base, extra=32 * 1024)
    b.app("quay.io/coreos/etcd:v3.5.9", "etcd", "v3.5.9", ["amd64", "arm64"], docker=True, shared=base,
          extra=48 * 1024)
    b.app("quay.io/prometheus/node-exporter:v1.7.0", "node-exporter", "v1.7.0", ["amd64"], docker=True,
          shared=base, extra=16 * 1024)
    b.app("registry.k8s.io/pause:3.9", "pause", "3.9", ["amd64"], docker=True, shared=base)
    b.app("registry.k8s.io/coredns/coredns:v1.11.1", "coredns", "v1.11.1", ["amd64"], docker=False,
          shared=base, extra=24 * 1024)


BENCH_HOSTS = ("docker.io/library", "quay.io/bench", "registry.k8s.io", "ghcr.io/bench")


def _build_bench(b: Builder, scale_bytes: int | None) -> None:
    total = int(scale_bytes or BENCH_DEFAULT_BYTES)
    f = total / BENCH_DEFAULT_BYTES
    rng = random.Random(f"bench:{total}")
    # four base layers shared by many images (gzip level 0: valid gzip for both families, fast to make)
    base_sizes = [max(1024, int(s * MB * f)) for s in (40, 30, 20, 10)]
    bases = [random_layer(f"bench-base-{i}", s) for i, s in enumerate(base_sizes)]
    # unique per-image layers, 5-120 MB (scaled), until the budget is used
    budget = total - sum(base_sizes)
    lo, hi = max(1024, int(5 * MB * f)), max(2048, int(120 * MB * f))
    sizes: list[int] = []
    while budget > 0:
        s = min(rng.randint(lo, hi), budget)
        sizes.append(s)
        budget -= s
    # 26 single images + 4 two-arch indexes + 2 artifacts = 32 tagged artifacts, 34 image manifests
    n_images = 30
    specs = []
    for i in range(n_images):
        host = BENCH_HOSTS[i % len(BENCH_HOSTS)]
        name = f"app{i:02d}"
        multi = i % 8 == 0                                   # 0, 8, 16, 24: two-arch indexes
        docker = host.startswith("quay.io") and not multi
        specs.append((f"{host}/{name}:v{1 + i % 3}.0", name, multi, docker))
    n_manifests = sum(2 if m else 1 for *_, m, _ in specs)
    unique: list[list[int]] = [[] for _ in range(n_manifests)]
    for j, s in enumerate(sizes):
        unique[j % n_manifests].append(s)
    k = 0
    for i, (ref, name, multi, docker) in enumerate(specs):
        shared = bases[: 1 + i % len(bases)]                 # every image shares base 0; many share 1-3
        children = []
        for arch in (["amd64", "arm64"] if multi else ["amd64"]):
            own = [random_layer(f"bench:{name}:{arch}:{n}", s,
                                compresslevel=None if (not docker and n % 2) else 0)
                   for n, s in enumerate(unique[k])]
            k += 1
            layers = [*shared, *own, app_layer(name, "v1", arch)]
            children.append(b.image(name, "v1", arch, layers, docker=docker))
        b.tag(ref, b.index(children) if multi else b.single(children[0]))
    for i in range(2):
        payload = random_bytes(f"bench-artifact-{i}", max(1024, int(256 * 1024 * f)))
        b.tag(f"ghcr.io/bench/artifact{i}:v1", b.artifact(payload, f"artifact{i}.bin"))


def _build_many(b: Builder, count: int | None) -> None:
    bases = [random_layer(f"many-base-{i}", 200_000 + 50_000 * i) for i in range(8)]
    for i in range(MANY_DEFAULT_COUNT if count is None else count):
        name = f"svc{i:04d}"
        children = []
        for arch in (["amd64", "arm64"] if i % 5 == 0 else ["amd64"]):
            own = [random_layer(f"many:{name}:{arch}:{n}", 3000 + 97 * n + i) for n in range(3)]
            children.append(b.image(name, "v1", arch, [*bases[: 1 + i % len(bases)], *own]))
        ref = f"{BENCH_HOSTS[i % len(BENCH_HOSTS)]}/{name}:v1"
        b.tag(ref, b.index(children) if len(children) > 1 else b.single(children[0]))


def build(path: str | os.PathLike[str], profile: str, *, big_layer_bytes: int | None = None,
          scale_bytes: int | None = None, count: int | None = None) -> list[str]:
    """Write the profile's content into the OCI layout at `path`; return the full references tagged."""
    if profile not in PROFILES:
        raise ValueError(f"unknown sample profile {profile!r} (choose from {', '.join(PROFILES)})")
    b = Builder(path)
    if profile == "test":
        _build_test(b, big_layer_bytes)
    elif profile == "demo":
        _build_demo(b)
    elif profile == "many":
        _build_many(b, count)
    else:
        _build_bench(b, scale_bytes)
    return b.refs


# -- seeding a registry -------------------------------------------------------------------------------
def seed(path: str | os.PathLike[str], to: str, *, cert_dir: str | None = None,
         creds: str | None = None, quiet: bool = False) -> list[str]:
    """Push every ref of the layout to the registry at URL `to`, same repository path, same digests.

    `docker.io/library/nginx:1.25` goes to `<to-host>/library/nginx:1.25`: the registry plays the source
    host's endpoint. Uses the tool's own copy function (layout store -> registry store). Returns the
    destination references.
    """
    from .copy import CopyItem, copy
    from .errors import MirrorError
    from .http import HostSettings, Http
    from .reference import Reference
    from .registry import RegistryStore

    store = LayoutStore(path)
    scheme, _, host = to.partition("://")
    if not host:
        scheme, host = "https", to
    host = host.rstrip("/")
    user, _, password = (creds or "").partition(":")
    settings = HostSettings(plain_http=scheme == "http", ca_file=str(Path(cert_dir) / "ca.crt") if cert_dir else None,
                            username=user or None, password=password if creds else None)
    http = Http({host: settings}, use_docker_config=False)
    items = []
    for name, _ in store.refs():
        r = parse(name)
        items.append(CopyItem(r, Reference(host, r.repository, r.tag, None if r.tag else r.digest)))
    try:
        result = copy(store, RegistryStore(http, host, role="seed target"), items)
    finally:
        http.close()
    if result.failed:
        raise MirrorError(f"seeding failed: {result.failed[0].item.source}: {result.failed[0].error}")
    out = [f"{host}/{it.target.repository}:{it.target.tag}" for it in items]
    if not quiet:
        print("\n".join(out))
    return out


# -- CLI --------------------------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m mirror.sample", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    bp = sub.add_parser("build", help="write sample content into an OCI layout")
    bp.add_argument("out")
    bp.add_argument("--profile", choices=PROFILES, default="demo")
    bp.add_argument("--big-layer-bytes", type=int, default=None)
    bp.add_argument("--scale-bytes", type=int, default=None)
    bp.add_argument("--count", type=int, default=None, help="images of the `many` profile")
    sp = sub.add_parser("seed", help="push every ref of a layout into a registry (same repository paths)")
    sp.add_argument("out")
    sp.add_argument("--to", required=True, help="registry URL, e.g. http://127.0.0.1:5000")
    sp.add_argument("--cert-dir", default=None, help="directory with ca.crt for an HTTPS registry")
    sp.add_argument("--creds", default=None, help="USER:PASSWORD")
    args = ap.parse_args(argv)
    if args.cmd == "build":
        for ref in build(args.out, args.profile, big_layer_bytes=args.big_layer_bytes,
                         scale_bytes=args.scale_bytes, count=args.count):
            print(ref)
    else:
        seed(args.out, args.to, cert_dir=args.cert_dir, creds=args.creds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
