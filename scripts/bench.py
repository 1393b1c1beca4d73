"""Benchmark: airgap-mirror vs skopeo doing the same jobs on the same content (see scripts/bench).

export: airgap-mirror export  vs  `skopeo copy --all` of every tag into one OCI layout
import: airgap-mirror import  vs  `skopeo sync --scoped --src dir` of a dir tree into the target, same base path
skopeo's blob-info cache is cleared before each timed step (it would turn copies into mounts).
Peak RSS is measured per child process with wait4().
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from mirror.reference import parse

REPO = Path(__file__).resolve().parent.parent
BYTES = int(os.environ.get("BENCH_BYTES", "1100000000"))
JOBS = os.environ.get("BENCH_JOBS", "8")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_registry(work: Path, name: str) -> tuple[str, subprocess.Popen[bytes]]:
    port = free_port()
    d = work / name
    d.mkdir(parents=True)
    (d / "config.yml").write_text(
        # the storage settings Debian's package ships (/etc/docker/registry/config.yml), for every registry
        f"version: 0.1\nstorage:\n  cache: {{blobdescriptor: inmemory}}\n  filesystem: {{rootdirectory: {d}/data}}\n"
        f"  delete: {{enabled: true}}\n"
        f"http: {{addr: '127.0.0.1:{port}'}}\nlog: {{level: error}}\n")
    p = subprocess.Popen(["docker-registry", "serve", str(d / "config.yml")], stdout=subprocess.DEVNULL,
                         stderr=open(d / "log", "wb"))
    for _ in range(100):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1)
            break
        except OSError:
            time.sleep(0.1)
    return f"127.0.0.1:{port}", p


def clear_skopeo_cache() -> None:
    for d in (Path("/var/lib/containers/cache"), Path.home() / ".local/share/containers/cache"):
        for f in d.glob("blob-info-cache*"):
            f.unlink()


def timed(cmd: list[str], **kw: object) -> tuple[float, int]:
    """Run cmd; return (seconds, peak RSS in MB of that process)."""
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, **kw)  # type: ignore[call-overload]
    _, status, usage = os.wait4(p.pid, 0)
    dt = time.monotonic() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"bench: command failed: {' '.join(cmd)}")
    return dt, usage.ru_maxrss // 1024


def timed_many(cmds: list[list[str]]) -> tuple[float, int]:
    t0 = time.monotonic()
    peak = 0
    for c in cmds:
        _, rss = timed(c, stdout=subprocess.DEVNULL)
        peak = max(peak, rss)
    return time.monotonic() - t0, peak


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="airgap-bench."))
    procs = []
    try:
        src, p1 = start_registry(work, "source")
        dst_a, p2 = start_registry(work, "target-airgap")
        dst_s, p3 = start_registry(work, "target-skopeo")
        procs = [p1, p2, p3]
        layout = work / "layout"
        t0 = time.monotonic()
        # Built and seeded in child processes: this process stays small, so the peak RSS that wait4()
        # reports for the timed children (whose pre-exec pages are this process's) is theirs.
        py = sys.executable
        refs = subprocess.run([py, "-m", "mirror.sample", "build", str(layout), "--profile", "bench",
                               "--scale-bytes", str(BYTES)], check=True, capture_output=True,
                              text=True).stdout.split()
        print(f"built {len(refs)} artifacts in {time.monotonic() - t0:.0f}s; seeding {src}", flush=True)
        subprocess.run([py, "-m", "mirror.sample", "seed", str(layout), "--to", f"http://{src}"], check=True,
                       stdout=subprocess.DEVNULL)
        hosts = sorted({parse(r).registry for r in refs})
        content = work / "content.yaml"
        content.write_text("apiVersion: airgap-mirror/v1\nkind: Content\nregistries:\n"
                           + "".join(f"  {h}: {{endpoint: 'http://{src}'}}\n" for h in hosts)
                           + "images:\n" + "".join(f"  - {r}\n" for r in refs))
        unique = sum(p.stat().st_size for p in (layout / "blobs" / "sha256").iterdir())
        am = str(REPO / ".venv/bin/airgap-mirror")

        # -- export ----------------------------------------------------------------------------------
        clear_skopeo_cache()
        bundle = work / "bundle"
        t_exp, rss_exp = timed([am, "export", "-f", str(content), "-o", str(bundle), "-j", JOBS,
                                "--split-size", "4G"], stdout=subprocess.DEVNULL)
        info = json.loads((bundle / "bundle.json").read_text())
        bundle_bytes = sum(p["size"] for p in info["parts"])
        unique_b = sum(b["size"] for b in info["blobs"].values())
        clear_skopeo_cache()
        sk_layout = work / "skopeo-oci"
        t_sk_exp, rss_sk_exp = timed_many([
            ["skopeo", "copy", "-q", "--all", "--preserve-digests", "--src-tls-verify=false",
             f"docker://{src}/{parse(r).repository}:{parse(r).tag}", f"oci:{sk_layout}:{r}"] for r in refs])

        # -- import ----------------------------------------------------------------------------------
        # skopeo's input: a dir tree <host>/<repo>:<tag> (prepared, not timed), synced with --scoped.
        tree = work / "skopeo-dir"
        for r in refs:
            ref = parse(r)
            dest = tree / ref.registry / f"{ref.repository}:{ref.tag}"
            dest.parent.mkdir(parents=True, exist_ok=True)
            # from the source registry: skopeo cannot read Docker v2 types back out of an OCI layout
            subprocess.run(["skopeo", "copy", "-q", "--all", "--preserve-digests", "--src-tls-verify=false",
                            f"docker://{src}/{ref.repository}:{ref.tag}", f"dir:{dest}"], check=True)
        clear_skopeo_cache()
        t_imp, rss_imp = timed([am, "import", str(bundle), "--to", f"{dst_a}/airgap-images", "--plain-http",
                                "-j", JOBS], stdout=subprocess.DEVNULL)
        t_imp2, _ = timed([am, "import", str(bundle), "--to", f"{dst_a}/airgap-images", "--plain-http",
                           "-j", JOBS], stdout=subprocess.DEVNULL)
        clear_skopeo_cache()
        t_sk_imp, rss_sk_imp = timed(["skopeo", "sync", "--all", "--preserve-digests", "--scoped",
                                      "--src", "dir", "--dest", "docker", "--dest-tls-verify=false",
                                      str(tree), f"{dst_s}/airgap-images"], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        # sanity: skopeo's import landed where ours did (scoped paths) for one ref
        probe = parse(refs[0])
        for d in (dst_a,):
            urllib.request.urlopen(urllib.request.Request(
                f"http://{d}/v2/airgap-images/{probe.registry}/{probe.repository}/manifests/{probe.tag}",
                method="HEAD", headers={"Accept": "application/vnd.oci.image.index.v1+json, "
                                        "application/vnd.oci.image.manifest.v1+json, "
                                        "application/vnd.docker.distribution.manifest.v2+json, "
                                        "application/vnd.docker.distribution.manifest.list.v2+json"}))

        mb = unique / 1e6

        def row(name: str, ours: float, theirs: float, rss_o: int, rss_t: int) -> str:
            return (f"| {name} | {ours:.1f} s | {mb / ours:.0f} MB/s | {theirs:.1f} s | {mb / theirs:.0f} MB/s | "
                    f"**{theirs / ours:.2f}x** | {rss_o} MB | {rss_t} MB |")

        print(f"\ncontent: {len(refs)} artifacts, {unique / 1e6:.0f} MB unique blob bytes "
              f"({len(info['blobs'])} blobs), source/targets: Debian docker-registry on loopback, -j {JOBS}\n")
        print("| step | airgap-mirror | MB/s | skopeo | MB/s | speed-up | peak RSS (ours) | peak RSS (skopeo) |")
        print("|---|---|---|---|---|---|---|---|")
        print(row("export", t_exp, t_sk_exp, rss_exp, rss_sk_exp))
        print(row("import", t_imp, t_sk_imp, rss_imp, rss_sk_imp))
        print(f"\n| measure | value | target |\n|---|---|---|\n"
              f"| bundle bytes / unique blob bytes | {bundle_bytes} / {unique_b} = "
              f"{bundle_bytes / unique_b:.4f} | <= 1.01 |\n"
              f"| second import of the same bundle | {t_imp2:.2f} s = {100 * t_imp2 / t_imp:.1f}% of first | "
              f"<= 10% |\n"
              f"| peak RSS export / import | {rss_exp} MB / {rss_imp} MB | <= 200 MB |")
        extra = REPO / "scripts" / "bench-delta"
        if extra.exists():
            env = dict(os.environ, BENCH_SOURCE=src, BENCH_CONTENT=str(content), BENCH_WORK=str(work),
                       BENCH_BUNDLE=str(bundle), BENCH_TARGET=dst_a, BENCH_LAYOUT=str(layout),
                       BENCH_EXPORT_SECONDS=f"{t_exp:.3f}")
            subprocess.run([str(extra)], env=env, check=False)
        return 0
    finally:
        for p in procs:
            p.terminate()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
