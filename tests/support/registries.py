"""Real registries on 127.0.0.1 for tests: CNCF distribution (Debian `docker-registry`) and zot.

Each registry runs as a child process on a free loopback port with its storage in a temp dir; start()
waits until /v2/ answers, stop() kills it. Nothing here ever contacts a public registry.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import socket
import ssl
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

USERNAME = "tester"
PASSWORD = "airgap-test-pw"  # test-only credential for loopback registries


class MissingTool(RuntimeError):
    """A binary a fixture needs is not installed; fixtures turn this into pytest.skip."""


@dataclass
class Registry:
    host: str                       # "127.0.0.1:PORT"
    url: str                        # "http(s)://127.0.0.1:PORT"
    plain_http: bool
    ca_file: str | None
    username: str | None
    password: str | None
    root: Path                      # storage directory
    kind: str = "distribution"
    certs_dir: str | None = None    # dir with ca.crt, for skopeo/podman --cert-dir / containerd hosts dirs
    log_file: Path | None = None
    _proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def auth(self) -> tuple[str, str] | None:
        return (self.username, self.password) if self.username and self.password else None

    @property
    def verify(self) -> ssl.SSLContext | bool:
        """httpx `verify=` value: an SSL context trusting the test CA for TLS registries."""
        return ssl.create_default_context(cafile=self.ca_file) if self.ca_file else True

    def client(self, **kw: Any) -> httpx.Client:
        """An httpx client for this registry's base URL with its CA and credentials."""
        return httpx.Client(base_url=self.url, verify=self.verify, auth=self.auth, **kw)

    def log(self) -> str:
        try:
            return self.log_file.read_text(errors="replace") if self.log_file else ""
        except OSError:
            return ""

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stop(self) -> None:
        p, self._proc = self._proc, None
        if p is not None:
            stop_process(p)


def stop_process(p: subprocess.Popen[Any], timeout: float = 5) -> None:
    """terminate, then kill if it lingers."""
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=5)


def which(name: str) -> str | None:
    return shutil.which(name)


def require(name: str) -> str:
    path = which(name)
    if not path:
        raise MissingTool(f"{name} is not installed (run ./scripts/install-deps)")
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@functools.cache
def docker_engine_available() -> bool:
    """True when a Docker engine answers; False quickly (2 s timeout) when none does."""
    try:
        import docker

        client = docker.from_env(timeout=2)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


# -- TLS material -----------------------------------------------------------------------------------
def make_tls(directory: Path) -> tuple[Path, Path, Path]:
    """A CA plus a server cert for IP:127.0.0.1 and DNS:localhost, made with openssl. (ca, cert, key)"""
    openssl = require("openssl")
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca_crt = directory / "ca.key", directory / "ca.crt"
    key, csr, crt = directory / "server.key", directory / "server.csr", directory / "server.crt"
    ext = directory / "server.ext"
    if crt.exists() and ca_crt.exists() and key.exists():
        return ca_crt, crt, key

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "3650",
        "-keyout", str(ca_key), "-out", str(ca_crt), "-subj", "/CN=airgap-mirror test CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        "-addext", "subjectKeyIdentifier=hash")
    run("req", "-newkey", "rsa:2048", "-nodes", "-sha256", "-keyout", str(key), "-out", str(csr),
        "-subj", "/CN=localhost")
    ext.write_text("basicConstraints=CA:FALSE\n"
                   "keyUsage=critical,digitalSignature,keyEncipherment\n"
                   "extendedKeyUsage=serverAuth\n"
                   "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                   "subjectKeyIdentifier=hash\n"
                   "authorityKeyIdentifier=keyid,issuer\n")
    run("x509", "-req", "-in", str(csr), "-CA", str(ca_crt), "-CAkey", str(ca_key), "-CAcreateserial",
        "-sha256", "-days", "3650", "-out", str(crt), "-extfile", str(ext))
    return ca_crt, crt, key


def make_htpasswd(path: Path, username: str = USERNAME, password: str = PASSWORD) -> Path:
    htpasswd = require("htpasswd")
    out = subprocess.run([htpasswd, "-Bbn", username, password], check=True, capture_output=True)
    path.write_bytes(out.stdout.strip() + b"\n")
    return path


# -- starting ---------------------------------------------------------------------------------------
def _wait_ready(reg: Registry, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    with httpx.Client(verify=reg.verify, timeout=2.0, trust_env=False) as c:
        while time.monotonic() < deadline:
            if not reg.alive():
                raise RuntimeError(f"{reg.kind} registry on {reg.host} exited:\n{reg.log()[-3000:]}")
            try:
                r = c.get(f"{reg.url}/v2/")
                if r.status_code in (200, 401):
                    return
            except httpx.HTTPError as e:
                last = e
            time.sleep(0.05)
    reg.stop()
    raise RuntimeError(f"{reg.kind} registry on {reg.host} did not answer /v2/ within {timeout}s ({last}):\n"
                       f"{reg.log()[-3000:]}")


def _distribution_config(root: Path, port: int, tls: tuple[Path, Path, Path] | None,
                         htpasswd: Path | None, overrides: dict[str, Any] | None) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "version": 0.1,
        "log": {"level": "info", "accesslog": {"disabled": True}},
        "storage": {"filesystem": {"rootdirectory": str(root)}, "delete": {"enabled": True},
                    "cache": {"blobdescriptor": "inmemory"}},
        "http": {"addr": f"127.0.0.1:{port}", "secret": "airgap-mirror-test-secret",
                 "headers": {"X-Content-Type-Options": ["nosniff"]}},
    }
    if tls:
        _, crt, key = tls
        cfg["http"]["tls"] = {"certificate": str(crt), "key": str(key)}
    if htpasswd:
        cfg["auth"] = {"htpasswd": {"realm": "airgap-mirror-test", "path": str(htpasswd)}}
    return _merged(cfg, overrides)


def _merged(cfg: dict[str, Any], overrides: dict[str, Any] | None) -> dict[str, Any]:
    """Config overrides from a test: mappings are merged one level deep, anything else replaces."""
    for k, v in (overrides or {}).items():
        if isinstance(v, dict) and isinstance(cfg.get(k), dict):
            cfg[k].update(v)
        else:
            cfg[k] = v
    return cfg


def _zot_config(root: Path, port: int, tls: tuple[Path, Path, Path] | None, htpasswd: Path | None,
                docker2s2: bool, overrides: dict[str, Any] | None) -> dict[str, Any]:
    http: dict[str, Any] = {"address": "127.0.0.1", "port": str(port)}
    if htpasswd:
        http["auth"] = {"htpasswd": {"path": str(htpasswd)}}
    if tls:
        _, crt, key = tls
        http["tls"] = {"cert": str(crt), "key": str(key)}
    if docker2s2:
        http["compat"] = ["docker2s2"]
    cfg: dict[str, Any] = {"distSpecVersion": "1.1.1",
                           "storage": {"rootDirectory": str(root), "dedupe": True, "gc": True},
                           "http": http, "log": {"level": "info"}}
    return _merged(cfg, overrides)


def start_registry(workdir: Path, *, kind: str = "distribution", tls: bool = False, auth: bool = False,
                   docker2s2: bool = True, tls_dir: Path | None = None,
                   config_overrides: dict[str, Any] | None = None, username: str = USERNAME,
                   password: str = PASSWORD) -> Registry:
    """Start one registry in `workdir` (storage, config, log) and wait for /v2/. Raises MissingTool."""
    if kind == "distribution":
        binary = require("docker-registry")
    elif kind == "distribution3":                    # CNCF distribution v3, same config format
        binary = require("distribution")
    elif kind == "zot":
        binary = require("zot")
    else:
        raise ValueError(f"unknown registry kind {kind!r}")
    workdir.mkdir(parents=True, exist_ok=True)
    root = workdir / "storage"
    root.mkdir(exist_ok=True)
    tls_files = make_tls(tls_dir or workdir / "tls") if tls else None
    htpasswd = make_htpasswd(workdir / "htpasswd", username, password) if auth else None
    certs_dir = None
    if tls_files:                                   # only ca.crt: skopeo/podman read every *.crt as a CA
        cdir = tls_files[0].parent / "certs"
        cdir.mkdir(exist_ok=True)
        shutil.copyfile(tls_files[0], cdir / "ca.crt")
        certs_dir = str(cdir)

    for _attempt in range(5):                       # the free port may be taken between probe and bind
        port = free_port()
        if kind in ("distribution", "distribution3"):
            cfg = _distribution_config(root, port, tls_files, htpasswd, config_overrides)
            cfg_path = workdir / "config.yml"
            cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        else:
            cfg = _zot_config(root, port, tls_files, htpasswd, docker2s2, config_overrides)
            cfg_path = workdir / "config.json"
            cfg_path.write_text(json.dumps(cfg, indent=1))
        log_file = workdir / "registry.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
        with log_file.open("ab") as log:
            proc = subprocess.Popen([binary, "serve", str(cfg_path)], stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, cwd=workdir, env=env, start_new_session=True)
        scheme = "https" if tls_files else "http"
        reg = Registry(host=f"127.0.0.1:{port}", url=f"{scheme}://127.0.0.1:{port}", plain_http=not tls_files,
                       ca_file=str(tls_files[0]) if tls_files else None,
                       username=username if auth else None, password=password if auth else None,
                       root=root, kind=kind, certs_dir=certs_dir, log_file=log_file, _proc=proc)
        try:
            _wait_ready(reg)
            return reg
        except RuntimeError:
            reg.stop()
            if "address already in use" in reg.log():
                continue
            raise
    raise RuntimeError(f"could not find a free port for a {kind} registry")


class RegistryFactory:
    """Callable that starts registries under a base temp dir and stops them all on close()."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.started: list[Registry] = []
        self._n = 0

    def __call__(self, kind: str = "distribution", tls: bool = False, auth: bool = False,
                 docker2s2: bool = True, config_overrides: dict[str, Any] | None = None,
                 username: str = USERNAME, password: str = PASSWORD) -> Registry:
        """Start a registry; pytest.skip (with the reason) when its binary is not installed.

        With auth=True the htpasswd file holds `username`/`password` (e.g. `AWS` and an ECR token password)."""
        self._n += 1
        workdir = self.base / f"{kind}-{self._n}"
        try:
            reg = start_registry(workdir, kind=kind, tls=tls, auth=auth, docker2s2=docker2s2,
                                 tls_dir=self.base / "tls", config_overrides=config_overrides,
                                 username=username, password=password)
        except MissingTool as e:
            pytest.skip(f"{kind} registry unavailable: {e}")
        self.started.append(reg)
        return reg

    def close(self) -> None:
        for reg in self.started:
            reg.stop()
        self.started.clear()
