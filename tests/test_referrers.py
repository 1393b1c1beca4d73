"""Referrers end to end: signatures, SBOMs and a signature of the SBOM attached by the oras CLI (an independent
Go client) in a source registry without the referrers API (so oras keeps the fallback tag), plus a cosign-style
`.sig` tag; exported with `referrers: true`, imported into distribution v3 (no referrers API either), and found
there by `oras discover` exactly as in the source."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from mirror.bundle import BundleInfo
from mirror.mediatypes import INDEXES, MANIFESTS
from mirror.referrers import fallback_tag
from tests.support import flow
from tests.support.registries import Registry, RegistryFactory
from tests.support.tools import need, run

NGINX = "docker.io/library/nginx:1.25"
ETCD = "quay.io/coreos/etcd:v3.5.9"
SIG = "application/vnd.dev.cosign.artifact.sig.v1+json"
SBOM = "application/spdx+json"
SBOM_SIG = "application/vnd.example.signature"
COSIGN_PAYLOAD = "application/vnd.dev.cosign.simplesigning.v1+json"


def oras(cwd: Path, *args: str) -> str:
    return run(["oras", *args], cwd=cwd, timeout=120)


def attach(reg: Registry, cwd: Path, subject: str, artifact_type: str, name: str) -> str:
    """`oras attach` a one-file artifact to reg/subject; returns the referrer's digest."""
    (cwd / name).write_text(json.dumps({"what": artifact_type, "name": name}))
    out = oras(cwd, "attach", "--plain-http", "--artifact-type", artifact_type, "--format", "json",
               f"{reg.host}/{subject}", name)
    return str(json.loads(out)["digest"])


def discovered(reg: Registry, ref: str) -> set[tuple[str, str, int]]:
    """(artifact type, digest, depth) of everything `oras discover` finds below ref, at every depth."""
    doc = json.loads(oras(Path("."), "discover", "--plain-http", "--format", "json", f"{reg.host}/{ref}"))
    out: set[tuple[str, str, int]] = set()

    def walk(node: dict[str, Any], depth: int) -> None:
        for r in node.get("referrers") or node.get("manifests") or []:
            out.add((r.get("artifactType", ""), r["digest"], depth))
            walk(r, depth + 1)

    walk(doc, 1)
    return out


@pytest.fixture(scope="module")
def signed(registry_factory: RegistryFactory, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The sample content in a source registry, nginx signed, SBOM'd (and that SBOM signed), a cosign-style tag
    beside it, and etcd signed too; exported once with referrers for nginx only."""
    need("oras")
    tmp = tmp_path_factory.mktemp("referrers")
    source, refs = flow.seeded(registry_factory, tmp)
    nginx_digest = flow.head_digest(source, "library/nginx", "1.25")
    assert nginx_digest
    sig = attach(source, tmp, "library/nginx:1.25", SIG, "sig.json")
    sbom = attach(source, tmp, "library/nginx:1.25", SBOM, "sbom.json")
    sbom_sig = attach(source, tmp, f"library/nginx@{sbom}", SBOM_SIG, "sbom-sig.json")
    (tmp / "payload.json").write_text('{"critical": {}}')
    cosign_tag = fallback_tag(nginx_digest) + ".sig"
    oras(tmp, "push", "--plain-http", f"{source.host}/library/nginx:{cosign_tag}",
         f"payload.json:{COSIGN_PAYLOAD}")
    cosign = flow.head_digest(source, "library/nginx", cosign_tag)
    etcd_sig = attach(source, tmp, "coreos/etcd:v3.5.9", SIG, "etcd-sig.json")

    content = tmp / "content.yaml"
    images: list[Any] = [{"ref": NGINX, "referrers": True}, *(r for r in refs if r != NGINX)]
    flow.write_content(content, source, images)
    bundle = tmp / "B"
    res = flow.export(content, bundle)
    yield {"tmp": tmp, "source": source, "refs": refs, "content": content, "bundle": bundle, "export": res,
           "nginx": nginx_digest, "sig": sig, "sbom": sbom, "sbom_sig": sbom_sig, "cosign": cosign,
           "cosign_tag": cosign_tag, "etcd_sig": etcd_sig}
    source.stop()


def referrer_artifacts(bundle: Path) -> dict[str, dict[str, Any]]:
    return {a["digest"]: a for a in BundleInfo.load(bundle).artifacts if a["kind"] == "referrer"}


def test_export_carries_the_referrers_asked_for(signed: dict[str, Any]) -> None:
    arts = referrer_artifacts(signed["bundle"])
    assert set(arts) == {signed["sig"], signed["sbom"], signed["sbom_sig"], signed["cosign"]}   # not etcd's
    s = signed
    assert arts[s["sig"]]["ref"] == f"docker.io/library/nginx@{s['sig']}"
    assert arts[s["sig"]]["meta"] == {"subject": s["nginx"], "depth": 1, "found": "referrers tag",
                                      "artifact_type": SIG}
    assert arts[s["sbom_sig"]]["meta"]["subject"] == s["sbom"] and arts[s["sbom_sig"]]["meta"]["depth"] == 2
    assert arts[s["cosign"]]["ref"] == f"docker.io/library/nginx:{s['cosign_tag']}"
    assert arts[s["cosign"]]["meta"]["found"] == "cosign tag"
    insp = flow.run_cli(["inspect", str(signed["bundle"])]).out
    assert f"-> refers to {NGINX} (found by referrers tag)" in insp
    assert f"-> refers to docker.io/library/nginx@{s['sbom']} (found by referrers tag)" in insp
    info = BundleInfo.load(signed["bundle"])
    for a in arts.values():             # each referrer's manifest and blobs are in the bundle
        assert all(d in info.blobs for d in a["contents"])


def test_export_without_referrers_carries_none(signed: dict[str, Any]) -> None:
    bundle = signed["tmp"] / "plain"
    content = flow.write_content(signed["tmp"] / "plain.yaml", signed["source"], signed["refs"])
    flow.export(content, bundle)
    assert referrer_artifacts(bundle) == {}


def test_export_referrers_flag_takes_every_image(signed: dict[str, Any]) -> None:
    bundle = signed["tmp"] / "all"
    content = flow.write_content(signed["tmp"] / "all.yaml", signed["source"], signed["refs"])
    flow.export(content, bundle, "--referrers")
    assert signed["etcd_sig"] in referrer_artifacts(bundle)


def test_filtered_index_carries_no_index_referrers_and_says_why(signed: dict[str, Any],
                                                                caplog: pytest.LogCaptureFixture) -> None:
    bundle = signed["tmp"] / "amd64"
    flow.export(signed["content"], bundle, "--platform", "linux/amd64")
    assert "platform-filtered index has a new digest that no signature names" in caplog.text
    assert referrer_artifacts(bundle) == {}


def test_import_makes_them_discoverable(signed: dict[str, Any], distribution3_registry: Registry,
                                        tmp_path: Path) -> None:
    target = distribution3_registry
    # the target already holds nginx with a signature made inside the gap: it must stay listed
    flow.export(flow.write_content(tmp_path / "c.yaml", signed["source"], [NGINX]), tmp_path / "nginx-only")
    first = flow.run_cli(flow.import_args(tmp_path / "nginx-only", target))
    assert first.code == 0, first.err
    repo, _ = flow.mirrored_name(NGINX, target)
    local = attach(target, tmp_path, f"{repo}:1.25", SIG, "local-sig.json")

    res = flow.run_cli(flow.import_args(signed["bundle"], target))
    assert res.code == 0, res.err
    want = discovered(signed["source"], "library/nginx:1.25") | {(SIG, local, 1)}
    assert discovered(target, f"{repo}:1.25") == want
    assert flow.head_digest(target, repo, signed["cosign_tag"]) == signed["cosign"]
    listing = flow.head_digest(target, repo, fallback_tag(signed["nginx"]))

    again = flow.run_cli(flow.import_args(signed["bundle"], target))
    assert again.code == 0, again.err
    assert "blobs fetched 0, skipped 0, mounted 0" in again.out
    assert flow.head_digest(target, repo, fallback_tag(signed["nginx"])) == listing      # not rewritten


def test_a_signature_added_later_crosses_in_the_delta_alone(signed: dict[str, Any], distribution3_registry: Registry,
                                                            tmp_path: Path) -> None:
    """The refresh case: nothing changed but nginx was signed again. An export since an inventory of the
    target carries that one signature's blob (and the manifests), and the target then lists old and new."""
    target = distribution3_registry
    first = flow.run_cli(flow.import_args(signed["bundle"], target))
    assert first.code == 0, first.err
    inv = tmp_path / "inventory.json"
    res = flow.run_cli(["inventory", "--to", f"{target.host}/airgap-images", "--plain-http", "-o", str(inv)])
    assert res.code == 0, res.err

    resigned = attach(signed["source"], tmp_path, "library/nginx:1.25", SIG, "second-sig.json")
    delta = tmp_path / "delta"
    flow.export(signed["content"], delta, "--since", str(inv))
    info = BundleInfo.load(delta)
    assert referrer_artifacts(delta)[resigned]["meta"]["subject"] == signed["nginx"]
    manifests = {d for a in info.artifacts for d in a["contents"] if d in info.blobs
                 and info.blobs[d].media_type in (*INDEXES, *MANIFESTS)}
    file_digest = "sha256:" + hashlib.sha256((tmp_path / "second-sig.json").read_bytes()).hexdigest()
    assert set(info.blobs) - manifests == {file_digest}         # the new signature's one file, nothing else

    res = flow.run_cli(flow.import_args(delta, target))
    assert res.code == 0, res.err
    repo, _ = flow.mirrored_name(NGINX, target)
    assert discovered(target, f"{repo}:1.25") == discovered(signed["source"], "library/nginx:1.25")
    assert (SIG, resigned, 1) in discovered(target, f"{repo}:1.25")
