"""Signed bundles end to end, with real ssh-keygen keys: export --sign-key signs bundle.json and SHA256SUMS
(checked by hand with `ssh-keygen -Y verify` too); verify and import with --allowed-signers accept them and
refuse an unsigned bundle, another signer, and a signed file changed afterwards, before anything is pushed;
a signing that fails leaves no bundle.json."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support import flow
from tests.support.registries import Registry, RegistryFactory
from tests.support.tools import need, run


def keypair(directory: Path, name: str) -> tuple[Path, str]:
    key = directory / name
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"{name}@corp", "-f", str(key)])
    return key, f'{name}@corp namespaces="airgap-mirror" {key.with_suffix(".pub").read_text().strip()}\n'


@pytest.fixture(scope="module")
def signed(registry_factory: RegistryFactory, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    need("ssh-keygen")
    tmp = tmp_path_factory.mktemp("signing")
    source, refs = flow.seeded(registry_factory, tmp)
    content = flow.write_content(tmp / "content.yaml", source, refs[:2])
    key, line = keypair(tmp, "exporter")
    other, other_line = keypair(tmp, "stranger")
    (tmp / "allowed").write_text(line)
    (tmp / "strangers").write_text(other_line)
    res = flow.export(content, tmp / "S", "--sign-key", str(key))
    yield {"tmp": tmp, "source": source, "content": content, "key": key, "other": other, "res": res,
           "allowed": tmp / "allowed", "strangers": tmp / "strangers", "bundle": tmp / "S"}
    source.stop()


def copy_of(signed: dict[str, Any], name: str) -> Path:
    d = signed["tmp"] / f"copy-{name}"
    shutil.rmtree(d, ignore_errors=True)
    shutil.copytree(signed["bundle"], d)
    return d


def test_export_signs_bundle_json_and_sums_verifiable_by_hand(signed: dict[str, Any]) -> None:
    b = signed["bundle"]
    assert "signed with" in signed["res"].out
    for name in ("bundle.json", "SHA256SUMS"):
        with (b / name).open("rb") as f:
            p = subprocess.run(["ssh-keygen", "-Y", "verify", "-f", str(signed["allowed"]), "-I", "exporter@corp",
                                "-n", "airgap-mirror", "-s", str(b / f"{name}.sig")], stdin=f, capture_output=True,
                               text=True)
        assert p.returncode == 0, p.stderr
    insp = flow.run_cli(["inspect", str(b)])
    assert "signatures: SHA256SUMS.sig, bundle.json.sig" in insp.out


def test_verify_names_the_signer(signed: dict[str, Any]) -> None:
    res = flow.run_cli(["verify", str(signed["bundle"]), "--allowed-signers", str(signed["allowed"])])
    assert res.code == 0, res.err
    assert "signed by exporter@corp" in res.out


@pytest.mark.parametrize("case", ["changed", "unsigned", "stranger", "sums-swapped"])
def test_verify_and_import_refuse_before_anything(signed: dict[str, Any], target_registry: Registry,
                                                  case: str) -> None:
    d = copy_of(signed, case)
    allowed = signed["allowed"]
    if case == "changed":           # still valid JSON, still the same parts: only the signature can tell
        doc = json.loads((d / "bundle.json").read_text())
        doc["created"] = "2020-01-01T00:00:00Z"
        (d / "bundle.json").write_text(json.dumps(doc, indent=1) + "\n")
        want = "the signature of bundle.json does not verify"
    elif case == "unsigned":
        (d / "bundle.json.sig").unlink()
        want = "the bundle is not signed: bundle.json.sig is missing"
    elif case == "stranger":
        allowed = signed["strangers"]
        want = "was made by a key that"
    else:                           # SHA256SUMS re-signed by the exporter, but naming another part hash
        sums = d / "SHA256SUMS"
        sums.write_text("0" * 64 + sums.read_text()[64:])
        (d / "SHA256SUMS.sig").unlink()
        subprocess.run(["ssh-keygen", "-q", "-Y", "sign", "-n", "airgap-mirror", "-f", str(signed["key"]),
                        str(sums)], check=True)
        want = "SHA256SUMS and bundle.json list different parts"
    for argv in (["verify", str(d)], flow.import_args(d, target_registry)):
        res = flow.run_cli([*argv, "--allowed-signers", str(allowed)])
        assert res.code != 0 and want in res.error_line, res.err
    assert flow.catalog(target_registry) == []              # nothing pushed


def test_import_checks_the_signer_and_lands_everything(signed: dict[str, Any], target_registry: Registry,
                                                        tmp_path: Path) -> None:
    receipt = tmp_path / "receipt.json"
    res = flow.run_cli([*flow.import_args(signed["bundle"], target_registry),
                        "--allowed-signers", str(signed["allowed"]), "--receipt", str(receipt)])
    assert res.code == 0, res.err
    assert "signed by exporter@corp" in res.out
    assert len(flow.catalog(target_registry)) == 2
    bundle_id = json.loads((signed["bundle"] / "bundle.json").read_text())["id"]
    assert json.loads(receipt.read_text())["signers"] == {bundle_id: "exporter@corp"}


def test_a_failed_signing_leaves_no_bundle(signed: dict[str, Any]) -> None:
    garbage = signed["tmp"] / "not-a-key"
    garbage.write_text("this is no key\n")
    out = signed["tmp"] / "failed"
    res = flow.run_cli(["export", "-f", str(signed["content"]), "-o", str(out), "--sign-key", str(garbage)])
    assert res.code != 0 and "signing with" in res.error_line and "failed" in res.error_line
    assert not (out / "bundle.json").exists() and not list(out.glob("*.sig"))
    again = flow.run_cli(["export", "-f", str(signed["content"]), "-o", str(out), "--sign-key", str(signed["key"])])
    assert again.code == 0, again.err                                  # the rerun resumes and signs
    assert "blobs fetched 0" in again.out
    checked = flow.run_cli(["verify", str(out), "--allowed-signers", str(signed["allowed"])])
    assert checked.code == 0, checked.err
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    over = flow.run_cli(["export", "-f", str(signed["content"]), "-o", str(out), "--sign-key", str(garbage)])
    assert over.code != 0
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before   # the old bundle stands
    missing = flow.run_cli(["export", "-f", str(signed["content"]), "-o", str(signed["tmp"] / "never"),
                            "--sign-key", str(signed["tmp"] / "no-such-key")])
    assert missing.code != 0 and "is not a file" in missing.error_line
    assert not (signed["tmp"] / "never").exists()                     # refused before anything was created
