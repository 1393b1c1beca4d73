"""End-to-end: the generated mirror configs, consumed by the real clients, on loopback only.

The target is a real registry on 127.0.0.1 seeded the way an import lays content out
(`<registry>/<base>/<host segment>/<path>:<tag>`), with a receipt describing it. Every client config is
rendered in strict mode (no upstream fallback) and checked to point only at loopback before any client runs:
a non-strict config names the public upstream, which no test may contact.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import yaml

from mirror.mirrorconfig import MirrorOptions, render, write_files
from mirror.receipt import ImportedArtifact, Receipt, Target
from tests.support.registries import Registry, stop_process
from tests.support.tools import need as _need
from tests.support.tools import run as _run
from tests.test_mirrorconfig import apply_maps

pytestmark = pytest.mark.e2e

BASE = "airgap-images"
SAMPLE_REFS = ["docker.io/library/nginx:1.25", "quay.io/coreos/etcd:v3.5.9", "registry.k8s.io/pause:3.9"]
# An imported source host with a port: its content is the pause image, copied where an import would put it.
PORT_HOST, PORT_SEG, PORT_REF = "harbor.corp:8443", "harbor.corp_8443", "harbor.corp:8443/team/pause:3.9"
HOSTS = {"docker.io": "docker.io", "quay.io": "quay.io", "registry.k8s.io": "registry.k8s.io",
         PORT_HOST: PORT_SEG}
ACCEPT = ", ".join([
    "application/vnd.oci.image.index.v1+json", "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
])
LOOPBACK = {"127.0.0.1", "localhost", "::1"}






def split_ref(ref: str) -> tuple[str, str, str]:
    host, _, rest = ref.partition("/")
    repo, _, tag = rest.rpartition(":")
    return host, repo, tag


# -- seeding: a stand-in for `airgap-mirror import` (swap this fixture for the real command) -------------------
@pytest.fixture(scope="module")
def sample_layout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mirror import sample

    path = tmp_path_factory.mktemp("sample") / "layout"
    sample.build(path, "test")
    return path


def push_layout_ref(layout: Path, ref_name: str, reg: Registry, repo: str, tag: str) -> str:
    """Push one layout ref to reg/repo:tag with the tool's own copy function (byte-exact, children first,
    tag last). Returns the top manifest digest."""
    from mirror.copy import CopyItem, copy
    from mirror.http import HostSettings, Http
    from mirror.layout import LayoutStore
    from mirror.reference import Reference, parse
    from mirror.registry import RegistryStore

    http = Http({reg.host: HostSettings(plain_http=reg.plain_http, ca_file=reg.ca_file, username=reg.username,
                                        password=reg.password)}, use_docker_config=False)
    try:
        result = copy(LayoutStore(layout), RegistryStore(http, reg.host),
                      [CopyItem(parse(ref_name), Reference(reg.host, repo, tag))])
    finally:
        http.close()
    assert not result.failed, result.failed[0].error
    assert result.ok[0].top is not None
    return result.ok[0].top.digest


@pytest.fixture
def seed(sample_layout: Path) -> Callable[[Registry], Receipt]:
    """seed(target) -> Receipt: puts the sample images under BASE/<host segment>/ as an import does."""

    def _seed(reg: Registry) -> Receipt:
        copies = [(ref, ref) for ref in SAMPLE_REFS] + [("registry.k8s.io/pause:3.9", PORT_REF)]
        artifacts = []
        for layout_ref, source in copies:
            host, repo, tag = split_ref(source)
            target_repo = f"{BASE}/{HOSTS[host]}/{repo}"
            digest = push_layout_ref(sample_layout, layout_ref, reg, target_repo, tag)
            artifacts.append(ImportedArtifact(kind="image", source=source, target=f"{reg.host}/{target_repo}:{tag}",
                                              digest=digest))
        return Receipt(
            target=Target(registry=reg.host, base=BASE, plain_http=reg.plain_http, ca_file=reg.ca_file,
                          username=reg.username),
            hosts=dict(HOSTS), artifacts=artifacts,
        )

    return _seed


@pytest.fixture
def tls_auth_registry(registry_factory) -> Iterator[Registry]:  # type: ignore[no-untyped-def]
    reg = registry_factory("distribution", tls=True, auth=True)
    yield reg
    reg.stop()


# -- loopback guard -----------------------------------------------------------------------------------------------
def endpoints(files: dict[str, str]) -> list[str]:
    """Every registry endpoint a client would contact, taken from the parsed files."""
    out: list[str] = []
    for path, text in files.items():
        name = path.rsplit("/", 1)[-1]
        if name == "hosts.toml":
            doc = tomllib.loads(text)
            out += [doc["server"], *doc.get("host", {})]
        elif name == "registries.conf":
            for e in tomllib.loads(text).get("registry", []):
                out += ["//" + e["location"], *("//" + m["location"] for m in e.get("mirror", []))]
        elif name == "registries.yaml":
            for m in yaml.safe_load(text)["mirrors"].values():
                out += m["endpoint"]
        elif name == "containerd-config.toml":
            mirrors = tomllib.loads(text)["plugins"]["io.containerd.grpc.v1.cri"]["registry"]["mirrors"]
            out += [e for m in mirrors.values() for e in m["endpoint"]]
        elif name == "imageswap-maps.conf":
            out += ["//" + line.split("::", 1)[1] for line in text.splitlines()
                    if "::" in line and not line.startswith("#") and line.split("::", 1)[1]]
    return out


def assert_loopback_only(files: dict[str, str]) -> None:
    eps = endpoints(files)
    assert eps, "no endpoints found: the guard would prove nothing"
    for ep in eps:
        host = urlsplit(ep if "//" in ep else "//" + ep).hostname
        assert host in LOOPBACK, f"{ep} is not a loopback endpoint"
    for path, text in files.items():                     # and any URL anywhere, comments included
        for m in re.finditer(r"[a-z][a-z0-9+.-]*://([^/\s\"'\]]+)", text):
            assert urlsplit(m.group(0)).hostname in LOOPBACK, f"{path}: {m.group(0)}"


def test_loopback_guard_rejects_the_non_strict_upstream(tmp_path: Path) -> None:
    r = Receipt(target=Target(registry="127.0.0.1:5000", base=BASE, plain_http=True), hosts=dict(HOSTS))
    with pytest.raises(AssertionError, match=r"registry-1\.docker\.io"):
        assert_loopback_only(render(r, "containerd-hosts"))
    assert_loopback_only(render(r, "containerd-hosts", MirrorOptions(strict=True)))


# -- registry helpers ---------------------------------------------------------------------------------------------
def head_manifest(reg: Registry, repo: str, tag: str) -> httpx.Response:
    with reg.client(timeout=10) as c:
        return c.head(f"/v2/{repo}/manifests/{tag}", headers={"Accept": ACCEPT})


def digest_of(receipt: Receipt, source: str) -> str:
    return next(a.digest for a in receipt.artifacts if a.source == source)


# -- containerd ---------------------------------------------------------------------------------------------------
@dataclass
class Containerd:
    address: str
    root: Path

    def ctr(self, *args: str, namespace: str = "mirrortest", timeout: float = 120) -> str:
        return _run(["ctr", "--address", self.address, "--namespace", namespace, *args], timeout=timeout)


@pytest.fixture
def containerd(tmp_path: Path) -> Iterator[Containerd]:
    """A private containerd (own root, state, socket; CRI and unneeded plugins off), stopped after the test."""
    _need("containerd", "ctr")
    if os.geteuid() != 0:
        pytest.skip("containerd needs root")
    d = tmp_path / "ctrd"
    d.mkdir()
    sock = d / "c.sock"
    disabled = ["io.containerd.grpc.v1.cri", "io.containerd.internal.v1.opt", "io.containerd.internal.v1.tracing",
                "io.containerd.tracing.processor.v1.otlp", "io.containerd.snapshotter.v1.btrfs",
                "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
                "io.containerd.snapshotter.v1.aufs"]
    cfg = d / "config.toml"
    cfg.write_text("\n".join([
        "version = 2",
        f'root = "{d / "root"}"',
        f'state = "{d / "state"}"',
        "disabled_plugins = [" + ", ".join(f'"{p}"' for p in disabled) + "]",
        "[grpc]", f'  address = "{sock}"',
        "[ttrpc]", f'  address = "{sock}.ttrpc"',
        "[debug]", '  address = ""',
        "[metrics]", '  address = ""',
        "",
    ]))
    log = (d / "containerd.log").open("wb")
    proc = subprocess.Popen(["containerd", "--config", str(cfg)], stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    c = Containerd(str(sock), d)
    try:
        for _ in range(200):
            if proc.poll() is not None:
                raise AssertionError(f"containerd exited:\n{(d / 'containerd.log').read_text()[-3000:]}")
            try:
                c.ctr("version", timeout=5)
                break
            except AssertionError:
                import time

                time.sleep(0.05)
        else:
            raise AssertionError(f"containerd did not answer:\n{(d / 'containerd.log').read_text()[-3000:]}")
        yield c
    finally:
        stop_process(proc, timeout=10)
        log.close()


def _pulled_digest(c: Containerd, ref: str) -> str:
    for line in c.ctr("images", "ls").splitlines()[1:]:
        cols = line.split()
        if cols and cols[0] == ref:
            return cols[2]
    raise AssertionError(f"{ref} not in ctr images ls")


def _ctr_pull_all(c: Containerd, receipt: Receipt, hosts_dir: Path, *extra: str) -> None:
    for source in [*SAMPLE_REFS, PORT_REF]:
        c.ctr("images", "pull", "--hosts-dir", str(hosts_dir), "--platform", "linux/amd64",
              "--snapshotter", "native", *extra, source)
        assert _pulled_digest(c, source) == digest_of(receipt, source)


def test_containerd_pulls_plain_http_target(containerd: Containerd, target_registry: Registry, seed,  # type: ignore[no-untyped-def]
                                            tmp_path: Path) -> None:
    receipt = seed(target_registry)
    files = render(receipt, "containerd-hosts", MirrorOptions(strict=True))
    assert_loopback_only(files)
    write_files(files, tmp_path / "gen")
    hosts_dir = tmp_path / "gen" / "certs.d"
    _ctr_pull_all(containerd, receipt, hosts_dir)
    # An imported host, but a tag the import did not bring: the mirror answers 404 and nothing else is asked.
    with pytest.raises(AssertionError, match="not found"):
        containerd.ctr("images", "pull", "--hosts-dir", str(hosts_dir), "--platform", "linux/amd64",
                       "--snapshotter", "native", "docker.io/library/nginx:9.99", timeout=60)


def test_containerd_pulls_tls_target_with_ca_and_basic_auth(containerd: Containerd,  # type: ignore[no-untyped-def]
                                                            tls_auth_registry: Registry, seed,
                                                            tmp_path: Path) -> None:
    reg = tls_auth_registry
    receipt = seed(reg)
    assert receipt.target.ca_file and not receipt.target.plain_http
    files = render(receipt, "containerd-hosts", MirrorOptions(strict=True))
    assert_loopback_only(files)
    assert all(tomllib.loads(t)["ca"] == "ca.crt" for p, t in files.items() if p.endswith("hosts.toml"))
    write_files(files, tmp_path / "gen")
    hosts_dir = tmp_path / "gen" / "certs.d"
    _ctr_pull_all(containerd, receipt, hosts_dir, "--user", f"{reg.username}:{reg.password}")
    # Rendered without the CA, the same pull fails TLS verification: the generated CA is what made it work.
    no_ca = dataclasses.replace(receipt, target=dataclasses.replace(receipt.target, ca_file=None))
    write_files(render(no_ca, "containerd-hosts", MirrorOptions(strict=True)), tmp_path / "noca")
    with pytest.raises(AssertionError, match="certificate signed by unknown authority"):
        containerd.ctr("images", "pull", "--hosts-dir", str(tmp_path / "noca" / "certs.d"),
                       "--platform", "linux/amd64",
                       "--snapshotter", "native", "--user", f"{reg.username}:{reg.password}",
                       "quay.io/coreos/etcd:v3.5.9", namespace="noca", timeout=60)


# -- skopeo and podman with registries.conf ------------------------------------------------------------------------
def _registries_conf(receipt: Receipt, tmp_path: Path) -> Path:
    files = render(receipt, "registries-conf", MirrorOptions(strict=True))
    assert_loopback_only(files)
    conf = tmp_path / "registries.conf"
    conf.write_text(files["registries.conf"])
    return conf


def test_skopeo_pulls_by_original_names(target_registry: Registry, seed, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    receipt = seed(target_registry)
    conf = _registries_conf(receipt, tmp_path)
    # skopeo's docker transport expands nginx:1.25 to docker.io/library/nginx:1.25 itself
    names = {"nginx:1.25": "docker.io/library/nginx:1.25", **{s: s for s in [*SAMPLE_REFS, PORT_REF]}}
    for name, source in names.items():
        raw = subprocess.run(["skopeo", "--registries-conf", str(conf), "inspect", "--raw", f"docker://{name}"],
                             capture_output=True, timeout=60)
        assert raw.returncode == 0, raw.stderr.decode()
        assert "sha256:" + hashlib.sha256(raw.stdout).hexdigest() == digest_of(receipt, source), name
    out = tmp_path / "copied"
    _run(["skopeo", "--registries-conf", str(conf), "copy", "--quiet", "--override-arch", "amd64",
          "--override-os", "linux", "docker://quay.io/coreos/etcd:v3.5.9", f"oci:{out}:etcd"])
    assert json.loads((out / "index.json").read_text())["manifests"]


def test_skopeo_tls_target_with_cert_dir_and_creds(tls_auth_registry: Registry, seed,  # type: ignore[no-untyped-def]
                                                   tmp_path: Path) -> None:
    reg = tls_auth_registry
    receipt = seed(reg)
    conf = _registries_conf(receipt, tmp_path)
    assert tomllib.loads(conf.read_text())["registry"][0]["insecure"] is False
    certs = tmp_path / "certs"
    certs.mkdir()
    shutil.copy(reg.ca_file, certs / "ca.crt")
    # containers/image drops --creds for a mirror on another host (by design): credentials for the mirror
    # come from an auth file keyed by the target, as the registries.conf comment tells users.
    authfile = tmp_path / "auth.json"
    token = base64.b64encode(f"{reg.username}:{reg.password}".encode()).decode()
    authfile.write_text(json.dumps({"auths": {reg.host: {"auth": token}}}))
    raw = _run(["skopeo", "--registries-conf", str(conf), "inspect", "--raw", "--cert-dir", str(certs),
                "--authfile", str(authfile), "docker://registry.k8s.io/pause:3.9"])
    assert "sha256:" + hashlib.sha256(raw.encode()).hexdigest() == digest_of(receipt, "registry.k8s.io/pause:3.9")


def test_podman_pulls_by_original_and_short_names(target_registry: Registry, seed,  # type: ignore[no-untyped-def]
                                                  tmp_path: Path, request: pytest.FixtureRequest) -> None:
    _need("podman")
    receipt = seed(target_registry)
    conf = _registries_conf(receipt, tmp_path)
    home = tmp_path / "home"
    home.mkdir()
    env = {**os.environ, "CONTAINERS_REGISTRIES_CONF": str(conf), "HOME": str(home),
           "XDG_CONFIG_HOME": str(home / ".config"), "XDG_CACHE_HOME": str(home / ".cache")}
    runroot = Path(tempfile.mkdtemp(prefix="amr-"))          # podman refuses a runroot over 50 characters
    request.addfinalizer(lambda: shutil.rmtree(runroot, ignore_errors=True))
    base = ["podman", "--root", str(tmp_path / "storage"), "--runroot", str(runroot),
            "--storage-driver", "vfs", "--cgroup-manager", "cgroupfs", "--events-backend", "file"]
    for name, source in [("nginx:1.25", "docker.io/library/nginx:1.25"),
                         ("quay.io/coreos/etcd:v3.5.9", "quay.io/coreos/etcd:v3.5.9"),
                         ("registry.k8s.io/pause:3.9", "registry.k8s.io/pause:3.9"),
                         (PORT_REF, PORT_REF)]:
        _run([*base, "pull", "--quiet", "--arch", "amd64", "--os", "linux", name], env=env, timeout=180)
        info = json.loads(_run([*base, "image", "inspect", source], env=env))
        assert info[0]["Digest"] == digest_of(receipt, source), name


# -- k3s registries.yaml and the legacy containerd config: resolve like the runtime, HEAD on the target ------------
def _go_expand(template: str, m: re.Match[str]) -> str:
    """Go regexp Expand: $1 / ${1} (what k3s does with a rewrite value)."""
    return re.sub(r"\$\{?(\d+)\}?", lambda g: m.group(int(g.group(1))) or "", template)


def test_k3s_rewrites_reach_imported_manifests(target_registry: Registry, seed) -> None:  # type: ignore[no-untyped-def]
    receipt = seed(target_registry)
    files = render(receipt, "k3s", MirrorOptions(strict=True))
    assert_loopback_only(files)
    doc = yaml.safe_load(files["registries.yaml"])
    for a in receipt.artifacts:
        host, repo, tag = split_ref(a.source)
        mirror = doc["mirrors"][host]
        endpoint = mirror["endpoint"][0]
        assert urlsplit(endpoint).netloc == target_registry.host
        ((pattern, template),) = mirror["rewrite"].items()
        m = re.match(pattern, repo)
        assert m, (pattern, repo)
        rewritten = _go_expand(template, m)
        assert f"{target_registry.host}/{rewritten}:{tag}" == a.target
        r = head_manifest(target_registry, rewritten, tag)
        assert r.status_code == 200 and r.headers["docker-content-digest"] == a.digest, a.source


def test_containerd_legacy_endpoints_reach_imported_manifests(target_registry: Registry, seed) -> None:  # type: ignore[no-untyped-def]
    receipt = seed(target_registry)
    files = render(receipt, "containerd-config", MirrorOptions(strict=True))
    assert_loopback_only(files)
    mirrors = tomllib.loads(files["containerd-config.toml"])["plugins"]["io.containerd.grpc.v1.cri"]["registry"][
        "mirrors"]
    with httpx.Client(timeout=10) as c:
        for a in receipt.artifacts:
            host, repo, tag = split_ref(a.source)
            (endpoint,) = mirrors[host]["endpoint"]
            # an endpoint with a path is used as the API root as-is (containerd adds /v2 only without one)
            r = c.head(f"{endpoint}/{repo}/manifests/{tag}", headers={"Accept": ACCEPT})
            assert r.status_code == 200 and r.headers["docker-content-digest"] == a.digest, a.source


# -- image swap: the webhook's rules and Palette's string land on images that exist -----------------------------------
def test_image_swap_maps_and_string_land_on_existing_images(target_registry: Registry, seed) -> None:  # type: ignore[no-untyped-def]
    receipt = seed(target_registry)
    maps = render(receipt, "image-swap-maps")["imageswap-maps.conf"]
    assert_loopback_only({"imageswap-maps.conf": maps})
    names = {"nginx:1.25": "docker.io/library/nginx:1.25", "library/nginx:1.25": "docker.io/library/nginx:1.25",
             **{a.source: a.source for a in receipt.artifacts}}
    for name, source in names.items():
        swapped = apply_maps(maps, name)
        assert swapped == f"{target_registry.host}/{BASE}/{HOSTS[split_ref(source)[0]]}/" + source.split("/", 1)[1]
        _, repo, tag = split_ref(swapped)
        r = head_manifest(target_registry, repo, tag)
        assert r.status_code == 200 and r.headers["docker-content-digest"] == digest_of(receipt, source), name
    text = render(receipt, "image-swap")["image-swap.txt"].strip()
    pairs = dict(p.split("::", 1) for p in text.split(","))
    for a in receipt.artifacts:
        host, rest = a.source.split("/", 1)
        assert f"{pairs[host]}/{rest}" == a.target
        _, repo, tag = split_ref(f"{pairs[host]}/{rest}")
        assert head_manifest(target_registry, repo, tag).status_code == 200
