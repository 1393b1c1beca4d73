"""OCI distribution client implementing the Store protocol (plus cross-repository mount)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urljoin

import httpx

from . import defaults, filesend
from .digest import sha256_digest
from .errors import (
    DigestMismatchError,
    MirrorError,
    NotFoundError,
    RegistryError,
    UnreachableError,
    UnsupportedError,
)
from .http import Http, iter_response, parse_challenges, raise_for
from .mediatypes import ACCEPT, DOCKER_TYPES, OCI_INDEX, Descriptor, parse_manifest
from .reference import Reference
from .store import Manifest

log = logging.getLogger("mirror.registry")


class RegistryStore:
    """One registry host. `host` is the name references use (e.g. docker.io); the Http settings say
    where it is really reached (endpoint), with which TLS and which credentials."""

    # A registry must verify the digest of every upload before it commits it (distribution spec), and
    # refuses with DIGEST_INVALID otherwise; a client-side pass over the same bytes would only cost CPU.
    verifies_blobs = True

    def __init__(self, http: Http, host: str, *, role: str = "registry") -> None:
        self.http = http
        self.host = host
        self.base_url = http.endpoint(host)
        self.label = f"{role} {host}" + (f" ({self.base_url})" if host not in self.base_url else "")
        self._claims: bool | None = None                    # self-mounts answer as claim_blob needs?
        self._probe = threading.Lock()
        self._opened: dict[tuple[str, str], str] = {}       # (repo, digest) -> upload opened by claim_blob

    # -- helpers ----------------------------------------------------------------------------------
    def _url(self, repo: str, kind: str, ref: str = "") -> str:
        return f"{self.base_url}/v2/{repo}/{kind}/{ref}"

    def _where(self, repo: str) -> str:
        return f"{self.label}/{repo}"

    def ping(self) -> None:
        resp = self.http.request("GET", f"{self.base_url}/v2/", where=self.label)
        if resp.status_code == 401 and ("authorization" in resp.request.headers or
                                        "bearer" not in parse_challenges(resp.headers.get("www-authenticate", ""))):
            # credentials were sent and refused, or Basic auth without any: nothing can work, stop here
            raise_for(resp, "login", self.label)
        if resp.status_code not in (200, 401):
            raise RegistryError(f"/v2/ answered HTTP {resp.status_code}; this is not an OCI registry",
                                where=self.label, hint="check the endpoint address")

    # -- blobs ------------------------------------------------------------------------------------
    def _head(self, repo: str, kind: str, ref: str, headers: dict[str, str] | None = None) -> httpx.Response | None:
        """HEAD a blob or manifest: the response when it exists, None on 404, an error otherwise."""
        resp = self.http.request("HEAD", self._url(repo, kind, ref), headers=headers, where=self._where(repo))
        if resp.status_code == 404:
            return None
        if resp.status_code != 200:
            raise_for(resp, f"HEAD {kind} {ref}", self._where(repo))
        return resp

    def _exists(self, repo: str, kind: str, digest: str, headers: dict[str, str] | None = None) -> bool:
        return self._head(repo, kind, digest, headers) is not None

    def has_blob(self, repo: str, desc: Descriptor) -> bool:
        return self._exists(repo, "blobs", desc.digest)

    @contextmanager
    def open_blob(self, repo: str, desc: Descriptor) -> Iterator[Iterator[bytes]]:
        where = self._where(repo)
        url = self._url(repo, "blobs", desc.digest)
        resp = self.http.request("GET", url, where=where, stream=True)
        if resp.status_code != 200:
            resp.read()
            resp.close()
            raise_for(resp, f"GET blob {desc.digest}", where)
        holder = [resp]

        def open_at(offset: int) -> Iterator[bytes]:
            r = self.http.request("GET", url, where=where, stream=True,
                                  headers={"Range": f"bytes={offset}-"})
            holder[0] = r
            if r.status_code == 206:
                return iter_response(r)
            if r.status_code != 200:
                r.read()
                r.close()
                raise_for(r, f"GET blob {desc.digest}", where)
            return _skip(iter_response(r), offset)      # Range ignored: drop what we already have

        def chunks() -> Iterator[bytes]:
            # Resume a dropped download where it stopped instead of starting over (like skopeo/pip).
            got = 0
            attempts = 0
            it = iter_response(resp)
            while True:
                try:
                    for c in it:
                        got += len(c)
                        yield c
                    return
                except (httpx.TransportError, httpx.StreamError) as e:
                    holder[0].close()
                    attempts += 1
                    if attempts > defaults.RETRIES:
                        raise UnreachableError(f"download of {desc.digest} dropped at {got} bytes: {e}",
                                               where=where, hint="rerun; fetched blobs are kept") from e
                    log.info("resuming %s at byte %d", desc.digest, got)
                    it = open_at(got)

        try:
            yield chunks()
        finally:
            holder[0].close()

    def claim_blob(self, repo: str, desc: Descriptor) -> bool:
        """Whether `repo` holds the blob, asked so that the answer "no" is also its upload session: a mount
        from `repo` itself answers 201 when the blob is there and otherwise opens the upload (202, the
        distribution spec's answer to a mount it cannot do), which the next put_blob uses. One round trip
        instead of HEAD, POST; at 300 small images, 1448 of an import's 6500 requests. Until the target
        has shown it answers so (see _learn_claims) it is a HEAD: a registry that ignores mounts, or only
        mounts across repositories, answers 202 for blobs it holds too, and each would be uploaded again."""
        if not self._claims:
            return self.has_blob(repo, desc)
        resp = self._mount(repo, desc, repo)
        if resp.status_code == 201:
            return True
        if resp.status_code == 202 and resp.headers.get("location"):
            self._opened[(repo, desc.digest)] = self._location(resp)
            return False
        return self.has_blob(repo, desc)

    def _learn_claims(self, repo: str, desc: Descriptor) -> None:
        """After the first upload or mount into `repo` worked, the blob is there for certain: a mount of it
        from `repo` itself must answer 201 for claim_blob to be used (one request per run)."""
        with self._probe:
            if self._claims is not None:
                return
            try:
                resp = self._mount(repo, desc, repo)
                claims = resp.status_code == 201
                if not claims and resp.status_code == 202 and resp.headers.get("location"):
                    self.http.request("DELETE", self._location(resp), where=self._where(repo), retry=False)
            except MirrorError as e:        # the upload or mount that called this worked: asked again later
                log.debug("claims probe of %s: %s", self.label, e)
                return
            self._claims = claims

    def _mount(self, repo: str, desc: Descriptor, from_repo: str) -> httpx.Response:
        return self.http.request("POST", f"{self.base_url}/v2/{repo}/blobs/uploads/",
                                 params={"mount": desc.digest, "from": from_repo}, where=self._where(repo))

    def mount_blob(self, repo: str, desc: Descriptor, from_repo: str) -> bool:
        resp = self._mount(repo, desc, from_repo)
        if resp.status_code == 201:
            if self._claims is None:
                self._learn_claims(repo, desc)
            return True
        if resp.status_code == 202 and resp.headers.get("location"):
            # Mount refused; cancel the upload session it opened so it does not linger.
            self.http.request("DELETE", self._location(resp), where=self._where(repo), retry=False)
            return False
        if resp.status_code in (202, 404, 405):
            return False
        raise_for(resp, f"mount {desc.digest} from {from_repo}", self._where(repo))
        return False

    def _location(self, resp: httpx.Response) -> str:
        loc = resp.headers.get("location")
        if not loc:
            raise RegistryError("upload answer has no Location header", where=self.label)
        return urljoin(self.base_url + "/", loc)

    @staticmethod
    def _with_digest(location: str, digest: str) -> str:
        return f"{location}{'&' if '?' in location else '?'}digest={digest}"

    def _start_upload(self, repo: str) -> str:
        where = self._where(repo)
        resp = self.http.request("POST", f"{self.base_url}/v2/{repo}/blobs/uploads/", where=where)
        if resp.status_code not in (201, 202):
            raise_for(resp, "start blob upload", where)
        return self._location(resp)

    def put_blob(self, repo: str, desc: Descriptor, chunks: Iterable[bytes]) -> None:
        where = self._where(repo)
        location = self._opened.pop((repo, desc.digest), None) or self._start_upload(repo)
        if desc.size <= defaults.MONOLITHIC_UPLOAD_MAX:
            req = self.http.client.build_request(
                "PUT", self._with_digest(location, desc.digest), content=iter(chunks),
                headers={"Content-Type": "application/octet-stream", "Content-Length": str(desc.size)})
            # the body goes to the socket untouched: a bundle's blob may go from its file (mirror.filesend)
            with filesend.accepting(self.http.sends_files(req.url)):
                resp = self._send_once(req, where)
        else:
            resp = self._put_chunked(repo, location, desc, chunks)
        if resp.status_code not in (201, 204):
            if resp.status_code == 400 and "DIGEST_INVALID" in resp.text:
                raise DigestMismatchError(f"the target computed another digest than {desc.digest}",
                                          where=where, hint="the source bytes are corrupted; for a bundle "
                                          "run `airgap-mirror verify` and copy the bad part again")
            raise_for(resp, f"upload blob {desc.digest}", where)
        if self._claims is None:
            # The blob is there for certain now: whether claim_blob may ask with one POST is learnt from
            # the first upload, not only from the first mount (on a fresh import that came after 61 blobs
            # had each been asked with a HEAD and then opened with a POST).
            self._learn_claims(repo, desc)

    def _send_once(self, req: httpx.Request, where: str) -> httpx.Response:
        try:
            resp = self.http.client.send(req)
        except httpx.TransportError as e:
            raise UnreachableError(f"upload failed: {e}", where=where) from e
        return resp

    def _put_chunked(self, repo: str, location: str, desc: Descriptor,
                     chunks: Iterable[bytes]) -> httpx.Response:
        """PATCH the blob in spans of UPLOAD_CHUNK_SIZE, then PUT ?digest=. Each span streams from `chunks`
        (split where a span ends), so memory stays at one chunk per upload whatever the span size."""
        where = self._where(repo)
        source = iter(chunks)
        rest = b""                      # the tail of a chunk that crossed a span's end

        def span_of(offset: int, n: int) -> Iterator[bytes]:
            nonlocal rest
            sent = 0
            while sent < n:
                c = rest or next(source, b"")
                if not c:               # raised through httpx as is: the span is never committed
                    raise DigestMismatchError(f"{desc.digest} ended after {offset + sent} of {desc.size} bytes",
                                              where=where)
                c, rest = c[:n - sent], c[n - sent:]
                sent += len(c)
                yield c

        offset = 0
        while offset < desc.size:
            n = min(defaults.UPLOAD_CHUNK_SIZE, desc.size - offset)
            req = self.http.client.build_request(
                "PATCH", location, content=span_of(offset, n),
                headers={"Content-Type": "application/octet-stream", "Content-Range": f"{offset}-{offset + n - 1}",
                         "Content-Length": str(n)})
            resp = self._send_once(req, where)
            if resp.status_code != 202:
                raise_for(resp, f"upload chunk of {desc.digest}", where)
            location = self._location(resp)
            offset += n
        if rest or next(source, b""):
            raise DigestMismatchError(f"{desc.digest} is longer than its {desc.size} bytes", where=where)
        req = self.http.client.build_request("PUT", self._with_digest(location, desc.digest),
                                             headers={"Content-Length": "0"})
        return self._send_once(req, where)

    # -- manifests --------------------------------------------------------------------------------
    def get_manifest(self, ref: Reference) -> Manifest:
        where = f"{self.label}/{ref.repository}:{ref.identifier}"
        resp = self.http.request("GET", self._url(ref.repository, "manifests", ref.identifier),
                                 headers={"Accept": ACCEPT}, where=where, stream=True)
        try:
            if resp.status_code != 200:
                resp.read()
                raise_for(resp, f"manifest {ref.identifier}", where,
                          hint="check that the image and tag exist in the source" if resp.status_code == 404
                          else "")
            data = bytearray()
            for c in resp.iter_bytes():
                data += c
                if len(data) > defaults.MAX_MANIFEST_BYTES:
                    raise RegistryError(f"manifest is larger than {defaults.MAX_MANIFEST_BYTES} bytes",
                                        where=where)
        finally:
            resp.close()
        body = bytes(data)
        digest = sha256_digest(body)
        if ref.digest and ref.digest != digest:
            raise DigestMismatchError(f"manifest bytes hash to {digest}, not {ref.digest}", where=where)
        ctype = resp.headers.get("content-type", "").split(";")[0].strip()
        mt, _ = parse_manifest(body, ctype)
        return Manifest(body, mt, digest)

    def has_manifest(self, repo: str, desc: Descriptor) -> bool:
        return self._exists(repo, "manifests", desc.digest, {"Accept": ACCEPT})

    def tag_digest(self, repo: str, tag: str) -> str | None:
        """The digest `repo:tag` names now (HEAD); None when the tag is absent; "" when it exists but the
        registry does not say which digest it names (Docker-Content-Digest is a SHOULD in the spec)."""
        resp = self._head(repo, "manifests", tag, {"Accept": ACCEPT})
        return resp.headers.get("docker-content-digest", "") if resp is not None else None

    def put_manifest(self, ref: Reference, manifest: Manifest) -> None:
        ident = ref.tag or manifest.digest
        where = f"{self.label}/{ref.repository}:{ident}"
        resp = self.http.request("PUT", self._url(ref.repository, "manifests", ident), content=manifest.data,
                                 headers={"Content-Type": manifest.media_type}, where=where)
        if resp.status_code in (200, 201, 202):
            got = resp.headers.get("docker-content-digest")
            if got and got != manifest.digest:
                raise DigestMismatchError(f"target stored the manifest as {got}, not {manifest.digest}",
                                          where=where, hint="the target rewrote the manifest")
            return
        if manifest.media_type in DOCKER_TYPES and resp.status_code in (400, 415):
            raise UnsupportedError(
                f"target refused a Docker v2 manifest ({manifest.media_type}); converting it to OCI would "
                "change its digest, so it was not converted", where=where,
                hint="zot needs http.compat: [\"docker2s2\"] in its config to store Docker v2 manifests")
        if resp.status_code == 404:
            raise NotFoundError(f"PUT manifest refused: {resp.text[:200]}", where=where,
                                hint="on Harbor the project (first path segment) must exist")
        raise_for(resp, "PUT manifest", where)

    # -- referrers (OCI distribution 1.1) -----------------------------------------------------------
    def referrers(self, repo: str, digest: str) -> list[dict[str, Any]] | None:
        """The descriptors of every manifest whose `subject` is `digest`, from the referrers API (all pages);
        None when the registry has no referrers API, where the fallback tag (`referrers_tag`) lists them."""
        where = self._where(repo)
        url: str | None = self._url(repo, "referrers", digest)
        out: list[dict[str, Any]] = []
        while url:
            resp = self.http.request("GET", url, headers={"Accept": OCI_INDEX}, where=where)
            if resp.status_code in _NO_REFERRERS_API and not out:
                return None
            if resp.status_code != 200:
                raise_for(resp, f"list referrers of {digest}", where)
            try:
                doc: Any = resp.json()
                out.extend(m for m in doc.get("manifests") or [] if isinstance(m, dict) and m.get("digest"))
            except (ValueError, AttributeError) as e:
                raise RegistryError(f"referrers of {digest}: the answer is not an image index", where=where,
                                    hint="the registry's referrers API is broken; report it") from e
            link = resp.links.get("next", {}).get("url")
            url = urljoin(self.base_url + "/", link) if link else None
        return out

    # -- listing (inventory) ----------------------------------------------------------------------
    def _paged(self, url: str, key: str, where: str) -> list[str]:
        out: list[str] = []
        next_url: str | None = url
        while next_url:
            resp = self.http.request("GET", next_url, where=where)
            if resp.status_code == 404:
                return out
            if resp.status_code != 200:
                raise_for(resp, f"list {key}", where)
            doc: Any = resp.json()
            out.extend(doc.get(key) or [])
            link = resp.links.get("next", {}).get("url")
            next_url = urljoin(self.base_url + "/", link) if link else None
        return out

    def catalog(self) -> list[str]:
        return self._paged(f"{self.base_url}/v2/_catalog?n=1000", "repositories", self.label)

    def tags(self, repo: str) -> list[str]:
        return self._paged(self._url(repo, "tags", "list"), "tags", self._where(repo))


# A registry without the referrers API answers its URL as an unknown route (distribution 2.8 and 3.0: 404;
# some proxies 400, 405 or 501); one with it answers 200, an empty index when nothing refers to the digest.
_NO_REFERRERS_API = frozenset({400, 404, 405, 501})


def _skip(it: Iterator[bytes], n: int) -> Iterator[bytes]:
    for c in it:
        if n >= len(c):
            n -= len(c)
            continue
        yield c[n:] if n else c
        n = 0


class RegistrySet:
    """Many source registries as one Store: repository strings are full names (`docker.io/library/nginx`)."""

    def __init__(self, http: Http, *, role: str = "source") -> None:
        self.http = http
        self.role = role
        self.label = f"{role} registries"
        self._stores: dict[str, RegistryStore] = {}

    def store(self, host: str) -> RegistryStore:
        s = self._stores.get(host)
        if s is None:
            s = self._stores[host] = RegistryStore(self.http, host, role=self.role)
        return s

    def repo_of(self, ref: Reference) -> str:
        return ref.name

    def _split(self, repo: str) -> tuple[RegistryStore, str]:
        host, _, path = repo.partition("/")
        return self.store(host), path

    def has_blob(self, repo: str, desc: Descriptor) -> bool:
        s, path = self._split(repo)
        return s.has_blob(path, desc)

    def has_manifest(self, repo: str, desc: Descriptor) -> bool:
        s, path = self._split(repo)
        return s.has_manifest(path, desc)

    @contextmanager
    def open_blob(self, repo: str, desc: Descriptor) -> Iterator[Iterator[bytes]]:
        s, path = self._split(repo)
        with s.open_blob(path, desc) as chunks:
            yield chunks

    def put_blob(self, repo: str, desc: Descriptor, chunks: Iterable[bytes]) -> None:
        s, path = self._split(repo)
        s.put_blob(path, desc, chunks)

    def get_manifest(self, ref: Reference) -> Manifest:
        return self.store(ref.registry).get_manifest(ref)

    def put_manifest(self, ref: Reference, manifest: Manifest) -> None:
        self.store(ref.registry).put_manifest(ref, manifest)

    def tag_digest(self, repo: str, tag: str) -> str | None:
        s, path = self._split(repo)
        return s.tag_digest(path, tag)

    def referrers(self, repo: str, digest: str) -> list[dict[str, Any]] | None:
        s, path = self._split(repo)
        return s.referrers(path, digest)


class OverlayStore:
    """Routes repositories named in `overlays` (full names) to their own Store, the rest to `base`."""

    def __init__(self, base: RegistrySet, overlays: dict[str, Any]) -> None:
        self.base = base
        self.overlays = overlays
        self.label = base.label

    def repo_of(self, ref: Reference) -> str:
        return ref.name

    def _pick(self, repo: str) -> Any:
        return self.overlays.get(repo, self.base)

    def has_blob(self, repo: str, desc: Descriptor) -> bool:
        return bool(self._pick(repo).has_blob(repo, desc))

    def has_manifest(self, repo: str, desc: Descriptor) -> bool:
        return bool(self._pick(repo).has_manifest(repo, desc))

    @contextmanager
    def open_blob(self, repo: str, desc: Descriptor) -> Iterator[Iterator[bytes]]:
        with self._pick(repo).open_blob(repo, desc) as chunks:
            yield chunks

    def put_blob(self, repo: str, desc: Descriptor, chunks: Iterable[bytes]) -> None:
        self._pick(repo).put_blob(repo, desc, chunks)

    def get_manifest(self, ref: Reference) -> Manifest:
        return self._pick(ref.name).get_manifest(ref)  # type: ignore[no-any-return]

    def put_manifest(self, ref: Reference, manifest: Manifest) -> None:
        self._pick(ref.name).put_manifest(ref, manifest)
