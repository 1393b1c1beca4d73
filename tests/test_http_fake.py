"""Fake-transport tests, only for what a real loopback registry will not produce: token challenges,
429 with Retry-After, 5xx bursts, dropped connections, redirects to other hosts, resumed downloads, a tag
HEAD without Docker-Content-Digest."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Iterator
from email.utils import formatdate
from typing import Any

import httpx
import pytest

from mirror.errors import AuthError, NotFoundError, UnreachableError, redact
from mirror.http import HostSettings, Http, parse_challenges, scopes_for
from mirror.mediatypes import OCI_MANIFEST, Descriptor
from mirror.reference import parse
from mirror.registry import RegistryStore
from tests.support.fake import BASE, HOST, Fake

REALM = "https://auth.test/token"
MANIFEST = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                       "config": {"mediaType": "application/vnd.oci.empty.v1+json",
                                  "digest": "sha256:" + hashlib.sha256(b"{}").hexdigest(), "size": 2},
                       "layers": []}).encode()


def _basic(user: str, pw: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()


def bearer_registry(tokens: list[httpx.Request], *, creds: tuple[str, str] | None = None,
                    key: str = "token") -> Callable[[httpx.Request], httpx.Response]:
    def handler(req: httpx.Request) -> httpx.Response:
        if req.url.host == "auth.test":
            tokens.append(req)
            if creds and req.headers.get("authorization") != _basic(*creds):
                return httpx.Response(401)
            scope = ",".join(req.url.params.get_list("scope"))
            return httpx.Response(200, json={key: f"tok[{scope}]", "expires_in": 300})
        scopes = scopes_for(req)
        want = f"Bearer tok[{','.join(scopes)}]"
        if req.headers.get("authorization") != want:
            return httpx.Response(401, headers={"WWW-Authenticate":
                                                f'Bearer realm="{REALM}",service="{HOST}",scope="{scopes[0]}"'})
        return httpx.Response(200, content=MANIFEST, headers={"Content-Type": OCI_MANIFEST})
    return handler


# -- auth ------------------------------------------------------------------------------------------------

def test_bearer_anonymous_token_cached_per_scope() -> None:
    tokens: list[httpx.Request] = []
    fake = Fake(bearer_registry(tokens))
    store = RegistryStore(fake.http(), HOST)
    m = store.get_manifest(parse(f"{HOST}/team/app:1"))
    assert m.data == MANIFEST
    assert len(tokens) == 1
    tok = tokens[0]
    assert "authorization" not in tok.headers                    # anonymous
    assert tok.url.params["service"] == HOST
    assert tok.url.params.get_list("scope") == ["repository:team/app:pull"]
    n = len(fake.requests)
    store.get_manifest(parse(f"{HOST}/team/app:2"))             # same scope: the cached token, no 401
    assert len(tokens) == 1
    assert len(fake.requests) == n + 1
    assert fake.requests[-1].headers["authorization"] == "Bearer tok[repository:team/app:pull]"
    store.get_manifest(parse(f"{HOST}/team/other:1"))           # another repository: another token
    assert len(tokens) == 2
    assert tokens[1].url.params.get_list("scope") == ["repository:team/other:pull"]


def test_bearer_with_credentials_and_access_token() -> None:
    tokens: list[httpx.Request] = []
    fake = Fake(bearer_registry(tokens, creds=("robot", "s3cret"), key="access_token"))
    store = RegistryStore(fake.http(username="robot", password="s3cret"), HOST)
    assert store.get_manifest(parse(f"{HOST}/team/app:1")).data == MANIFEST
    assert tokens[0].headers["authorization"] == _basic("robot", "s3cret")
    # the registry itself never sees the password, only the token
    sent = [r.headers.get("authorization") for r in fake.to(HOST)]
    assert sent == [None, "Bearer tok[repository:team/app:pull]"]


def test_bearer_token_refused_is_an_auth_error_without_secrets() -> None:
    tokens: list[httpx.Request] = []
    fake = Fake(bearer_registry(tokens, creds=("robot", "right")))
    store = RegistryStore(fake.http(username="robot", password="wrong-pw"), HOST)
    with pytest.raises(AuthError) as ei:
        store.get_manifest(parse(f"{HOST}/team/app:1"))
    msg = str(ei.value)
    assert "token service refused the credentials (HTTP 401)" in msg
    assert "wrong-pw" not in msg and "\n" not in msg
    assert "username/password" in ei.value.hint


def test_push_scope_and_mount_scope() -> None:
    req = httpx.Request("POST", f"{BASE}/v2/a/b/blobs/uploads/?mount=sha256:x&from=c/d")
    assert scopes_for(req) == ["repository:a/b:pull,push", "repository:c/d:pull"]
    assert scopes_for(httpx.Request("HEAD", f"{BASE}/v2/a/manifests/1")) == ["repository:a:pull"]
    # claim_blob's mount from the repository itself asks for the same token as the upload it may open
    own = httpx.Request("POST", f"{BASE}/v2/a/b/blobs/uploads/?mount=sha256:x&from=a/b")
    assert scopes_for(own) == ["repository:a/b:pull,push"]
    assert scopes_for(httpx.Request("GET", f"{BASE}/v2/")) == []


def test_parse_challenges_both_schemes() -> None:
    ch = parse_challenges('Basic realm="Registry Realm", Bearer realm="https://a/token",service="s",'
                          'scope="repository:x:pull"')
    assert ch["basic"] == {"realm": "Registry Realm"}
    assert ch["bearer"] == {"realm": "https://a/token", "service": "s", "scope": "repository:x:pull"}


def test_basic_challenge() -> None:
    def handler(req: httpx.Request) -> httpx.Response:
        if req.headers.get("authorization") != _basic("u", "p@ss"):
            return httpx.Response(401, headers={"WWW-Authenticate": 'Basic realm="r"'})
        return httpx.Response(200, content=MANIFEST, headers={"Content-Type": OCI_MANIFEST})

    fake = Fake(handler)
    store = RegistryStore(fake.http(username="u", password="p@ss"), HOST)
    store.get_manifest(parse(f"{HOST}/a:1"))
    assert [r.headers.get("authorization") for r in fake.requests] == [None, _basic("u", "p@ss")]
    store.get_manifest(parse(f"{HOST}/b:1"))                    # known Basic host: sent up front
    assert fake.requests[-1].headers["authorization"] == _basic("u", "p@ss")
    assert len(fake.requests) == 3


def test_basic_challenge_without_credentials_is_an_auth_error() -> None:
    fake = Fake(lambda req: httpx.Response(401, headers={"WWW-Authenticate": 'Basic realm="r"'},
                                           json={"errors": [{"code": "UNAUTHORIZED", "message": "auth"}]}))
    store = RegistryStore(fake.http(), HOST)
    with pytest.raises(AuthError) as ei:
        store.get_manifest(parse(f"{HOST}/a:1"))
    assert "unauthorized" in str(ei.value) and "--username" in ei.value.hint


# -- retries ---------------------------------------------------------------------------------------------

def _sequence(*answers: Any) -> Callable[[httpx.Request], httpx.Response]:
    queue = list(answers)

    def handler(req: httpx.Request) -> httpx.Response:
        a = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(a, Exception):
            raise a
        return a() if callable(a) else a
    return handler


def _ok() -> httpx.Response:
    return httpx.Response(200, content=MANIFEST, headers={"Content-Type": OCI_MANIFEST})


def test_429_retry_after_honoured() -> None:
    fake = Fake(_sequence(httpx.Response(429, headers={"Retry-After": "7"}),
                          httpx.Response(429, headers={"Retry-After": "2"}), _ok))
    store = RegistryStore(fake.http(), HOST)
    assert store.get_manifest(parse(f"{HOST}/a:1")).data == MANIFEST
    assert fake.sleeps == [7.0, 2.0]
    assert len(fake.requests) == 3


def test_429_retry_after_http_date() -> None:
    when = formatdate(timeval=__import__("time").time() + 30, usegmt=True)
    fake = Fake(_sequence(httpx.Response(429, headers={"Retry-After": when}), _ok))
    RegistryStore(fake.http(), HOST).get_manifest(parse(f"{HOST}/a:1"))
    assert len(fake.sleeps) == 1 and 25 <= fake.sleeps[0] <= 31


def test_503_then_success_backs_off() -> None:
    fake = Fake(_sequence(httpx.Response(503), httpx.Response(502), _ok))
    RegistryStore(fake.http(), HOST).get_manifest(parse(f"{HOST}/a:1"))
    assert fake.sleeps == [0.5, 1.0]                             # exponential backoff without Retry-After


def test_persistent_503_gives_up_with_an_error() -> None:
    fake = Fake(lambda req: httpx.Response(503))
    with pytest.raises(Exception) as ei:
        RegistryStore(fake.http(), HOST).get_manifest(parse(f"{HOST}/a:1"))
    assert "HTTP 503" in str(ei.value)
    assert len(fake.requests) == 6                               # first try + 5 retries


@pytest.mark.parametrize("exc", [httpx.ReadError("connection reset"), httpx.ConnectError("refused"),
                                 httpx.RemoteProtocolError("server disconnected")])
def test_dropped_connection_then_success(exc: Exception) -> None:
    fake = Fake(_sequence(exc, _ok))
    assert RegistryStore(fake.http(), HOST).get_manifest(parse(f"{HOST}/a:1")).data == MANIFEST
    assert len(fake.requests) == 2 and fake.sleeps == [0.5]


def test_unreachable_after_retries() -> None:
    fake = Fake(_sequence(httpx.ConnectError("[Errno 111] Connection refused")))
    with pytest.raises(UnreachableError) as ei:
        RegistryStore(fake.http(), HOST).ping()
    msg = str(ei.value)
    assert "Connection refused" in msg and HOST in msg and "\n" not in msg
    assert "endpoint address" in ei.value.hint
    assert len(fake.sleeps) == 5


def test_404_manifest_hint() -> None:
    fake = Fake(lambda req: httpx.Response(404, json={"errors": [{"code": "MANIFEST_UNKNOWN",
                                                                  "message": "manifest unknown"}]}))
    with pytest.raises(NotFoundError) as ei:
        RegistryStore(fake.http(), HOST).get_manifest(parse(f"{HOST}/a:nope"))
    assert "MANIFEST_UNKNOWN" in str(ei.value) and "exist in the source" in ei.value.hint
    assert fake.sleeps == []                                     # 404 is not retried


# -- resumed blob download -------------------------------------------------------------------------------

BLOB = bytes(range(256)) * 40_000             # ~10 MB so the stream arrives in several chunks
BLOB_DESC = Descriptor("application/octet-stream", "sha256:" + hashlib.sha256(BLOB).hexdigest(), len(BLOB))


def _dropping(data: bytes, cut: int) -> Iterator[bytes]:
    yield data[:cut]
    raise httpx.ReadError("connection reset by peer")


def test_blob_download_dropped_mid_stream_resumes_with_range() -> None:
    ranges: list[str | None] = []

    def handler(req: httpx.Request) -> httpx.Response:
        rng = req.headers.get("range")
        ranges.append(rng)
        start = int(rng.removeprefix("bytes=").rstrip("-")) if rng else 0
        if len(ranges) <= 2:                                      # drop twice, 3 MB into each answer
            return httpx.Response(206 if rng else 200, content=_dropping(BLOB[start:], 3_000_001))
        return httpx.Response(206, content=iter([BLOB[start:]]),
                              headers={"Content-Range": f"bytes {start}-{len(BLOB) - 1}/{len(BLOB)}"})

    fake = Fake(handler)
    store = RegistryStore(fake.http(), HOST)
    with store.open_blob("a", BLOB_DESC) as chunks:
        got = b"".join(chunks)
    assert got == BLOB
    assert len(ranges) == 3 and ranges[0] is None
    # each resume starts where the bytes already handed on end: never 0, never past the drop point
    first = int(ranges[1].removeprefix("bytes=").rstrip("-"))        # type: ignore[union-attr]
    second = int(ranges[2].removeprefix("bytes=").rstrip("-"))       # type: ignore[union-attr]
    assert 0 < first <= 3_000_001
    assert first < second <= first + 3_000_001
    assert fake.sleeps == []


def test_resume_when_range_is_ignored_skips_what_it_has() -> None:
    calls = [0]

    def handler(req: httpx.Request) -> httpx.Response:
        calls[0] += 1
        if calls[0] == 1:
            return httpx.Response(200, content=_dropping(BLOB, 1_234_567))
        return httpx.Response(200, content=iter([BLOB]))         # Range ignored: the whole blob again

    store = RegistryStore(Fake(handler).http(), HOST)
    with store.open_blob("a", BLOB_DESC) as chunks:
        assert b"".join(chunks) == BLOB


# -- redirects -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("scheme", ["basic", "bearer"])
def test_redirect_to_another_host_drops_authorization(scheme: str) -> None:
    tokens: list[httpx.Request] = []
    data = b"layer-bytes" * 100
    desc = Descriptor("application/octet-stream", "sha256:" + hashlib.sha256(data).hexdigest(), len(data))

    def handler(req: httpx.Request) -> httpx.Response:
        if req.url.host == "auth.test":
            tokens.append(req)
            return httpx.Response(200, json={"token": "T"})
        if req.url.host == "cdn.test":
            return httpx.Response(200, content=iter([data]))        # a stream, like a real transport
        auth = req.headers.get("authorization")
        if scheme == "basic" and auth != _basic("u", "pw"):
            return httpx.Response(401, headers={"WWW-Authenticate": 'Basic realm="r"'})
        if scheme == "bearer" and auth != "Bearer T":
            return httpx.Response(401, headers={"WWW-Authenticate": f'Bearer realm="{REALM}",service="s"'})
        return httpx.Response(307, headers={"Location": f"https://cdn.test/blobs/{desc.digest}?sig=abc"})

    fake = Fake(handler)
    store = RegistryStore(fake.http(username="u", password="pw"), HOST)
    with store.open_blob("a", desc) as chunks:
        assert b"".join(chunks) == data
    cdn = fake.to("cdn.test")
    assert len(cdn) == 1
    assert "authorization" not in cdn[0].headers
    assert cdn[0].url.params["sig"] == "abc"
    assert fake.to(HOST)[-1].headers.get("authorization")          # the registry itself did get it


# -- secrets ---------------------------------------------------------------------------------------------

def test_redact() -> None:
    assert redact("https://user:hunter2@reg.test/v2/") == "https://***@reg.test/v2/"
    assert redact("GET https://reg.test/token?service=x&password=hunter2&scope=y") == \
        "GET https://reg.test/token?service=x&password=***&scope=y"
    assert "abc123" not in redact("https://s3.test/b?X-Amz-Signature=abc123&access_token=abc123")
    assert redact("plain text") == "plain text"
    # the pre-signed URLs registries redirect downloads to: S3 (ECR), Cloud Storage (GCR), Azure SAS (ACR),
    # Cloudflare (Docker Hub)
    for url, secret in [("https://s3.test/b?X-Amz-Credential=AKIA1&X-Amz-Security-Token=t0k", ("AKIA1", "t0k")),
                        ("https://gcs.test/b?GoogleAccessId=svc1&Expires=9&Signature=s1g", ("svc1", "s1g")),
                        ("https://acr.test/b?sv=2020&sig=az1&sp=r", ("az1",)),
                        ("https://cf.test/b?verify=1700-abc", ("1700-abc",))]:
        clean = redact(url)
        assert not any(s in clean for s in secret), clean
    assert redact("https://gcs.test/b?Expires=9&sp=r") == "https://gcs.test/b?Expires=9&sp=r"
    assert redact("config=1 designsig=2") == "config=1 designsig=2"      # names count only where they start


def test_credentials_never_in_error_messages() -> None:
    fake = Fake(_sequence(httpx.ConnectError("[Errno 111] Connection refused")))
    http = Http({HOST: HostSettings(endpoint="https://robot:hunter2@reg.test", username="robot",
                                    password="hunter2")},
                transport=httpx.MockTransport(fake), sleep=fake.sleeps.append, use_docker_config=False)
    store = RegistryStore(http, HOST)
    for call in (store.ping, lambda: store.get_manifest(parse(f"{HOST}/a:1"))):
        with pytest.raises(UnreachableError) as ei:
            call()
        assert "hunter2" not in str(ei.value)
        assert "hunter2" not in repr(ei.value.args)


def test_auth_failure_message_has_no_password() -> None:
    fake = Fake(lambda req: httpx.Response(401, headers={"WWW-Authenticate": 'Basic realm="r"'}))
    store = RegistryStore(fake.http(username="robot", password="hunter2"), HOST)
    with pytest.raises(AuthError) as ei:
        store.get_manifest(parse(f"{HOST}/a:1"))
    assert "hunter2" not in str(ei.value)
    assert "aHVudGVyMg" not in str(ei.value)                      # nor its base64


def test_ping_stops_early_when_login_cannot_work() -> None:
    basic = Fake(lambda req: httpx.Response(401, headers={"WWW-Authenticate": 'Basic realm="r"'}))
    with pytest.raises(AuthError, match="login: unauthorized") as ei:
        RegistryStore(basic.http(), HOST).ping()                  # Basic and no credentials
    assert "give credentials" in ei.value.hint
    with pytest.raises(AuthError, match="credentials were rejected") as ei:
        RegistryStore(basic.http(username="u", password="bad"), HOST).ping()
    assert "check the username and password" in ei.value.hint
    # a Bearer registry may allow anonymous pulls: /v2/ answering 401 is not a failure by itself
    bearer = Fake(lambda req: httpx.Response(401, headers={"WWW-Authenticate": f'Bearer realm="{REALM}"'})
                  if req.url.host == HOST else httpx.Response(401))
    with pytest.raises(AuthError, match="anonymous access"):
        RegistryStore(bearer.http(), HOST).ping()                 # unless its token service refuses
    anon = Fake(lambda req: httpx.Response(200, json={"token": "t"}) if req.url.host == "auth.test"
                else httpx.Response(200 if req.headers.get("authorization") else 401,
                                    headers={"WWW-Authenticate": f'Bearer realm="{REALM}"'}))
    RegistryStore(anon.http(), HOST).ping()


# -- zot without docker2s2 (zot cannot be installed on these machines, so its answer is replayed here) ----

def test_target_refusing_docker_v2_is_explained_not_converted() -> None:
    from mirror.errors import UnsupportedError
    from mirror.mediatypes import DOCKER_MANIFEST
    from mirror.store import Manifest

    doc = json.dumps({"schemaVersion": 2, "mediaType": DOCKER_MANIFEST,
                      "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                                 "digest": "sha256:" + "0" * 64, "size": 2}, "layers": []}).encode()
    puts: list[bytes] = []

    def handler(req: httpx.Request) -> httpx.Response:
        if req.method == "PUT" and "/manifests/" in req.url.path:
            puts.append(req.read())
            # what zot answers for Docker media types when http.compat lacks "docker2s2"
            return httpx.Response(415, json={"errors": [{"code": "MANIFEST_INVALID",
                                                         "message": "unsupported media type"}]})
        return httpx.Response(404)

    fake = Fake(handler)
    store = RegistryStore(fake.http(), HOST)
    m = Manifest(doc, DOCKER_MANIFEST, "sha256:" + hashlib.sha256(doc).hexdigest())
    with pytest.raises(UnsupportedError) as ei:
        store.put_manifest(parse(f"{HOST}/library/x:1"), m)
    msg = str(ei.value)
    assert "docker2s2" in msg and "Docker v2" in msg and "digest" in msg
    assert puts == [doc]                   # one attempt, with the exact bytes: nothing converted and retried


# -- a registry that does not say which digest a tag names (Docker-Content-Digest is only a SHOULD) ------

@pytest.mark.parametrize("says_digest", [True, False], ids=["header", "no-header"])
def test_repeated_copy_skips_the_tag_only_when_the_registry_names_its_digest(says_digest: bool) -> None:
    from mirror.copy import CopyItem, copy
    from mirror.store import Manifest, MemoryStore

    digest = "sha256:" + hashlib.sha256(MANIFEST).hexdigest()
    src = MemoryStore("source")
    src.add_manifest(f"{HOST}/team/app", "1", Manifest(MANIFEST, OCI_MANIFEST, digest))

    def handler(req: httpx.Request) -> httpx.Response:
        if req.method == "HEAD" and req.url.path.endswith(("/manifests/1", f"/manifests/{digest}")):
            return httpx.Response(200, headers={"Content-Type": OCI_MANIFEST, "Content-Length": str(len(MANIFEST)),
                                                **({"Docker-Content-Digest": digest} if says_digest else {})})
        if req.method == "PUT" and "/manifests/" in req.url.path:
            return httpx.Response(201, headers={"Docker-Content-Digest": digest})
        return httpx.Response(404)

    fake = Fake(handler)
    target = RegistryStore(fake.http(), HOST, role="target")
    item = CopyItem(parse(f"{HOST}/team/app:1"), parse(f"{HOST}/mirror/team/app:1"))
    result = copy(src, target, [item], jobs=1)
    assert not result.failed
    puts = [r for r in fake.requests if r.method == "PUT"]
    if says_digest:
        assert puts == []                                  # the tag already names the digest: nothing written
    else:
        assert [r.url.path for r in puts] == ["/v2/mirror/team/app/manifests/1"]     # re-tagged, no blobs


def test_a_new_artifact_costs_one_manifest_head() -> None:
    """Where the tag is absent, the manifest is not asked for by digest as well: it is pushed."""
    from mirror.copy import CopyItem, copy
    from mirror.store import Manifest, MemoryStore

    digest = "sha256:" + hashlib.sha256(MANIFEST).hexdigest()
    src = MemoryStore("source")
    src.add_manifest(f"{HOST}/team/app", "1", Manifest(MANIFEST, OCI_MANIFEST, digest))
    src.put_bytes(b"{}", "application/vnd.oci.empty.v1+json")          # its config

    def handler(req: httpx.Request) -> httpx.Response:
        if req.method == "PUT" and "/manifests/" in req.url.path:
            return httpx.Response(201, headers={"Docker-Content-Digest": digest})
        if req.method == "POST":
            return httpx.Response(202, headers={"Location": "/v2/mirror/team/app/blobs/uploads/u"})
        if req.method == "PUT":
            return httpx.Response(201)
        return httpx.Response(404)

    fake = Fake(handler)
    target = RegistryStore(fake.http(), HOST, role="target")
    item = CopyItem(parse(f"{HOST}/team/app:1"), parse(f"{HOST}/mirror/team/app:1"))
    result = copy(src, target, [item], jobs=1)
    assert not result.failed, result.failed[0].error
    heads = [r.url.path for r in fake.requests if r.method == "HEAD" and "/manifests/" in r.url.path]
    assert heads == ["/v2/mirror/team/app/manifests/1"]


# -- chunked uploads ---------------------------------------------------------------------------------

class ChunkedTarget:
    """A registry that takes PATCH spans (checking each Content-Range follows the last) and a final PUT."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.ranges: list[str] = []
        self.digest: str | None = None

    def __call__(self, req: httpx.Request) -> httpx.Response:
        if req.method == "POST":
            return httpx.Response(202, headers={"Location": "/v2/a/blobs/uploads/u1"})
        if req.method == "PATCH":
            body = req.read()
            rng = req.headers["content-range"]
            start, end = (int(x) for x in rng.split("-"))
            if not (start == len(self.data) and end - start + 1 == len(body)):
                return httpx.Response(416)
            self.ranges.append(rng)
            self.data += body
            return httpx.Response(202, headers={"Location": f"/v2/a/blobs/uploads/u{len(self.ranges) + 1}"})
        if req.method == "DELETE":          # the session the store's claims probe opened (a 202 to a mount)
            return httpx.Response(204)
        assert req.method == "PUT"
        self.digest = req.url.params["digest"]
        return httpx.Response(201)


def _chunked_store(target: ChunkedTarget, monkeypatch: pytest.MonkeyPatch) -> RegistryStore:
    from mirror import defaults

    monkeypatch.setattr(defaults, "MONOLITHIC_UPLOAD_MAX", 1 << 20)
    monkeypatch.setattr(defaults, "UPLOAD_CHUNK_SIZE", 2 << 20)
    return RegistryStore(Fake(target).http(), HOST)


def _pieces(data: bytes, n: int) -> Iterator[bytes]:
    return (data[i:i + n] for i in range(0, len(data), n))


def test_chunked_upload_streams_spans_split_across_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    target = ChunkedTarget()
    store = _chunked_store(target, monkeypatch)
    data = bytes(range(256)) * 19532 + b"tail"                         # 5,000,196 bytes
    desc = Descriptor("application/octet-stream", "sha256:" + hashlib.sha256(data).hexdigest(), len(data))
    store.put_blob("a", desc, _pieces(data, 700_001))                  # chunks that straddle every span end
    assert bytes(target.data) == data and target.digest == desc.digest
    assert target.ranges == ["0-2097151", "2097152-4194303", f"4194304-{len(data) - 1}"]


@pytest.mark.parametrize("delta", [-1, +1])
def test_chunked_upload_of_a_source_of_the_wrong_size_is_refused(delta: int,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from mirror.errors import DigestMismatchError

    target = ChunkedTarget()
    store = _chunked_store(target, monkeypatch)
    data = b"x" * 3_000_000
    desc = Descriptor("application/octet-stream", "sha256:" + hashlib.sha256(data).hexdigest(), len(data) - delta)
    with pytest.raises(DigestMismatchError):
        store.put_blob("a", desc, _pieces(data, 500_000))
    assert target.digest is None                                       # never committed
