"""RegistryStore.claim_blob: "does the repository hold this blob?" asked as a mount from the repository
itself, so that "no" is already the upload session. Against real registries (their answers to a mount are
what the shortcut rests on), with the requests counted; a fake only for a registry that ignores mounts."""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from pathlib import Path

import httpx
import pytest

from mirror.copy import CopyItem, copy
from mirror.http import HostSettings, Http
from mirror.layout import LayoutStore
from mirror.mediatypes import Descriptor
from mirror.reference import Reference, parse
from mirror.registry import RegistryStore
from mirror.sample import build
from tests.support.registries import Registry


def _blob(n: int = 4096) -> tuple[Descriptor, bytes]:
    data = os.urandom(n)
    return Descriptor("application/octet-stream", "sha256:" + hashlib.sha256(data).hexdigest(), n), data


def _kind(req: httpx.Request) -> str:
    """`POST mount`, `HEAD blobs`, `POST uploads`, `PUT uploads`, `PUT manifests` ..."""
    return f"{req.method} {'mount' if 'mount' in req.url.params else req.url.path.rsplit('/', 2)[-2]}"


def _store(reg: Registry, calls: Counter[str]) -> RegistryStore:
    settings = HostSettings(plain_http=True, username=reg.username, password=reg.password) \
        if reg.username else HostSettings(plain_http=True)
    http = Http({reg.host: settings}, use_docker_config=False)

    http.client.event_hooks["request"].append(lambda req: calls.update([_kind(req)]))
    return RegistryStore(http, reg.host, role="target")


@pytest.mark.parametrize("which", ["target_registry", "auth_registry", "distribution3_registry"])
def test_claim_answers_and_opens_the_upload(which: str, request: pytest.FixtureRequest) -> None:
    reg: Registry = request.getfixturevalue(which)
    calls: Counter[str] = Counter()
    store = _store(reg, calls)
    shared, data = _blob()
    assert store.claim_blob("claim/a", shared) is False          # nothing has been seen yet: a HEAD
    assert calls["HEAD blobs"] >= 1 and not calls["POST mount"]  # (two with auth: the challenge, the token)
    store.put_blob("claim/a", shared, [data])                    # it is there now: one self-mount learns
    assert calls["POST mount"] == 1                              # that the registry answers as claims need
    assert store.mount_blob("claim/b", shared, "claim/a")

    calls.clear()
    assert store.claim_blob("claim/b", shared) is True           # held: 201, nothing opened
    new, new_data = _blob()
    assert store.claim_blob("claim/b", new) is False             # absent: 202, the upload is open
    store.put_blob("claim/b", new, [new_data])                   # ... and used: no second POST
    assert calls == Counter({"POST mount": 2, "PUT uploads": 1, "HEAD blobs": 0}) - Counter()
    assert store.has_blob("claim/b", new)
    with store.open_blob("claim/b", new) as chunks:
        assert b"".join(chunks) == new_data


@pytest.mark.parametrize("mounts_across", [False, True])
def test_a_registry_whose_self_mounts_say_nothing_keeps_being_asked_with_head(mounts_across: bool) -> None:
    """A registry that answers 202 to every mount (no mount support), or that mounts across repositories but
    answers 202 to a mount from the repository itself: its 202 is never taken for "absent", or every blob
    it holds would be uploaded again. Neither is a registry here, hence the fake."""
    held = "sha256:" + "1" * 64
    calls: Counter[str] = Counter()

    def handler(req: httpx.Request) -> httpx.Response:
        calls[_kind(req)] += 1
        if req.method == "POST":
            across = req.url.params.get("from") != req.url.path.split("/v2/")[1].split("/blobs/")[0]
            if mounts_across and across:
                return httpx.Response(201, headers={"Location": f"/v2/r/blobs/{held}"})
            calls["sessions opened by a mount"] += "mount" in req.url.params
            return httpx.Response(202, headers={"Location": "/v2/r/blobs/uploads/u1"})
        if req.method == "HEAD":
            return httpx.Response(200 if req.url.path.endswith(held) else 404)
        return httpx.Response(204)                                   # DELETE of an opened session

    http = Http({"reg.example": HostSettings(endpoint="http://reg.example")}, transport=httpx.MockTransport(handler),
                use_docker_config=False)
    store = RegistryStore(http, "reg.example")
    desc = Descriptor("application/octet-stream", held, 3)
    assert store.mount_blob("r", desc, "other") is mounts_across
    new, data = _blob()
    store.put_blob("r", new, [data])                # an upload worked: a probe, if still unsure, says 202 too
    assert calls["DELETE uploads"] == calls["sessions opened by a mount"] >= 1     # each closed again
    calls.clear()
    assert store.claim_blob("r", desc) is True
    assert calls == Counter({"HEAD blobs": 1})                       # a HEAD, not a POST that would say 202


def test_a_fresh_copy_asks_each_tag_once_and_claims_once_a_blob_is_in(
        target_registry: Registry, tmp_path: Path) -> None:
    """Into an empty registry, 10 images sharing base layers (two are two-arch indexes): one manifest HEAD
    per tag and none for an index's image manifests, blobs asked with HEAD only until the first is in and
    the registry has shown how it answers a mount; everything lands with its digests."""
    layout = tmp_path / "layout"
    refs = build(layout, "many", count=10)
    src = LayoutStore(layout)
    calls: Counter[str] = Counter()
    target = _store(target_registry, calls)
    heads: list[str] = []
    target.http.client.event_hooks["request"].append(
        lambda r: heads.append(r.url.path.rsplit("/", 1)[-1]) if r.method == "HEAD" and "/manifests/" in r.url.path
        else None)
    items = [CopyItem(parse(r), Reference(target_registry.host, "fresh/" + parse(r).repository, parse(r).tag, None))
             for r in refs]
    result = copy(src, target, items, jobs=1)
    assert not result.failed and len(result.ok) == 10
    assert sorted(heads) == sorted(it.target.tag for it in items)            # tags only, never a child
    assert calls["POST mount"] > 0 and result.blobs_mounted > 0
    blobs = result.blobs_fetched
    assert calls["HEAD blobs"] < blobs                                       # some claims were one POST
    assert calls["POST uploads"] + calls["POST mount"] >= blobs
    for it in items:
        got = target.get_manifest(it.target)
        assert got.digest == src.get_manifest(it.source).digest
