"""Deterministic Helm chart archives and a classic chart repository on 127.0.0.1 for the chart tests."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import io
import os
import tarfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

TEMPLATE = """apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Chart.Name }}-{{ .Release.Name }}
data:
  values: {{ toJson .Values | quote }}
"""


def chart_files(name: str, version: str, *, values: dict[str, Any] | None = None, app_version: str | None = None,
                annotations: dict[str, str] | None = None, dependencies: list[dict[str, Any]] | None = None,
                prefix: str = "") -> dict[str, str]:
    """The files of a chart directory `<prefix><name>/` (Chart.yaml, values.yaml, one template)."""
    chart: dict[str, Any] = {"apiVersion": "v2", "name": name, "version": version,
                             "description": f"test chart {name}", "type": "application"}
    if app_version:
        chart["appVersion"] = app_version
    if annotations:
        chart["annotations"] = annotations
    if dependencies:
        chart["dependencies"] = dependencies
    root = f"{prefix}{name}/"
    return {f"{root}Chart.yaml": yaml.safe_dump(chart, sort_keys=False),
            f"{root}values.yaml": yaml.safe_dump(values or {}, sort_keys=False),
            f"{root}templates/configmap.yaml": TEMPLATE}


def package(files: dict[str, str | bytes]) -> bytes:
    """A .tgz with fixed mtimes and owners, in path order: the same files always give the same bytes."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for path in sorted(files):
            data = files[path]
            data = data.encode() if isinstance(data, str) else data
            info = tarfile.TarInfo(path)
            info.size, info.mtime, info.mode, info.uid, info.gid = len(data), 1_700_000_000, 0o644, 0, 0
            tf.addfile(info, io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def helm_env(home: Path) -> dict[str, str]:
    """The environment for a `helm` run whose config, cache and data stay under `home` (not ~/.config)."""
    return {**os.environ, **{f"HELM_{k}_HOME": str(home / k.lower()) for k in ("CONFIG", "CACHE", "DATA")}}


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def index_yaml(entries: dict[str, list[dict[str, Any]]]) -> str:
    return yaml.safe_dump({"apiVersion": "v1", "entries": entries, "generated": "2024-01-01T00:00:00Z"})


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def serve_dir(root: Path) -> Iterator[str]:
    """Serve `root` over HTTP on 127.0.0.1 (a thread); yields the base URL."""

    def handler(*a: Any, **kw: Any) -> _Quiet:
        return _Quiet(*a, directory=str(root), **kw)

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()
