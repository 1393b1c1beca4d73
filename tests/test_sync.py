"""`sync`: export and import in one step, registry to registry, for a site that reaches both (a DMZ). The sample
content goes from a real source registry to distribution v3 under a base path with the source digests, a
receipt and mirror string like import's; a second sync writes nothing; --dry-run writes nothing; an unknown
tag fails only its artifact and leaves it untagged."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mirror.reference import parse
from tests.support import flow
from tests.support.registries import Registry, RegistryFactory


@pytest.fixture(scope="module")
def source(registry_factory: RegistryFactory, tmp_path_factory: pytest.TempPathFactory) -> Any:
    reg, refs = flow.seeded(registry_factory, tmp_path_factory.mktemp("sync"))
    yield reg, refs
    reg.stop()


def sync_args(content: Path, target: Registry, *extra: str) -> list[str]:
    return ["sync", "-f", str(content), "--to", f"{target.host}/dmz", "--plain-http", "-j", "4", *extra]


def test_sync_lands_everything_with_source_digests(source: tuple[Registry, list[str]], distribution3_registry: Registry,
                                                   tmp_path: Path) -> None:
    reg, refs = source
    target = distribution3_registry
    content = flow.write_content(tmp_path / "c.yaml", reg, refs)
    plan = flow.run_cli(sync_args(content, target, "--dry-run"))
    assert plan.code == 0, plan.err
    assert f"{len(refs)} artifacts ({len(refs)} new, 0 to tag, 0 in place)" in plan.out
    assert flow.catalog(target) == []                                   # the dry run wrote nothing

    receipt = tmp_path / "receipt.json"
    res = flow.run_cli(sync_args(content, target, "--receipt", str(receipt)))
    assert res.code == 0, res.err
    assert f"{len(refs)} artifacts ok, 0 failed" in res.out
    for ref in refs:
        repo, tag = flow.mirrored_name(ref, target, "dmz")
        src = parse(ref)
        assert flow.head_digest(target, repo, tag) == flow.head_digest(reg, src.repository, src.tag), ref
    doc = json.loads(receipt.read_text())
    assert sorted(a["source"] for a in doc["artifacts"]) == sorted(refs)
    assert f"docker.io::{target.host}/dmz/docker.io" in res.out

    again = flow.run_cli(sync_args(content, target))
    assert again.code == 0, again.err
    assert "blobs fetched 0, skipped 0, mounted 0; 0.0 MB" in again.out


def test_an_unknown_tag_fails_alone_and_is_not_tagged(source: tuple[Registry, list[str]], target_registry: Registry,
                                                      tmp_path: Path) -> None:
    reg, refs = source
    content = flow.write_content(tmp_path / "c.yaml", reg, [refs[0], "docker.io/library/nginx:0.0-none"])
    res = flow.run_cli(sync_args(content, target_registry))
    assert res.code != 0 and "1 of 2 artifacts failed" in res.error_line
    repo, tag = flow.mirrored_name(refs[0], target_registry, "dmz")
    assert flow.head_digest(target_registry, repo, tag)                   # the good one landed
    assert "0.0-none" not in flow.tags(target_registry, "dmz/docker.io/library/nginx")
