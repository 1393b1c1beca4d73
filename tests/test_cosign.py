"""cosign, the consumer that matters for referrers: images signed and attested with a cosign key in the source
(its classic `.sig`/`.att` tags, and OCI 1.1 referrers mode), exported with `referrers: true`, imported, and
verified at their mirrored names by `cosign verify` / `verify-attestation`, which fail there without them.
Keys only: no transparency log, no network."""

from __future__ import annotations

import json
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


# -- a signed OCI chart (Flux verifies OCI Helm charts with cosign) --------------------------------------

CHART = "ghcr.io/org/charts/app:0.1.0"


@pytest.fixture(scope="module")
def signed_chart(signed: dict[str, Any]) -> dict[str, Any]:
    """`helm push` a chart that needs etcd, sign it with cosign, and export it two ways: with a top-level
    `referrers: true` (the chart, pause and etcd, which only the chart names, bring their signatures), and
    with `referrers: false` on the chart entry (its own signature stays behind)."""
    need("helm")
    from tests.support.charts import chart_files, helm_env, package

    tmp, source = signed["tmp"], signed["source"]
    (tmp / "app-0.1.0.tgz").write_bytes(package(chart_files("app", "0.1.0", values={"image": ETCD})))
    run(["helm", "push", str(tmp / "app-0.1.0.tgz"), f"oci://{source.host}/org/charts", "--plain-http"],
        env=helm_env(tmp / "helm"))
    digest = flow.head_digest(source, "org/charts/app", "0.1.0")
    assert digest
    cosign(tmp, "sign", "--yes", "--key", "cosign.key", "--tlog-upload=false", *OFFLINE,
           f"{source.host}/org/charts/app@{digest}")
    chart = {"oci": "oci://" + CHART.rsplit(":", 1)[0], "version": "0.1.0"}
    for name, entry in (("chart", chart), ("chart-unsigned", {**chart, "referrers": False})):
        content = flow.write_content(tmp / f"{name}.yaml", source, [PAUSE],
                                     extra=f"referrers: true\ncharts:\n  - {json.dumps(entry)}\n")
        flow.export(content, tmp / name)
    return {**signed, "digest": digest}


def referrer_subjects(bundle: Path) -> set[str]:
    info = json.loads((bundle / "bundle.json").read_text())
    return {a["meta"]["subject"] for a in info["artifacts"] if a["kind"] == "referrer"}


def test_cosign_verifies_a_signed_oci_chart_and_the_images_it_needs_at_the_mirror(
        signed_chart: dict[str, Any], distribution3_registry: Registry) -> None:
    tmp, target = signed_chart["tmp"], distribution3_registry
    res = flow.run_cli(flow.import_args(tmp / "chart", target))
    assert res.code == 0, res.err
    for ref, extra in ((CHART, []), (ETCD, []), (PAUSE, ["--experimental-oci11"])):
        p = verify(tmp, "verify", *extra, mirrored(target, ref), experimental=bool(extra))
        assert p.returncode == 0, f"{ref}: {p.stderr}"


def test_a_chart_entry_can_leave_its_referrers_behind(signed_chart: dict[str, Any]) -> None:
    tmp = signed_chart["tmp"]
    assert signed_chart["digest"] in referrer_subjects(tmp / "chart")
    without = referrer_subjects(tmp / "chart-unsigned")
    assert signed_chart["digest"] not in without
    etcd = flow.head_digest(signed_chart["source"], "coreos/etcd", "v3.5.9")
    assert etcd in without           # the image the chart needs still follows the top-level default
