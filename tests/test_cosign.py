"""cosign, the consumer that matters for referrers: images signed and attested with a cosign key in the source
(its classic `.sig`/`.att` tags, and OCI 1.1 referrers mode), exported with `referrers: true`, imported, and
verified at their mirrored names by `cosign verify` / `verify-attestation`, which fail there without them.
Keys only: no transparency log, no network."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support import flow
from tests.support.registries import Registry, RegistryFactory
from tests.support.tools import attempt, need, run

ETCD = "quay.io/coreos/etcd:v3.5.9"          # a Docker manifest list: classic .sig and .att tags
PAUSE = "registry.k8s.io/pause:3.9"          # a Docker v2 manifest: signed in OCI 1.1 referrers mode
OFFLINE = ["--allow-http-registry", "--allow-insecure-registry"]


def env_for(cwd: Path, experimental: bool) -> dict[str, str]:
    return {**os.environ, "COSIGN_PASSWORD": "", "HOME": str(cwd), "COSIGN_EXPERIMENTAL": "1" if experimental else ""}


def cosign(cwd: Path, *args: str, experimental: bool = False) -> str:
    return run(["cosign", *args], cwd=cwd, env=env_for(cwd, experimental), timeout=120)


@pytest.fixture(scope="module")
def signed(registry_factory: RegistryFactory, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    need("cosign")
    tmp = tmp_path_factory.mktemp("cosign")
    source, refs = flow.seeded(registry_factory, tmp)
    cosign(tmp, "generate-key-pair")
    digests = {}
    for ref, repo, tag in ((ETCD, "coreos/etcd", "v3.5.9"), (PAUSE, "pause", "3.9")):
        d = flow.head_digest(source, repo, tag)
        assert d
        digests[ref] = f"{source.host}/{repo}@{d}"
    sign = ["sign", "--yes", "--key", "cosign.key", "--tlog-upload=false", *OFFLINE]
    cosign(tmp, *sign, digests[ETCD])
    (tmp / "sbom.json").write_text('{"spdxVersion": "SPDX-2.3", "name": "etcd"}')
    cosign(tmp, "attest", "--yes", "--key", "cosign.key", "--tlog-upload=false", *OFFLINE, "--type", "spdxjson",
           "--predicate", "sbom.json", digests[ETCD])
    cosign(tmp, *sign, "--registry-referrers-mode=oci-1-1", digests[PAUSE], experimental=True)
    content = tmp / "content.yaml"
    flow.write_content(content, source, [{"ref": r, "referrers": r in (ETCD, PAUSE)} for r in refs])
    flow.export(content, tmp / "B")
    plain = flow.write_content(tmp / "plain.yaml", source, refs)
    flow.export(plain, tmp / "plain")
    yield {"tmp": tmp, "source": source}
    source.stop()


def mirrored(reg: Registry, ref: str) -> str:
    repo, tag = flow.mirrored_name(ref, reg)
    return f"{reg.host}/{repo}:{tag}"


def verify(tmp: Path, *args: str, experimental: bool = False) -> subprocess.CompletedProcess[str]:
    return attempt(["cosign", *args, "--key", "cosign.pub", "--insecure-ignore-tlog", *OFFLINE], cwd=tmp,
                   env=env_for(tmp, experimental), timeout=120)


def test_cosign_verifies_signatures_and_attestations_at_the_mirror(signed: dict[str, Any],
                                                                   distribution3_registry: Registry) -> None:
    tmp, target = signed["tmp"], distribution3_registry
    res = flow.run_cli(flow.import_args(tmp / "B", target))
    assert res.code == 0, res.err
    etcd = verify(tmp, "verify", mirrored(target, ETCD))
    assert etcd.returncode == 0, etcd.stderr
    assert "The signatures were verified against the specified public key" in etcd.stderr
    att = verify(tmp, "verify-attestation", "--type", "spdxjson", mirrored(target, ETCD))
    assert att.returncode == 0, att.stderr
    pause = verify(tmp, "verify", "--experimental-oci11", mirrored(target, PAUSE), experimental=True)
    assert pause.returncode == 0, pause.stderr


def test_without_referrers_cosign_finds_nothing_at_the_mirror(signed: dict[str, Any],
                                                              target_registry: Registry) -> None:
    tmp = signed["tmp"]
    res = flow.run_cli(flow.import_args(tmp / "plain", target_registry))
    assert res.code == 0, res.err
    for args, exp in ((["verify", mirrored(target_registry, ETCD)], False),
                      (["verify", "--experimental-oci11", mirrored(target_registry, PAUSE)], True)):
        p = verify(tmp, *args, experimental=exp)
        assert p.returncode != 0 and "no signatures found" in p.stderr, p.stderr
