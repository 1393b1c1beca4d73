"""Resume after SIGKILL: export and import are killed (kill -9) at several points, rerun, and must redo only
the missing work and end identical to an uninterrupted run.

The CLI runs as a subprocess. A bandwidth-limiting TCP proxy on 127.0.0.1 sits in front of the registry the
run talks to, so a big layer takes a couple of seconds and the kill lands mid-transfer deterministically.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mirror import sample
from mirror.bundle import BundleInfo
from mirror.delta import take_inventory
from mirror.http import HostSettings, Http
from mirror.mediatypes import INDEXES, MANIFESTS
from mirror.registry import RegistryStore
from tests.support.registries import Registry, RegistryFactory
from tests.support.sockets import pump
from tests.test_delta import BASE, fetched, ok, write_content

REPO = Path(__file__).resolve().parents[1]
BIG = 4_000_000                 # the big layer: ~1.6 s through the proxy
RATE = 2_500_000                # proxy bytes per second, each direction


class Throttle:
    """TCP proxy 127.0.0.1:port -> 127.0.0.1:upstream that limits each direction to `rate` bytes/s."""

    def __init__(self, upstream: int, rate: int = RATE) -> None:
        self.upstream = upstream
        self.rate = rate
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.conns: list[socket.socket] = []
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            up = socket.create_connection(("127.0.0.1", self.upstream))
            self.conns += [client, up]
            threading.Thread(target=self._pump, args=(client, up), daemon=True).start()
            threading.Thread(target=self._pump, args=(up, client), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        pump(src, dst, size=32768, pace=lambda n: time.sleep(n / self.rate))

    def drop(self) -> None:
        """Cut every connection open now: what a killed client had sent but the proxy not yet forwarded is
        lost, as it would be on a real network, instead of reaching the registry seconds later."""
        conns, self.conns = self.conns, []
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.close()

    def close(self) -> None:
        self.closed = True
        self.sock.close()
        self.drop()


def cli(*argv: str) -> list[str]:
    return [sys.executable, "-m", "mirror.cli", *argv]


def kill_when(argv: list[str], cond: Callable[[], bool], timeout: float = 60,
              then: Callable[[], None] | None = None) -> None:
    """Run the CLI and SIGKILL it as soon as `cond()` holds, then call `then`; fail if it finished first."""
    p = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + timeout
    try:
        while p.poll() is None and time.monotonic() < deadline:
            if cond():
                p.send_signal(signal.SIGKILL)
                p.wait()
                if then is not None:
                    then()
                break
            time.sleep(0.003)
        _, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == -signal.SIGKILL, f"the run was not killed mid-way (exit {p.returncode}): {err!r}"


def finish(argv: list[str]) -> str:
    p = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, f"{argv} exited {p.returncode}:\n{p.stdout}\n{p.stderr}"
    return p.stdout


@dataclass
class Env:
    source: Registry
    content: Path             # points straight at the source
    slow_content: Path        # points at the source through the throttle
    reference: Path           # an uninterrupted export
    reference_out: str


@pytest.fixture(scope="module")
def env(registry_factory: RegistryFactory, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    work = tmp_path_factory.mktemp("resume")
    source = registry_factory("distribution")
    proxy = Throttle(int(source.host.rsplit(":", 1)[1]))
    try:
        refs = sample.build(work / "layout", "test", big_layer_bytes=BIG)
        sample.seed(work / "layout", source.url, quiet=True)
        content = write_content(work / "c.yaml", source.url, refs)
        slow = write_content(work / "slow.yaml", proxy.url, refs)
        out = ok("export", "-f", str(content), "-o", str(work / "reference"), "--name", "c")
        yield Env(source, content, slow, work / "reference", out)
    finally:
        proxy.close()
        source.stop()


def journal_entries(bundle: Path) -> list[dict[str, Any]]:
    """The lines of an export in progress's .work/journal, one JSON object per finished blob."""
    try:
        lines = (bundle / ".work" / "journal").read_text().splitlines()
    except FileNotFoundError:
        return []
    out = []
    for line in lines:
        try:
            out.append(json.loads(line))
        except ValueError:
            pass                        # a line being written
    return out


def journal(bundle: Path) -> list[str]:
    """Digests an export in progress has finished."""
    return [e["digest"] for e in journal_entries(bundle)]


def written_bytes(path: Path) -> int:
    """Bytes written into a file: its data segments (SEEK_DATA/SEEK_HOLE), not its allocated blocks, which
    the export reserves for every planned layer before the first one arrives."""
    fd = os.open(path, os.O_RDONLY)
    try:
        end = os.fstat(fd).st_size
        pos = total = 0
        while pos < end:
            try:
                data = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError:                 # ENXIO: no data after pos
                break
            pos = os.lseek(fd, data, os.SEEK_HOLE)
            total += min(pos, end) - data
        return total
    finally:
        os.close(fd)


def unjournaled_bytes(bundle: Path) -> int:
    """Bytes written under .work that no finished blob accounts for: a blob being written."""
    work = bundle / ".work"
    try:
        lines = (work / "journal").read_text().splitlines()
        on_disk = sum(written_bytes(p) for p in work.rglob("*") if p.is_file() and p.name != "journal")
    except FileNotFoundError:
        return 0
    done = 0
    for line in lines:
        try:
            done += json.loads(line)["length"]
        except ValueError:
            pass
    return on_disk - done


def test_export_killed_and_rerun(env: Env, tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    argv = cli("export", "-f", str(env.slow_content), "-o", str(out), "--name", "c", "-j", "1")
    total = fetched(env.reference_out)
    ref = BundleInfo.load(env.reference)

    # 1: killed after a few blobs
    kill_when(argv, lambda: len(journal(out)) >= 3)
    first = journal(out)
    assert 3 <= len(first) < total
    assert not (out / "bundle.json").exists()

    # 2: killed again in the middle of the big layer; what run 1 finished was not fetched again
    kill_when(argv, lambda: unjournaled_bytes(out) > BIG * 3 // 8)
    second = journal(out)
    assert second[:len(first)] == first
    assert len(second) == len(set(second)), "a finished blob was fetched again"
    # the journal holds manifests too: each artifact's are written once its own blobs are in, beside the
    # transfers still running (and small blobs go beside the big layer, however small -j)
    kept = [d for d in second if ref.blobs[d].media_type not in INDEXES | MANIFESTS]
    assert len(kept) < total

    # 3: finishes, fetching only the blobs that were missing
    summary = finish(argv)
    assert fetched(summary) == total - len(kept) >= 1
    info = BundleInfo.load(out)
    assert info.artifacts == ref.artifacts
    assert info.blobs == ref.blobs
    assert [(p.name, p.size, p.sha256) for p in info.parts] == [(p.name, p.size, p.sha256) for p in ref.parts]
    assert not (out / ".work").exists()


def test_export_rerun_after_a_power_cut_fetches_what_never_reached_the_disk(env: Env, tmp_path: Path) -> None:
    """The journal is written after each blob's bytes, neither is synced: after a power cut its lines can be
    on disk and the bytes not. Here the first run is killed, and then what a power cut leaves is made by
    hand: a layer's reserved blocks read as zeros, a staged frame is empty. The rerun finds both, fetches
    them again, and ends byte-identical to an uninterrupted export."""
    out = tmp_path / "bundle"
    argv = cli("export", "-f", str(env.slow_content), "-o", str(out), "--name", "c", "-j", "1")

    def both_kinds() -> bool:
        offsets = [e["offset"] for e in journal_entries(out)]
        return any(o >= 0 for o in offsets) and any(o < 0 for o in offsets)

    kill_when(argv, both_kinds)
    entries = journal_entries(out)
    layer = next(e for e in entries if e["offset"] >= 0)
    staged = next(e for e in entries if e["offset"] < 0)
    with (out / ".work" / "c.tar.zst").open("r+b") as f:
        f.seek(layer["offset"])
        f.write(b"\0" * layer["length"])
    (out / ".work" / "frames" / staged["digest"].replace(":", "-")).write_bytes(b"")

    p = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stderr.count("is not intact on disk") == 2, p.stderr
    assert layer["digest"] in p.stderr and staged["digest"] in p.stderr
    ref = BundleInfo.load(env.reference)
    info = BundleInfo.load(out)
    assert info.blobs == ref.blobs
    assert [(q.name, q.size, q.sha256) for q in info.parts] == [(q.name, q.size, q.sha256) for q in ref.parts]


def storage_blobs(reg: Registry, skip: frozenset[str] = frozenset()) -> int:
    """Blobs in the registry's storage, less `skip` (it keeps manifests there too)."""
    d = reg.root / "docker" / "registry" / "v2" / "blobs" / "sha256"
    if not d.exists():
        return 0
    return sum(1 for p in d.glob("*/*/data") if f"sha256:{p.parent.name}" not in skip)


def settled_blobs(reg: Registry, skip: frozenset[str] = frozenset()) -> int:
    """Blobs in storage once the registry has finished what the killed client had already sent (a request
    whose body arrived before the kill still completes server-side)."""
    last = -1
    while (n := storage_blobs(reg, skip)) != last:
        last = n
        time.sleep(0.5)
    return n


def upload_over(reg: Registry, n: int) -> bool:
    d = reg.root / "docker" / "registry" / "v2" / "repositories"
    try:
        return any(p.stat().st_size > n for p in d.glob("**/_uploads/*/data"))
    except FileNotFoundError:
        return False


def inventory(reg: Registry) -> dict[str, object]:
    http = Http({reg.host: HostSettings(plain_http=True)})
    try:
        doc = take_inventory(RegistryStore(http, reg.host), BASE)
    finally:
        http.close()
    return {"repositories": doc["repositories"], "blobs": doc["blobs"]}


def test_import_killed_and_rerun(env: Env, registry_factory: RegistryFactory) -> None:
    resumed = registry_factory("distribution")
    clean = registry_factory("distribution")
    proxy = Throttle(int(resumed.host.rsplit(":", 1)[1]))
    try:
        full = ok("import", str(env.reference), "--to", f"{clean.host}/{BASE}", "--plain-http")
        total = fetched(full)
        argv = cli("import", str(env.reference), "--to", f"127.0.0.1:{proxy.port}/{BASE}", "--plain-http",
                   "-j", "1")
        # the registry stores manifests as blobs too, and those of finished artifacts go up beside the
        # transfers: count layers and configs only
        manifests = frozenset(d for d, e in BundleInfo.load(env.reference).blobs.items()
                              if e.media_type in INDEXES | MANIFESTS)

        # 1: killed after a few blobs landed
        kill_when(argv, lambda: storage_blobs(resumed, manifests) >= 3, then=proxy.drop)
        landed = settled_blobs(resumed, manifests)
        assert 3 <= landed < total
        # 2: killed in the middle of the big layer's upload (the rest of its body, sent into the proxy's
        # buffers before the kill, is cut with the connection: otherwise it could land after `before`)
        kill_when(argv, lambda: upload_over(resumed, BIG // 4), then=proxy.drop)
        before = settled_blobs(resumed, manifests)
        assert landed <= before < total
        # 3: finishes, pushing only the blobs that are missing, and the manifests not yet there
        summary = finish(argv)
        assert fetched(summary) == total - before >= 1
        assert inventory(resumed) == inventory(clean)
    finally:
        proxy.close()
        resumed.stop()
        clean.stop()


def test_rerun_after_finish_pushes_nothing(env: Env, target_registry: Registry) -> None:
    ok("import", str(env.reference), "--to", f"{target_registry.host}/{BASE}", "--plain-http")
    again = ok("import", str(env.reference), "--to", f"{target_registry.host}/{BASE}", "--plain-http")
    assert fetched(again) == 0


def manifests_in_storage(reg: Registry) -> int:
    """Manifest revisions the target has linked (pushed by digest or tag)."""
    d = reg.root / "docker" / "registry" / "v2" / "repositories"
    return len(list(d.glob("**/_manifests/revisions/sha256/*/link"))) if d.exists() else 0


def test_import_killed_while_pushing_manifests(env: Env, registry_factory: RegistryFactory) -> None:
    """Killed after every blob landed, while manifests (children first, tags last) were being pushed: the
    rerun pushes no blob again, and the target ends identical to an uninterrupted import."""
    resumed = registry_factory("distribution")
    clean = registry_factory("distribution")
    proxy = Throttle(int(resumed.host.rsplit(":", 1)[1]), rate=200_000)    # slow: the kill lands mid-phase
    try:
        ok("import", str(env.reference), "--to", f"{clean.host}/{BASE}", "--plain-http")
        ok("import", str(env.reference), "--to", f"{resumed.host}/{BASE}", "--plain-http", "--verify")
        # wipe the manifests only: every blob is in place, as if a run had died right after the blob phase
        repos = resumed.root / "docker" / "registry" / "v2" / "repositories"
        for d in repos.glob("**/_manifests"):
            shutil.rmtree(d)
        assert manifests_in_storage(resumed) == 0
        argv = cli("import", str(env.reference), "--to", f"127.0.0.1:{proxy.port}/{BASE}", "--plain-http",
                   "-j", "1")
        kill_when(argv, lambda: manifests_in_storage(resumed) >= 2)
        partial = manifests_in_storage(resumed)
        assert partial >= 2
        assert inventory(resumed) != inventory(clean), "the kill came too late to test anything"
        summary = finish(argv)
        assert fetched(summary) == 0                 # blobs were all there: nothing is uploaded again
        assert inventory(resumed) == inventory(clean)
    finally:
        proxy.close()
        resumed.stop()
        clean.stop()
