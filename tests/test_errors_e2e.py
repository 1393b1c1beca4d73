"""Bad input end to end: each case gives a one-line error (what, where, hint) on stderr, a non-zero exit, and
no partial tag in the target. Real registries on loopback; nothing here waits for real backoff."""

from __future__ import annotations

import hashlib
import http.server
import json
import re
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from mirror import defaults
from mirror.bundle import BundleInfo
from tests.support import flow
from tests.support.registries import Registry, RegistryFactory, free_port


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the retry logic but make its waits tiny (the delays themselves are tested with a fake clock)."""
    monkeypatch.setattr(defaults, "BACKOFF_BASE", 0.001)
    monkeypatch.setattr(defaults, "BACKOFF_MAX", 0.01)


@pytest.fixture(scope="module")
def world(registry_factory: RegistryFactory, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    source = registry_factory("distribution")
    yield flow.exported_world(tmp_path_factory.mktemp("errors"), source)
    source.stop()


def one_line_error(res: flow.CliResult, *fragments: str, hint: str = "") -> str:
    """The run failed with a final `error: WHERE: WHAT — hint: ...` line and no traceback."""
    assert res.code != 0, res.out
    assert "Traceback" not in res.err, res.err
    line = res.error_line
    assert line, res.err
    for f in fragments:
        assert f in line, (f, line)
    if hint:
        assert " — hint: " in line and hint in line.split(" — hint: ", 1)[1], line
    return line


def no_tags(reg: Registry) -> None:
    assert flow.catalog(reg) == [], "something was pushed"


def nothing_tagged(reg: Registry) -> None:
    """Intact, verified blobs may have landed (the part checksums run beside the pushes); no tag has."""
    tagged = {repo: t for repo in flow.catalog(reg) if (t := flow.tags(reg, repo))}
    assert tagged == {}, f"something was tagged: {tagged}"


def copy_bundle(world: dict[str, Any], tmp_path: Path) -> Path:
    dst = tmp_path / "B"
    shutil.copytree(world["bundle"], dst)
    return dst


# -- export side -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("image, fragment", [
    ("docker.io/library/nope:1.0", "docker.io/library/nope:1.0"),        # unknown image
    ("docker.io/library/nginx:9.99", "docker.io/library/nginx:9.99"),    # unknown tag
])
def test_unknown_image_or_tag(world: dict[str, Any], tmp_path: Path, image: str, fragment: str) -> None:
    content = flow.write_content(tmp_path / "c.yaml", world["source"], ["ghcr.io/example/tool:v1", image])
    res = flow.run_cli(["export", "-f", str(content), "-o", str(tmp_path / "out")])
    one_line_error(res, "1 of 2 artifacts failed", hint="no bundle was written")
    detail = [ln for ln in res.err_lines if ln.startswith(f"error: {fragment}")]
    assert len(detail) == 1, res.err
    assert "not found" in detail[0] and "exist in the source" in detail[0]
    assert not (tmp_path / "out" / "bundle.json").exists()


def test_interrupted_export_is_refused_by_verify_then_resumes(world: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "out"
    content = flow.write_content(tmp_path / "c.yaml", world["source"],
                                 ["docker.io/library/nginx:1.25", "quay.io/coreos/etcd:v3.5.9",
                                  "quay.io/coreos/missing:v1"])
    res = flow.run_cli(["export", "-f", str(content), "-o", str(out), "--split-size", "1M"])
    one_line_error(res, "artifacts failed")
    assert not (out / "bundle.json").exists()
    assert not list(out.glob("*.tar.zst*"))
    res = flow.run_cli(["verify", str(out)])
    one_line_error(res, "incomplete", str(out), hint="rerun the export")
    res = flow.run_cli(["import", str(out), "--to", "127.0.0.1:1/x", "--plain-http"])
    assert res.code != 0
    # the rerun (with the bad image fixed) reuses the blobs fetched before
    content = flow.write_content(tmp_path / "c.yaml", world["source"],
                                 ["docker.io/library/nginx:1.25", "quay.io/coreos/etcd:v3.5.9"])
    res = flow.run_cli(["export", "-f", str(content), "-o", str(out), "--split-size", "1M"])
    assert res.code == 0, res.err
    assert "2 artifacts ok, 0 failed; blobs fetched 0" in res.out       # everything came from the first run
    assert flow.run_cli(["verify", str(out)]).code == 0
    assert {a["ref"] for a in BundleInfo.load(out).artifacts} == {"docker.io/library/nginx:1.25",
                                                                  "quay.io/coreos/etcd:v3.5.9"}


def test_content_file_typo(world: dict[str, Any], tmp_path: Path) -> None:
    content = tmp_path / "c.yaml"
    content.write_text(flow.content_yaml(world["source"], ["nginx:1.25"]).replace("images:", "imagess:"))
    res = flow.run_cli(["export", "-f", str(content), "-o", str(tmp_path / "out")])
    assert res.code == 2
    line = one_line_error(res, f"{content}:", "unknown key 'imagess'", hint="did you mean 'images'?")
    lineno = int(line.split(f"{content}:")[1].split(":")[0])
    assert content.read_text().splitlines()[lineno - 1].startswith("imagess:")
    assert res.err_lines == [line]
    assert not (tmp_path / "out").exists()


def test_source_auth_failure(world: dict[str, Any], auth_registry: Registry, tmp_path: Path) -> None:
    content = flow.write_content(tmp_path / "c.yaml", auth_registry, ["ghcr.io/example/tool:v1"])
    res = flow.run_cli(["export", "-f", str(content), "-o", str(tmp_path / "out")])
    one_line_error(res, "artifacts failed")
    assert any("unauthorized" in ln and "hint:" in ln for ln in res.err_lines), res.err


def test_source_unreachable(world: dict[str, Any], tmp_path: Path) -> None:
    closed = free_port()
    content = tmp_path / "c.yaml"
    content.write_text(flow.content_yaml(world["source"], ["nginx:1.25"]).replace(
        world["source"].url, f"http://127.0.0.1:{closed}"))
    res = flow.run_cli(["export", "-f", str(content), "-o", str(tmp_path / "out")])
    one_line_error(res, "artifacts failed")
    assert any(f"127.0.0.1:{closed}" in ln and "hint: check the endpoint" in ln for ln in res.err_lines), res.err


# -- import side -----------------------------------------------------------------------------------------

def test_import_auth_failure(world: dict[str, Any], auth_registry: Registry) -> None:
    res = flow.run_cli(flow.import_args(world["bundle"], auth_registry, "airgap-images",
                                        "--username", auth_registry.username or "", "--password-stdin"),
                       stdin="wrong-password\n")
    line = one_line_error(res, auth_registry.host, "credentials were rejected", hint="username and password")
    assert res.err_lines == [line]                   # stopped at login, before any artifact
    assert "wrong-password" not in res.err + res.out
    no_tags(auth_registry)
    # without credentials at all
    res = flow.run_cli(flow.import_args(world["bundle"], auth_registry, "airgap-images"))
    line = one_line_error(res, auth_registry.host, "unauthorized", hint="--username")
    assert res.err_lines == [line]
    no_tags(auth_registry)


def test_import_tls_failure_without_ca(world: dict[str, Any], tls_registry: Registry) -> None:
    args = ["import", str(world["bundle"]), "--to", f"{tls_registry.host}/airgap-images"]
    res = flow.run_cli(args)
    one_line_error(res, "TLS", tls_registry.host, hint="--ca-file")
    no_tags(tls_registry)


def test_import_unreachable_registry(world: dict[str, Any]) -> None:
    port = free_port()
    with socket.socket() as s:                 # nothing listens there
        assert s.connect_ex(("127.0.0.1", port)) != 0
    res = flow.run_cli(["import", str(world["bundle"]), "--to", f"127.0.0.1:{port}/airgap-images",
                        "--plain-http"])
    one_line_error(res, f"127.0.0.1:{port}", hint="check the endpoint")


def _affected(info: BundleInfo, part: str) -> list[str]:
    (s, e) = next((s, e) for p, s, e in info.part_bounds() if p.name == part)
    return info.artifacts_using(info.blobs_in_range(s, e))


@pytest.mark.parametrize("damage", ["missing", "truncated"])
def test_import_missing_or_truncated_part(world: dict[str, Any], target_registry: Registry, tmp_path: Path,
                                          damage: str) -> None:
    b = copy_bundle(world, tmp_path)
    part = world["info"].parts[1].name
    if damage == "missing":
        (b / part).unlink()
    else:
        data = (b / part).read_bytes()
        (b / part).write_bytes(data[: len(data) // 2])
    res = flow.run_cli(flow.import_args(b, target_registry))
    one_line_error(res, "bad parts", part, hint="nothing was imported")
    assert any(ln.startswith(f"bad part: {part}: {damage}") for ln in res.err_lines), res.err
    no_tags(target_registry)
    res = flow.run_cli(["verify", str(b)])
    one_line_error(res, "damaged", part)
    for ref in _affected(world["info"], part):
        assert f"affected: {ref}" in res.err_lines


def test_import_corrupted_part_with_verify(world: dict[str, Any], target_registry: Registry,
                                          tmp_path: Path) -> None:
    b = copy_bundle(world, tmp_path)
    part = world["info"].parts[2].name
    raw = bytearray((b / part).read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    (b / part).write_bytes(bytes(raw))
    res = flow.run_cli(flow.import_args(b, target_registry, "airgap-images", "--verify"))
    one_line_error(res, "bad parts", part)
    assert f"bad part: {part}: checksum mismatch (corrupted)" in res.err_lines
    nothing_tagged(target_registry)


def test_import_blob_damaged_behind_matching_checksums(world: dict[str, Any], target_registry: Registry,
                                                       tmp_path: Path) -> None:
    """A part whose checksums were rewritten to match damaged content passes `import --verify`'s part check;
    the digest check while streaming catches the blob, and the import names every part holding it and tags
    nothing, not even the artifacts that do not use it."""
    info: BundleInfo = world["info"]
    b = copy_bundle(world, tmp_path)
    big = max(info.blobs, key=lambda d: info.blobs[d].size)
    e = info.blobs[big]
    pos = e.offset + e.length // 2                   # a byte in the middle of the big layer's frame
    doc = json.loads((b / "bundle.json").read_text())
    for (p, s, end), entry in zip(info.part_bounds(), doc["parts"], strict=True):
        if s <= pos < end:
            raw = bytearray((b / p.name).read_bytes())
            raw[pos - s] ^= 0xFF
            (b / p.name).write_bytes(bytes(raw))
            entry["sha256"] = hashlib.sha256(raw).hexdigest()
    (b / "bundle.json").write_text(json.dumps(doc))
    (b / "SHA256SUMS").write_text("".join(f"{p['sha256']}  {p['name']}\n" for p in doc["parts"]))
    res = flow.run_cli(flow.import_args(b, target_registry, "airgap-images", "--verify"))
    holding = [p.name for p, s, end in info.part_bounds() if e.offset < end and e.offset + e.length > s]
    one_line_error(res, "bad parts", *holding, hint="nothing was imported")
    for name in holding:
        assert any(ln.startswith(f"bad part: {name}: blob {big}: ") for ln in res.err_lines), res.err
    nothing_tagged(target_registry)


def test_newer_bundle_format(world: dict[str, Any], target_registry: Registry, tmp_path: Path) -> None:
    b = copy_bundle(world, tmp_path)
    doc = json.loads((b / "bundle.json").read_text())
    doc["format_version"] = defaults.BUNDLE_FORMAT_VERSION + 1
    (b / "bundle.json").write_text(json.dumps(doc))
    for args in (flow.import_args(b, target_registry), ["verify", str(b)], ["inspect", str(b)]):
        res = flow.run_cli(args)
        one_line_error(res, "newer than this tool understands", "bundle.json", hint="upgrade airgap-mirror")
    no_tags(target_registry)


def _damage(doc: dict[str, Any], how: str) -> Any:
    if how == "list":
        return [doc]
    if how == "no-blobs":
        return {k: v for k, v in doc.items() if k != "blobs"}
    if how == "blob-no-offset":
        return {**doc, "blobs": {d: {k: v for k, v in e.items() if k != "offset"} for d, e in doc["blobs"].items()}}
    if how == "artifact-no-ref":
        return {**doc, "artifacts": [{k: v for k, v in a.items() if k != "ref"} for a in doc["artifacts"]]}
    if how == "parts-string":
        return {**doc, "parts": "content.tar.zst.000"}
    return {**doc, "format_version": str(doc["format_version"])}


@pytest.mark.parametrize("how", ["list", "no-blobs", "blob-no-offset", "artifact-no-ref", "parts-string",
                                 "version-string"])
def test_damaged_bundle_json_is_one_line_and_import_asks_no_registry(world: dict[str, Any], tmp_path: Path,
                                                                      how: str) -> None:
    b = copy_bundle(world, tmp_path)
    doc = json.loads((b / "bundle.json").read_text())
    (b / "bundle.json").write_text(json.dumps(_damage(doc, how)))
    # the target does not exist: the bundle is judged before anything is sent
    unreachable = ["import", str(b), "--to", f"127.0.0.1:{free_port()}/base", "--plain-http"]
    for args in (["verify", str(b)], ["inspect", str(b)], unreachable):
        one_line_error(flow.run_cli(args), "bundle.json is damaged", str(b / "bundle.json"),
                       hint="copy bundle.json again")


def test_not_a_bundle(tmp_path: Path, target_registry: Registry) -> None:
    res = flow.run_cli(flow.import_args(tmp_path, target_registry))
    one_line_error(res, "not a bundle directory", hint="airgap-mirror export -o")
    no_tags(target_registry)


def test_bad_target_argument(world: dict[str, Any]) -> None:
    res = flow.run_cli(["import", str(world["bundle"]), "--to", "http://127.0.0.1:5000/x"])
    assert res.code == 2
    one_line_error(res, "must not have a scheme", hint="--plain-http")
    res = flow.run_cli(["import", str(world["bundle"]), "--to", "127.0.0.1:5000/Bad Base"])
    one_line_error(res, "not a valid repository path")


def test_disk_full(world: dict[str, Any], tmp_path: Path) -> None:
    """An export onto a full disk says so in one line, before it fetches a layer, exits non-zero and leaves
    nothing verify accepts."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {r.stderr.decode().strip()}")
    try:
        content = flow.write_content(tmp_path / "c.yaml", world["source"], world["refs"])
        res = flow.run_cli(["export", "-f", str(content), "-o", str(mnt / "out")])
        one_line_error(res, hint="rerun")
        assert "disk full" in res.err, res.err
        # the layers' blocks are reserved before any is fetched: the error comes at once and says how much
        assert re.search(r"layers need [\d.]+ MB here, [\d.]+ MB are free", res.err), res.err
        assert not (mnt / "out" / "bundle.json").exists()
        assert flow.run_cli(["verify", str(mnt / "out")]).code != 0
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


@pytest.mark.parametrize("command", [["export", "-f", "c.yaml"], ["import", "b", "--to", "h/x"], ["verify", "b"],
                                     ["inventory", "--to", "h/x", "-o", "i.json"]])
@pytest.mark.parametrize("value", ["0", "-2", "many"])
def test_jobs_must_be_a_positive_number(command: list[str], value: str) -> None:
    res = flow.run_cli([*command, "-j", value])
    assert res.code == 2
    assert "-j/--jobs" in res.err and "1 or more" in res.err


@pytest.mark.parametrize("to", ["robot:s3cret@harbor.corp/airgap", "https://robot:s3cret@harbor.corp"])
def test_target_with_credentials_is_refused_without_echoing_them(world: dict[str, Any], to: str) -> None:
    res = flow.run_cli(["import", str(world["bundle"]), "--to", to])
    assert res.code != 0 and "carries credentials" in res.err and "--password-stdin" in res.err
    assert "s3cret" not in res.err + res.out


def test_unusable_output_path_is_one_line_not_a_traceback(world: dict[str, Any], tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    content = flow.write_content(tmp_path / "c.yaml", world["source"])
    res = flow.run_cli(["export", "-f", str(content), "-o", str(blocker / "bundle")])
    assert res.code == 1
    assert res.err.strip().count("\n") == 0 and "Traceback" not in res.err
    assert str(blocker / "bundle") in res.err and "not a directory" in res.err


def test_bad_since_or_split_size_creates_no_output(world: dict[str, Any], tmp_path: Path) -> None:
    content = flow.write_content(tmp_path / "c.yaml", world["source"])
    for extra in (["--since", str(tmp_path / "missing")], ["--split-size", "12X"]):
        res = flow.run_cli(["export", "-f", str(content), "-o", str(tmp_path / "out"), *extra])
        assert res.code != 0 and res.err.startswith("error: ")
        assert not (tmp_path / "out").exists()


def test_missing_bundle_directory_is_named_as_missing(tmp_path: Path) -> None:
    res = flow.run_cli(["verify", str(tmp_path / "nowhere")])
    assert res.code != 0 and "no such directory" in res.err


# -- credentials in verbose logs -------------------------------------------------------------------------

def test_verbose_log_redacts_signed_redirect_urls(tmp_path: Path) -> None:
    """Registries redirect blob (and some manifest) downloads to pre-signed URLs, whose query is a
    credential; httpx logs every request's full URL at INFO, which `-v` shows."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.startswith("/v2/library/app/manifests/"):
                port = self.server.server_address[1]
                self.send_response(307)
                self.send_header("Location", f"http://127.0.0.1:{port}/signed?X-Amz-Credential=AKIASECRET"
                                             "&X-Amz-Signature=SIGSECRET&sig=AZSECRET")
            else:
                self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        content = tmp_path / "c.yaml"
        content.write_text("apiVersion: airgap-mirror/v1\nkind: Content\nregistries:\n"
                           f"  docker.io: {{endpoint: 'http://127.0.0.1:{server.server_address[1]}'}}\n"
                           "images: [library/app:v1]\n")
        res = subprocess.run([sys.executable, "-c", "import sys; from mirror.cli import main; sys.exit(main())",
                              "-v", "export", "-f", str(content), "-o", str(tmp_path / "out")],
                             capture_output=True, text=True, timeout=120)
    finally:
        server.shutdown()
    assert res.returncode == 1
    assert "X-Amz-Signature=***" in res.stderr, res.stderr             # the redirect was logged, redacted
    for secret in ("AKIASECRET", "SIGSECRET", "AZSECRET"):
        assert secret not in res.stderr + res.stdout


def test_the_console_script_exits_with_mains_status_and_one_line(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("airgap-mirror")
    if not script.exists():
        pytest.skip("the package is not installed with its console script in this interpreter's bin")
    res = subprocess.run([str(script), "verify", str(tmp_path / "missing")], capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 1 and res.stdout == ""
    assert res.stderr.count("\n") == 1 and res.stderr.startswith("error: ") and "hint:" in res.stderr
    ok = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and ok.stdout.startswith("airgap-mirror ")
