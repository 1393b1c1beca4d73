"""A fake transport for the few cases no loopback registry produces (token challenges, 429s, dropped
connections, a registry with the referrers API): every request is recorded and a handler answers it."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from typing import Any

import httpx

from mirror.http import HostSettings, Http
from mirror.mediatypes import OCI_INDEX

HOST = "reg.test"
BASE = f"https://{HOST}"


class Fake:
    """Records every request; `handler(request) -> Response` decides the answer."""

    def __init__(self, handler: Callable[[httpx.Request], httpx.Response]) -> None:
        self.handler = handler
        self.requests: list[httpx.Request] = []
        self.sleeps: list[float] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        # a snapshot: the auth flow re-sends the same Request object with headers added
        self.requests.append(httpx.Request(request.method, request.url, headers=request.headers.copy()))
        return self.handler(request)

    def http(self, **settings: Any) -> Http:
        return Http({HOST: HostSettings(**settings)}, transport=httpx.MockTransport(self),
                    sleep=self.sleeps.append, use_docker_config=False)

    def to(self, host: str) -> list[httpx.Request]:
        return [r for r in self.requests if r.url.host == host]


class FakeRegistry:
    """An in-memory OCI registry to put behind Fake: catalog, tags, manifests and blobs by digest or tag, and
    the OCI 1.1 referrers API (listing the manifests whose subject is the digest) unless `referrers_api`
    is off, when that URL is an unknown route as on distribution 2.8 and 3.0."""

    def __init__(self, *, referrers_api: bool) -> None:
        self.referrers_api = referrers_api
        self.repos: dict[str, dict[str, str]] = {}                      # repo -> tag -> digest
        self.manifests: dict[str, tuple[str, bytes]] = {}               # digest -> (media type, bytes)
        self.blobs: dict[str, bytes] = {}

    def blob(self, data: bytes, media_type: str) -> dict[str, Any]:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        self.blobs[digest] = data
        return {"mediaType": media_type, "digest": digest, "size": len(data)}

    def manifest(self, repo: str, doc: dict[str, Any], tag: str | None = None) -> dict[str, Any]:
        data = json.dumps(doc).encode()
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        self.manifests[digest] = (doc["mediaType"], data)
        tags = self.repos.setdefault(repo, {})
        if tag:
            tags[tag] = digest
        return {"mediaType": doc["mediaType"], "digest": digest, "size": len(data)}

    def __call__(self, req: httpx.Request) -> httpx.Response:
        path = req.url.path
        if path in ("/v2/", "/v2"):
            return httpx.Response(200)
        if path == "/v2/_catalog":
            return httpx.Response(200, json={"repositories": sorted(self.repos)})
        m = re.match(r"^/v2/(?P<repo>.+)/(?P<kind>manifests|blobs|tags|referrers)/(?P<ref>.+)$", path)
        if not m or m["repo"] not in self.repos:
            return httpx.Response(404, text="404 page not found")
        repo, kind, ref = m["repo"], m["kind"], m["ref"]
        if kind == "tags":
            return httpx.Response(200, json={"name": repo, "tags": sorted(self.repos[repo])})
        if kind == "referrers":
            if not self.referrers_api:
                return httpx.Response(404, text="404 page not found")
            found = []
            for digest, (mt, data) in self.manifests.items():
                doc = json.loads(data)
                if (doc.get("subject") or {}).get("digest") == ref:
                    found.append({"mediaType": mt, "digest": digest, "size": len(data),
                                  "artifactType": doc.get("artifactType", "")})
            return httpx.Response(200, json={"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": found})
        if kind == "blobs":
            body = self.blobs.get(ref)
            # a stream, as from a network (a bytes body counts as read already, and blobs are streamed)
            return httpx.Response(404) if body is None else httpx.Response(200, content=iter([body]))
        digest = self.repos[repo].get(ref, ref)
        if digest not in self.manifests:
            return httpx.Response(404, json={"errors": [{"code": "MANIFEST_UNKNOWN", "message": "unknown"}]})
        mt, data = self.manifests[digest]
        headers = {"Content-Type": mt, "Docker-Content-Digest": digest}
        return httpx.Response(200, content=b"" if req.method == "HEAD" else data, headers=headers)
