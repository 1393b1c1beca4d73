"""Referrers against a fake transport, for what no registry here produces: the OCI 1.1 referrers API (zot and
Harbor have it; neither runs here, and distribution 2.8 and 3.0 lack it), its pages, and a fallback tag that
is not an index. The fallback-tag path on real registries is in test_referrers.py."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from mirror.content import Content, ImageSpec
from mirror.copy import CopyItem, CopyResult, Resolved, copy
from mirror.delta import take_inventory
from mirror.errors import RegistryError
from mirror.mediatypes import OCI_INDEX, OCI_MANIFEST, Descriptor
from mirror.reference import Reference
from mirror.referrers import discoverer, fallback_tag, list_referrers, referrer_descriptor, sync_fallback_tags
from mirror.registry import RegistrySet, RegistryStore
from mirror.store import Manifest, MemoryStore
from tests.support.fake import HOST, Fake, FakeRegistry

SUBJECT = "sha256:" + "a" * 64
REPO = "airgap-images/docker.io/library/nginx"


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def referrer(kind: str, subject: str = SUBJECT) -> Manifest:
    doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": kind,
           "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": _digest(b"{}"), "size": 2},
           "layers": [], "subject": {"mediaType": OCI_MANIFEST, "digest": subject, "size": 100},
           "annotations": {"org.opencontainers.image.created": "2026-12-02T00:00:00Z"}}
    data = json.dumps(doc).encode()
    return Manifest(data, OCI_MANIFEST, _digest(data))


def index(*entries: dict[str, Any]) -> bytes:
    return json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": list(entries)}).encode()


def result_of(*manifests: Manifest) -> CopyResult:
    res = CopyResult()
    for m in manifests:
        ref = Reference(HOST, REPO, digest=m.digest)
        res.resolved.append(Resolved(CopyItem(ref, ref, kind="referrer"), top=m, manifests=[m]))
    return res


def registry(api: bytes | None, listing: bytes | None, puts: list[tuple[str, bytes]],
             listing_type: str = OCI_INDEX) -> Callable[[httpx.Request], httpx.Response]:
    """A target: the referrers API answers `api` (None: no such API); the fallback tag holds `listing`."""
    def handler(req: httpx.Request) -> httpx.Response:
        path = req.url.path
        if "/referrers/" in path:
            return httpx.Response(200, content=api, headers={"Content-Type": OCI_INDEX}) if api is not None \
                else httpx.Response(404, text="404 page not found")
        if req.method == "PUT":
            puts.append((path, req.read()))
            return httpx.Response(201, headers={"Docker-Content-Digest": _digest(req.read())})
        if path.endswith("/manifests/" + fallback_tag(SUBJECT)) and listing is not None:
            return httpx.Response(200, content=listing, headers={"Content-Type": listing_type})
        return httpx.Response(404, json={"errors": [{"code": "MANIFEST_UNKNOWN", "message": "unknown"}]})
    return handler


# -- listing on export -----------------------------------------------------------------------------------

def test_referrers_api_is_read_page_by_page_and_the_fallback_tag_not_at_all() -> None:
    a, b = referrer("application/vnd.example.sig"), referrer("application/spdx+json")

    def handler(req: httpx.Request) -> httpx.Response:
        if req.url.path == f"/v2/library/nginx/referrers/{SUBJECT}":
            if req.url.params.get("last"):
                return httpx.Response(200, content=index(referrer_descriptor(b)))
            return httpx.Response(200, content=index(referrer_descriptor(a)), headers={
                "Link": f'</v2/library/nginx/referrers/{SUBJECT}?n=1&last={a.digest}>; rel="next"'})
        return httpx.Response(500)

    fake = Fake(handler)
    found, how = list_referrers(RegistrySet(fake.http()), Reference(HOST, "library/nginx", tag="1.25"), SUBJECT)
    assert [e["digest"] for e in found] == [a.digest, b.digest]
    assert found[0]["artifactType"] == "application/vnd.example.sig"
    assert how == "referrers API"
    assert [r.url.path for r in fake.requests] == [f"/v2/library/nginx/referrers/{SUBJECT}"] * 2


def test_without_api_or_fallback_tag_only_a_head_asks_for_the_tag() -> None:
    """Docker Hub counts every manifest GET as a pull against its rate limit; a HEAD is free."""
    fake = Fake(lambda req: httpx.Response(404, text="404 page not found"))
    found = list_referrers(RegistrySet(fake.http()), Reference(HOST, "library/nginx", tag="1.25"), SUBJECT)
    assert found == ([], "")
    assert [(r.method, r.url.path.rsplit("/", 2)[-2]) for r in fake.requests] == [("GET", "referrers"),
                                                                                   ("HEAD", "manifests")]


def test_no_referrers_api_means_none_and_an_error_is_an_error() -> None:
    store = RegistryStore(Fake(lambda req: httpx.Response(404, text="404 page not found")).http(), HOST)
    assert store.referrers("library/nginx", SUBJECT) is None
    broken = Fake(lambda req: httpx.Response(403, json={"errors": [{"code": "DENIED", "message": "no"}]}))
    with pytest.raises(RegistryError, match="list referrers"):
        RegistryStore(broken.http(), HOST).referrers("library/nginx", SUBJECT)


# -- the fallback tag on import --------------------------------------------------------------------------

def test_a_target_with_the_referrers_api_gets_no_fallback_tag() -> None:
    puts: list[tuple[str, bytes]] = []
    sig = referrer("application/vnd.example.sig")
    sync_fallback_tags(RegistryStore(Fake(registry(index(), None, puts)).http(), HOST), result_of(sig))
    assert puts == []


def test_fallback_tag_keeps_what_the_target_listed_and_adds_the_rest_once() -> None:
    puts: list[tuple[str, bytes]] = []
    local = referrer("application/vnd.gap-side.sig")
    sig, sbom = referrer("application/vnd.example.sig"), referrer("application/spdx+json")
    other = referrer("application/vnd.example.sig", subject="sha256:" + "b" * 64)
    target = RegistryStore(Fake(registry(None, index(referrer_descriptor(local)), puts)).http(), HOST)
    res = result_of(sig, sbom, other)
    sync_fallback_tags(target, res)
    mine = [(p, body) for p, body in puts if p.endswith(fallback_tag(SUBJECT))]
    assert len(mine) == 1                                   # one write per subject
    doc = json.loads(mine[0][1])
    assert [e["digest"] for e in doc["manifests"]] == [local.digest, sig.digest, sbom.digest]
    assert doc["manifests"][2] == {"mediaType": OCI_MANIFEST, "digest": sbom.digest, "size": len(sbom.data),
                                   "artifactType": "application/spdx+json",
                                   "annotations": {"org.opencontainers.image.created": "2026-12-02T00:00:00Z"}}
    assert any(p.endswith(fallback_tag("sha256:" + "b" * 64)) for p, _ in puts)
    assert not res.failed

    puts.clear()        # everything listed already: nothing written
    listed = index(*(referrer_descriptor(m) for m in (local, sig, sbom)))
    sync_fallback_tags(RegistryStore(Fake(registry(None, listed, puts)).http(), HOST), result_of(sig, sbom))
    assert puts == []


def test_a_fallback_tag_that_is_not_an_index_fails_those_referrers_with_a_hint() -> None:
    puts: list[tuple[str, bytes]] = []
    sig = referrer("application/vnd.example.sig")
    target = RegistryStore(Fake(registry(None, sig.data, puts, listing_type=OCI_MANIFEST)).http(), HOST)
    res = result_of(sig)
    sync_fallback_tags(target, res)
    assert puts == []
    assert res.failed and "is not a referrers index" in str(res.failed[0].error)
    assert "remove or rename that tag" in str(res.failed[0].error)


# -- inventory -------------------------------------------------------------------------------------------

def _signed_registry(api: bool) -> tuple[FakeRegistry, str, str]:
    """One image tagged v1, with an untagged signature that refers to it; returns the signature layer's
    digest and the signature manifest's."""
    reg = FakeRegistry(referrers_api=api)
    config = reg.blob(b'{"architecture": "amd64", "os": "linux"}', "application/vnd.oci.image.config.v1+json")
    layer = reg.blob(b"layer", "application/vnd.oci.image.layer.v1.tar+gzip")
    image = reg.manifest("airgap/app", {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config,
                                        "layers": [layer]}, tag="v1")
    empty = reg.blob(b"{}", "application/vnd.oci.empty.v1+json")
    payload = reg.blob(b"a signature", "application/vnd.dev.cosign.simplesigning.v1+json")
    sig = reg.manifest("airgap/app", {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                                      "artifactType": "application/vnd.dev.cosign.artifact.sig.v1+json",
                                      "config": empty, "layers": [payload], "subject": image})
    return reg, payload["digest"], sig["digest"]


def test_inventory_walks_referrers_where_the_target_lists_them() -> None:
    reg, payload, sig = _signed_registry(api=True)
    doc = take_inventory(RegistryStore(Fake(reg).http(), HOST), "airgap", jobs=2)
    assert payload in doc["blobs"] and sig in doc["repositories"]["airgap/app"]["manifests"]


def test_inventory_asks_a_target_without_the_api_once() -> None:
    reg, payload, _ = _signed_registry(api=False)
    reg.manifest("airgap/other", {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                                  "config": reg.blob(b"{}", "application/vnd.oci.empty.v1+json"), "layers": []},
                 tag="v1")
    fake = Fake(reg)
    doc = take_inventory(RegistryStore(fake.http(), HOST), "airgap", jobs=1)
    assert payload not in doc["blobs"]                  # untagged, and nothing lists it
    assert sum("/referrers/" in r.url.path for r in fake.requests) == 1


def test_export_discovers_through_the_referrers_api_and_never_asks_for_tags() -> None:
    """A source with the API (zot, Harbor, GHCR...): referrers come from it; no fallback tag is asked for."""
    reg, payload, sig = _signed_registry(api=True)
    fake = Fake(reg)
    http = fake.http()
    ref = Reference(HOST, "airgap/app", tag="v1")
    content = Content(path="c.yaml", images=[ImageSpec(ref, [], 1, referrers=True)])
    discover = discoverer(content, http, every=False)
    assert discover is not None
    target = MemoryStore("target")
    result = copy(RegistrySet(http), target, [CopyItem(ref, ref, referrers=True)], jobs=2, discover=discover)
    assert not result.failed
    found = [r for r in result.resolved if r.item.kind == "referrer"]
    assert [(r.item.source.digest, r.item.meta["found"]) for r in found] == [(sig, "referrers API")]
    assert target.has_manifest("airgap/app", Descriptor(OCI_MANIFEST, sig, 0)) and payload in target.blobs
    listing = "/manifests/" + fallback_tag(reg.repos["airgap/app"]["v1"])
    assert not any(r.url.path.endswith(listing) for r in fake.requests)      # the API said it all


def test_an_image_lookups_are_in_flight_together() -> None:
    """Far from a registry, one image's five lookups (the referrers API, the fallback tag, cosign's three tags)
    must not cost five round trips: cosign's three HEADs only get an answer when all three are waiting."""
    meet = threading.Barrier(3, timeout=5)

    def handler(req: httpx.Request) -> httpx.Response:
        if req.method == "HEAD" and req.url.path.endswith((".sig", ".att", ".sbom")):
            try:
                meet.wait()
            except threading.BrokenBarrierError:
                return httpx.Response(500)
        return httpx.Response(404, text="404 page not found")

    fake = Fake(handler)
    image = referrer("application/vnd.example.image", subject=SUBJECT)        # any manifest will do
    ref = Reference(HOST, "library/nginx", tag="1.25")
    discover = discoverer(Content(path="c.yaml", images=[ImageSpec(ref, [], 1, referrers=True)]), fake.http(),
                          every=False)
    assert discover is not None
    found = discover(Resolved(CopyItem(ref, ref, referrers=True), top=image, manifests=[image],
                              source_digest=image.digest))
    assert found == []
    assert sum(r.method == "HEAD" and r.url.path.endswith((".sig", ".att", ".sbom")) for r in fake.requests) == 3
