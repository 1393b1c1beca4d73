"""Shared end-to-end helpers: sample content in a source registry, a content file pointing at it, the CLI.

    layout = build_sample(dir)                       # mirror.sample "test" profile (cached per size)
    refs = seed_source(layout, source_registry)      # push it; every source host lives in that registry
    content = write_content(path, source_registry, refs)
    res = run_cli(["export", "-f", content, "-o", out])  # in-process; res.code, res.out, res.err

Nothing here contacts a public host: docker.io, quay.io, registry.k8s.io and ghcr.io are all pointed at the
loopback source registry with `registries.<host>.endpoint`.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from mirror import sample
from mirror.mediatypes import ACCEPT
from mirror.reference import parse
from tests.support.registries import Registry

SOURCE_HOSTS = ("docker.io", "quay.io", "registry.k8s.io", "ghcr.io")
BIG_LAYER = 3_000_000                     # > a 1M part: spans parts
# The sample "test" profile tags these (with the big layer).
SAMPLE_REFS = (
    "docker.io/library/nginx:1.25",       # OCI multi-arch index
    "quay.io/coreos/etcd:v3.5.9",         # Docker v2 manifest list
    "registry.k8s.io/pause:3.9",          # Docker v2 manifest
    "ghcr.io/example/tool:v1",            # Docker v2 manifest
    "ghcr.io/example/artifact:v1",        # non-image OCI artifact
    "docker.io/example/big:v1",           # OCI image with a layer larger than a part
)

_LAYOUT_CACHE: dict[tuple[str, int | None], Path] = {}


def build_sample(directory: Path, *, big_layer_bytes: int | None = BIG_LAYER, cache: bool = True) -> Path:
    """The sample "test" layout at `directory/layout` (copied from a per-process cache: builds are slow-ish)."""
    out = directory / "layout"
    key = ("test", big_layer_bytes)
    cached = _LAYOUT_CACHE.get(key) if cache else None
    if cached is not None and cached.exists():
        shutil.copytree(cached, out)
        return out
    sample.build(out, "test", big_layer_bytes=big_layer_bytes)
    if cache:
        keep = directory.parent / f".sample-cache-{big_layer_bytes}"
        if not keep.exists():
            shutil.copytree(out, keep)
        _LAYOUT_CACHE[key] = keep
    return out


def seed_source(layout: Path, reg: Registry) -> list[str]:
    """Push every ref of the layout into `reg` (same repository paths, same digests); returns the refs."""
    creds = f"{reg.username}:{reg.password}" if reg.username else None
    sample.seed(layout, reg.url, cert_dir=reg.certs_dir, creds=creds, quiet=True)
    from mirror.layout import LayoutStore

    return [name for name, _ in LayoutStore(layout).refs()]


def seeded(registry_factory: Any, tmp: Path, kind: str = "distribution", **kw: Any) -> tuple[Registry, list[str]]:
    """A fresh registry (`registry_factory(kind, **kw)`) seeded with the sample content; and its refs."""
    reg = registry_factory(kind, **kw)
    return reg, seed_source(build_sample(tmp), reg)


def content_yaml(reg: Registry, images: Iterable[Any], *, hosts: Sequence[str] = SOURCE_HOSTS,
                 platforms: Sequence[str] | None = None, extra: str = "") -> str:
    lines = ["apiVersion: airgap-mirror/v1", "kind: Content"]
    if platforms:
        lines.append(f"platforms: [{', '.join(platforms)}]")
    lines.append("registries:")
    for h in hosts:
        lines.append(f"  {h}:")
        lines.append(f"    endpoint: {reg.url}")
        if reg.ca_file:
            lines.append(f"    ca_file: {reg.ca_file}")
    lines.append("images:")
    for img in images:
        lines.append(f"  - {json.dumps(img) if not isinstance(img, str) else img}")
    return "\n".join(lines) + "\n" + extra


def write_content(path: Path, reg: Registry, images: Iterable[Any] = SAMPLE_REFS, **kw: Any) -> Path:
    path.write_text(content_yaml(reg, images, **kw))
    return path


def exported_world(tmp: Path, source: Registry) -> dict[str, Any]:
    """The sample content seeded into `source` and exported once into `tmp/B`, split at 1M."""
    from mirror.bundle import BundleInfo

    layout = build_sample(tmp)
    refs = seed_source(layout, source)
    content = write_content(tmp / "content.yaml", source, refs)
    bundle = tmp / "B"
    res = export(content, bundle, "--split-size", "1M")
    assert res.code == 0, res.err
    return {"tmp": tmp, "source": source, "layout": layout, "refs": refs, "content": content,
            "bundle": bundle, "export": res, "info": BundleInfo.load(bundle)}


@dataclass
class CliResult:
    code: int
    out: str
    err: str

    @property
    def err_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.strip()]

    @property
    def error_line(self) -> str:
        """The final `error: ...` line."""
        errs = [line for line in self.err_lines if line.startswith("error:")]
        return errs[-1] if errs else ""


def run_cli(argv: Sequence[str], *, stdin: str | None = None) -> CliResult:
    """Run `airgap-mirror ARGV` in-process, capturing stdout/stderr (and feeding stdin)."""
    from mirror import cli

    out, err = io.StringIO(), io.StringIO()
    old_stdin = sys.stdin
    if stdin is not None:
        sys.stdin = io.StringIO(stdin)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = cli.main([str(a) for a in argv])
            except SystemExit as e:          # argparse errors
                code = int(e.code or 0)
    finally:
        sys.stdin = old_stdin
    return CliResult(code, out.getvalue(), err.getvalue())


def export(content: Path, out: Path, *extra: str) -> CliResult:
    res = run_cli(["export", "-f", str(content), "-o", str(out), "-j", "4", *extra])
    assert res.code == 0, res.err
    return res


def import_args(bundle: Path, reg: Registry, base: str = "airgap-images", *extra: str) -> list[str]:
    args = ["import", str(bundle), "--to", f"{reg.host}/{base}" if base else reg.host, "-j", "4"]
    if reg.plain_http:
        args.append("--plain-http")
    elif reg.ca_file:
        args += ["--ca-file", reg.ca_file]
    return args + list(extra)


def mirrored_name(ref: str, reg: Registry, base: str = "airgap-images") -> tuple[str, str]:
    """(repository, tag) where `ref` lands under reg/base."""
    from mirror.reference import host_segment, join_path

    r = parse(ref)
    return join_path(base, host_segment(r.registry), r.repository), r.tag or ""


def head_digest(reg: Registry, repo: str, ident: str) -> str | None:
    """Docker-Content-Digest of a manifest, or None when it is not there."""
    with httpx.Client(base_url=reg.url, verify=reg.verify, auth=reg.auth, timeout=30, trust_env=False) as c:
        r = c.head(f"/v2/{repo}/manifests/{ident}", headers={"Accept": ACCEPT})
        if r.status_code == 404:
            return None
        r.raise_for_status()
        return r.headers.get("docker-content-digest")


def tags(reg: Registry, repo: str) -> list[str]:
    with httpx.Client(base_url=reg.url, verify=reg.verify, auth=reg.auth, timeout=30, trust_env=False) as c:
        r = c.get(f"/v2/{repo}/tags/list")
        if r.status_code == 404:
            return []
        r.raise_for_status()
        return list(r.json().get("tags") or [])


def catalog(reg: Registry) -> list[str]:
    with httpx.Client(base_url=reg.url, verify=reg.verify, auth=reg.auth, timeout=30, trust_env=False) as c:
        r = c.get("/v2/_catalog")
        r.raise_for_status()
        return list(r.json().get("repositories") or [])


def skopeo_raw_digest(reg: Registry, repo: str, tag: str) -> str:
    """sha256 of `skopeo inspect --raw` of reg/repo:tag (the manifest bytes skopeo pulls)."""
    import hashlib

    cmd = ["skopeo", "inspect", "--raw"]
    if reg.plain_http:
        cmd.append("--tls-verify=false")
    elif reg.certs_dir:
        cmd.append(f"--cert-dir={reg.certs_dir}")
    if reg.username:
        cmd.append(f"--creds={reg.username}:{reg.password}")
    cmd.append(f"docker://{reg.host}/{repo}:{tag}")
    out = subprocess.run(cmd, check=True, capture_output=True, timeout=60).stdout
    return "sha256:" + hashlib.sha256(out).hexdigest()
