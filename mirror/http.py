"""The one HTTP client for the whole tool, built here and only here.

- TLS per host (CA file, insecure) through httpx transport mounts on a single `httpx.Client`.
- Retries with exponential backoff on 408/429/5xx and dropped connections, honouring Retry-After.
  Only requests whose body can be replayed are retried here; streamed uploads are retried by the caller,
  which can reopen its source.
- Redirects are followed by httpx, which drops Authorization when the redirect leaves the origin.
- Registry auth is an `httpx.Auth` flow: answer the 401 challenge (Bearer token per scope, or Basic).
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import shutil
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import httpcore
import httpx

from . import defaults, shape
from .errors import AuthError, RegistryError, TLSError, UnreachableError, UsageError, redact
from .pool import Pool

log = logging.getLogger("mirror.http")

Credentials = tuple[str, str]
CredentialProvider = Callable[[str], Credentials | None]


@dataclass
class HostSettings:
    """How one registry host is reached (from the content file, CLI flags or defaults)."""

    endpoint: str | None = None            # scheme://host[:port] where the host really lives
    insecure: bool = False                 # skip TLS verification
    ca_file: str | None = None
    plain_http: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    provider: CredentialProvider | None = field(default=None, repr=False)   # e.g. ECR tokens

    def credentials(self, host: str) -> Credentials | None:
        if self.username is not None and self.password is not None:
            return self.username, self.password
        if self.provider is not None:
            return self.provider(host)
        return None


def env_proxy(url: str) -> str | None:
    """The proxy HTTPS_PROXY / HTTP_PROXY / ALL_PROXY name for `url`, unless NO_PROXY exempts its host, the
    way httpx reads them for the hosts it routes itself."""
    import urllib.request

    parts = httpx.URL(url)
    if urllib.request.proxy_bypass(parts.host):
        return None
    found = urllib.request.getproxies()
    return found.get(parts.scheme) or found.get("all") or None


def default_endpoint(host: str, settings: HostSettings) -> str:
    if settings.endpoint:
        return settings.endpoint.rstrip("/")
    if host == defaults.DOCKER_HUB:
        return defaults.DOCKER_HUB_ENDPOINT
    return f"{'http' if settings.plain_http else 'https'}://{host}"


# -- credentials from the user's machine ----------------------------------------------------------

def _docker_config_paths() -> list[Path]:
    paths = []
    for env in ("REGISTRY_AUTH_FILE",):
        if os.environ.get(env):
            paths.append(Path(os.environ[env]))
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg:
        paths.append(Path(xdg) / "containers" / "auth.json")
    cfg_dir = os.environ.get("DOCKER_CONFIG")
    paths.append(Path(cfg_dir) / "config.json" if cfg_dir else Path.home() / ".docker" / "config.json")
    return paths


def _auth_keys(host: str) -> list[str]:
    keys = [host, f"https://{host}", f"http://{host}", f"https://{host}/v1/", f"https://{host}/v2/"]
    if host == defaults.DOCKER_HUB:
        keys += ["https://index.docker.io/v1/", "index.docker.io", "registry-1.docker.io"]
    return keys


def _cred_helper(helper: str, host: str) -> Credentials | None:
    name = f"docker-credential-{helper}"
    exe = shutil.which(name)
    if not exe:
        log.warning("credential helper %s not found; %s is used anonymously", name, host)
        return None
    for server in (host, f"https://{host}") + (("https://index.docker.io/v1/",)
                                              if host == defaults.DOCKER_HUB else ()):
        try:
            r = subprocess.run([exe, "get"], input=server.encode(), capture_output=True, timeout=30)
        except subprocess.TimeoutExpired as e:
            raise AuthError(f"{name} did not answer within 30 s", where=host,
                            hint="check the credential helper (is it waiting for a keyring unlock?)") from e
        if r.returncode == 0:
            try:
                doc = json.loads(r.stdout)
            except ValueError:
                doc = None
            if not isinstance(doc, dict) or shape.problem(doc, {"Username?": str, "Secret?": str}):
                # never echo what it printed: it may be the secret itself
                raise AuthError(f"{name} answered with something that is not its JSON credentials", where=host,
                                hint=f"check `echo {server} | {name} get`")
            return doc.get("Username", ""), doc.get("Secret", "")
    return None


# The parts of docker's config.json and containers' auth.json read here (other keys are left alone).
AUTH_FILE_SHAPE = {"auths?": {str: {"auth?": str, "username?": str, "password?": str, "identitytoken?": str}},
                   "credHelpers?": {str: str}, "credsStore?": str}


def _auth_file(path: Path) -> dict[str, Any] | None:
    """A credentials file's contents; None when there is none. One that cannot be used is an error that
    names it (credentials were asked for, and guessing past a damaged file would hide why they fail)."""
    hint = "fix the file, or point DOCKER_CONFIG / REGISTRY_AUTH_FILE at a good one"
    try:
        doc = json.loads(path.read_text())
    except OSError:
        return None
    except json.JSONDecodeError as e:
        raise UsageError(f"credentials file is not valid JSON ({e.msg}, line {e.lineno})", where=str(path),
                         hint=hint) from None
    except ValueError:                      # not UTF-8 text at all
        raise UsageError("credentials file is not valid JSON", where=str(path), hint=hint) from None
    bad = shape.problem(doc, AUTH_FILE_SHAPE)
    if bad:
        raise UsageError(f"credentials file does not read as one: {bad}", where=str(path), hint=hint)
    return dict(doc)


def docker_config_credentials(host: str) -> Credentials | None:
    """Credentials for `host` from docker/containers auth files and credential helpers."""
    for path in _docker_config_paths():
        doc = _auth_file(path)
        if doc is None:
            continue
        helper = (doc.get("credHelpers") or {}).get(host)
        if helper:
            return _cred_helper(helper, host)
        auths = doc.get("auths") or {}
        for key in _auth_keys(host):
            entry = auths.get(key)
            if not entry:
                continue
            if entry.get("auth"):
                try:
                    user, sep, pw = base64.b64decode(entry["auth"], validate=True).decode().partition(":")
                except ValueError:          # binascii.Error and UnicodeDecodeError are ValueErrors
                    sep = ""
                if not sep:
                    raise UsageError(f"auths.{key}.auth is not base64 of user:password", where=str(path),
                                     hint="write it again with `docker login` (or podman/skopeo login)")
                return user, pw
            if entry.get("username"):
                return entry["username"], entry.get("password", "")
            if entry.get("identitytoken"):
                return "<token>", entry["identitytoken"]
        if doc.get("credsStore"):
            creds = _cred_helper(doc["credsStore"], host)
            if creds:
                return creds
    return None


def basic_header(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


# -- the 401 challenge ----------------------------------------------------------------------------

_CHALLENGE = re.compile(r'(\w+)\s*=\s*(?:"([^"]*)"|([^\s,]+))')
_REPO_PATH = re.compile(r"^/v2/(?P<name>.+?)/(?P<kind>manifests|blobs|tags|referrers)(?:/|$)")


def parse_challenges(header: str) -> dict[str, dict[str, str]]:
    """`Bearer realm="..",service=".."` (possibly several schemes) -> {scheme: params}."""
    out: dict[str, dict[str, str]] = {}
    for m in re.finditer(r"(?i)(Bearer|Basic)\b([^B]*(?:B(?!earer|asic)[^B]*)*)", header):
        params = {k.lower(): (v1 or v2) for k, v1, v2 in _CHALLENGE.findall(m.group(2))}
        out[m.group(1).lower()] = params
    return out


def scopes_for(request: httpx.Request) -> list[str]:
    m = _REPO_PATH.match(request.url.path)
    if not m:
        return []
    action = "pull" if request.method in ("GET", "HEAD") else "pull,push"
    scopes = [f"repository:{m.group('name')}:{action}"]
    mount_from = request.url.params.get("from")
    if mount_from and mount_from != m.group("name"):        # a mount from the repository itself: no more
        scopes.append(f"repository:{mount_from}:pull")
    return scopes


class RegistryAuth(httpx.Auth):
    """Answers registry 401 challenges; tokens are cached per (realm, service, scopes) until they expire."""

    def __init__(self, credentials: Callable[[str], Credentials | None]) -> None:
        self._credentials = credentials
        self._tokens: dict[tuple[str, str, str], tuple[str, float]] = {}
        self._basic_hosts: set[str] = set()
        self._bearer_for_host: dict[str, tuple[str, str]] = {}   # host -> (realm, service)
        self._lock = threading.Lock()

    def _cached(self, key: tuple[str, str, str]) -> str | None:
        with self._lock:
            tok = self._tokens.get(key)
        if tok and tok[1] > time.monotonic():
            return tok[0]
        return None

    def _apply_known(self, request: httpx.Request, host: str) -> bool:
        if host in self._basic_hosts:
            creds = self._credentials(host)
            if creds:
                request.headers["Authorization"] = basic_header(*creds)
                return True
        rs = self._bearer_for_host.get(host)
        if rs:
            key = (rs[0], rs[1], " ".join(scopes_for(request)))
            tok = self._cached(key)
            if tok:
                request.headers["Authorization"] = f"Bearer {tok}"
                return True
        return False

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        host = request.url.netloc.decode()
        self._apply_known(request, host)
        response = yield request
        if response.status_code != 401:
            return
        challenges = parse_challenges(response.headers.get("www-authenticate", ""))
        creds = self._credentials(host)
        if "bearer" in challenges:
            ch = challenges["bearer"]
            realm, service = ch.get("realm", ""), ch.get("service", "")
            if not realm:
                return
            scopes = scopes_for(request)
            if ch.get("scope") and ch["scope"] not in scopes:
                scopes.append(ch["scope"])
            params: list[tuple[str, str | int | float | bool | None]] = [("service", service)] if service else []
            params += [("scope", s) for s in scopes]
            token_req = httpx.Request("GET", realm, params=params)
            if creds:
                token_req.headers["Authorization"] = basic_header(*creds)
            token_resp = yield token_req
            if token_resp.status_code in (401, 403):
                raise AuthError(f"token service refused {'the credentials' if creds else 'anonymous access'} "
                                f"(HTTP {token_resp.status_code})", where=host,
                                hint="check the username/password or docker login for this registry")
            if token_resp.status_code != 200:
                raise AuthError(f"token service answered HTTP {token_resp.status_code}", where=realm)
            token_resp.read()
            doc = token_resp.json()
            token = doc.get("token") or doc.get("access_token")
            if not token:
                raise AuthError("token response has no token", where=realm)
            ttl = float(doc.get("expires_in") or defaults.TOKEN_DEFAULT_TTL)
            key = (realm, service, " ".join(scopes_for(request)))
            with self._lock:
                self._tokens[key] = (token, time.monotonic() + max(ttl - 10, ttl / 2))
                self._bearer_for_host[host] = (realm, service)
            request.headers["Authorization"] = f"Bearer {token}"
            yield request
        elif "basic" in challenges and creds:
            with self._lock:
                self._basic_hosts.add(host)
            request.headers["Authorization"] = basic_header(*creds)
            yield request


# -- the client -----------------------------------------------------------------------------------

def _retry_after(resp: httpx.Response, attempt: int) -> float:
    backoff = min(defaults.BACKOFF_BASE * (2 ** attempt), defaults.BACKOFF_MAX)
    value = resp.headers.get("retry-after")
    if value:
        try:
            return min(max(float(value), 0.0), defaults.BACKOFF_MAX * 4)
        except ValueError:
            try:
                delta = parsedate_to_datetime(value).timestamp() - time.time()
                return min(max(delta, 0.0), defaults.BACKOFF_MAX * 4)
            except (TypeError, ValueError):
                pass
    return backoff


def _tune_httpcore() -> None:
    # httpcore reads HTTP/1.1 bodies 64 KiB at a time, and every read costs a trip through h11 in
    # Python: on loopback that capped layer downloads near 160 MB/s while curl did 420. 1 MiB reads
    # cut the per-byte overhead ~16x (measured: 160 -> 270-320 MB/s). There is no public option for it.
    conn = getattr(getattr(httpcore, "_sync", None), "http11", None)
    cls = getattr(conn, "HTTP11Connection", None)
    if cls is not None and getattr(cls, "READ_NUM_BYTES", 0) < defaults.HTTP_READ_SIZE:
        cls.READ_NUM_BYTES = defaults.HTTP_READ_SIZE


def _use_own_pools(client: httpx.Client) -> None:
    """Put mirror.pool.Pool under every direct (not proxied) transport of `client`, with the same TLS
    context and limits (why: mirror/pool.py). httpx has no option for a pool of one's own; where its
    internals differ from the ones this was written against, httpcore's pool simply stays."""
    transports = [getattr(client, "_transport", None), *getattr(client, "_mounts", {}).values()]
    for t in transports:
        old = getattr(t, "_pool", None)
        if type(old) is not httpcore.ConnectionPool:        # proxies (subclasses), test transports: untouched
            continue
        try:
            new = Pool(ssl_context=old._ssl_context, max_connections=old._max_connections,
                       keepalive_expiry=old._keepalive_expiry, socket_options=old._socket_options)
        except AttributeError:
            continue
        t._pool = new  # type: ignore[union-attr]


class _DeferredTrust(ssl.SSLContext):
    """The default TLS context with httpx's choice of CAs (SSL_CERT_FILE, SSL_CERT_DIR, else certifi),
    loaded on the first handshake rather than when the client is built: loading the bundle costs ~40 ms,
    a tenth of a repeated import that talks only plain HTTP. Hosts with a CA file or `insecure` have
    their own contexts (mounts) and never reach this one."""

    _trust_lock = threading.Lock()

    def _trust(self) -> None:
        if getattr(self, "_trusted", False):
            return
        with self._trust_lock:
            if getattr(self, "_trusted", False):
                return
            if os.environ.get("SSL_CERT_FILE"):
                self.load_verify_locations(cafile=os.environ["SSL_CERT_FILE"])
            elif os.environ.get("SSL_CERT_DIR"):
                self.load_verify_locations(capath=os.environ["SSL_CERT_DIR"])
            else:
                import certifi

                self.load_verify_locations(cafile=certifi.where())
            self._trusted = True

    def wrap_socket(self, *args: Any, **kwargs: Any) -> Any:
        self._trust()
        return super().wrap_socket(*args, **kwargs)

    def wrap_bio(self, *args: Any, **kwargs: Any) -> Any:
        self._trust()
        return super().wrap_bio(*args, **kwargs)


class Http:
    """One httpx.Client with per-host TLS, registry auth and retries."""

    def __init__(self, hosts: dict[str, HostSettings] | None = None, *,
                 transport: httpx.BaseTransport | None = None, sleep: Callable[[float], None] = time.sleep,
                 use_docker_config: bool = True) -> None:
        _tune_httpcore()
        self.hosts: dict[str, HostSettings] = dict(hosts or {})
        self._sleep = sleep
        self._use_docker_config = use_docker_config
        self._cred_cache: dict[str, Credentials | None] = {}
        self._by_netloc: dict[str, HostSettings] = {}
        mounts: dict[str, httpx.BaseTransport] = {}
        limits = httpx.Limits(max_connections=defaults.POOL_CONNECTIONS,
                              max_keepalive_connections=defaults.POOL_CONNECTIONS)
        for name, s in self.hosts.items():
            netloc = httpx.URL(default_endpoint(name, s)).netloc.decode()
            self._by_netloc[netloc] = s
            if transport is None and (s.insecure or s.ca_file):
                # a mount of our own replaces httpx's proxy mounts for this host: give it the proxy back
                mounts[f"all://{netloc}"] = httpx.HTTPTransport(verify=self._ssl_context(name, s), limits=limits,
                                                               proxy=env_proxy(default_endpoint(name, s)))
        self.client = httpx.Client(
            transport=transport, mounts=mounts or None, follow_redirects=True, limits=limits,
            verify=_DeferredTrust(ssl.PROTOCOL_TLS_CLIENT),
            timeout=httpx.Timeout(defaults.READ_TIMEOUT, connect=defaults.CONNECT_TIMEOUT),
            headers={"User-Agent": defaults.USER_AGENT}, auth=RegistryAuth(self.credentials_for_netloc),
        )
        _use_own_pools(self.client)

    @staticmethod
    def _ssl_context(name: str, s: HostSettings) -> ssl.SSLContext | bool:
        if s.insecure:
            return False
        try:
            return ssl.create_default_context(cafile=s.ca_file)
        except (OSError, ssl.SSLError) as e:
            raise TLSError(f"cannot load CA file {s.ca_file}: {e}", where=name,
                           hint="pass a PEM CA bundle with --ca-file / ca_file") from e

    def settings(self, host: str) -> HostSettings:
        return self.hosts.setdefault(host, HostSettings())

    def endpoint(self, host: str) -> str:
        return default_endpoint(host, self.settings(host))

    def credentials_for_netloc(self, netloc: str) -> Credentials | None:
        s = self._by_netloc.get(netloc)
        if s is None:
            for name, hs in self.hosts.items():
                if name == netloc:
                    s = hs
                    break
        if s is not None:
            creds = s.credentials(netloc)
            if creds:
                return creds
        if not self._use_docker_config:
            return None
        if netloc not in self._cred_cache:
            host = next((n for n, hs in self.hosts.items() if hs is s), netloc)
            self._cred_cache[netloc] = docker_config_credentials(host)
        return self._cred_cache[netloc]

    def close(self) -> None:
        self.client.close()

    def sends_files(self, url: httpx.URL) -> bool:
        """Whether a request to `url` goes over plain TCP through this client's own pool, whose streams send
        a body's file chunks by sendfile (mirror.filesend): not over TLS, not through a proxy, not through
        a transport given from outside (tests)."""
        if url.scheme != "http":
            return False
        transport = self.client._transport_for_url(url)    # httpx's own choice, proxies and mounts included
        return isinstance(getattr(transport, "_pool", None), Pool)

    def request(self, method: str, url: str, *, where: str = "", stream: bool = False,
                headers: dict[str, str] | None = None, content: bytes | None = None,
                params: dict[str, str] | None = None, retry: bool = True) -> httpx.Response:
        """Send with retries. With stream=True the caller must close the response."""
        attempts = defaults.RETRIES + 1 if retry else 1
        last: Exception | None = None
        for attempt in range(attempts):
            try:
                req = self.client.build_request(method, url, headers=headers, content=content, params=params)
                resp = self.client.send(req, stream=True)
            except httpx.TransportError as e:
                last = e
                if isinstance(e, httpx.ConnectError) and _is_tls_error(e):
                    raise TLSError(f"TLS handshake failed: {_short(e)}", where=where or redact(url),
                                   hint="pass --ca-file with the registry's CA, or --insecure") from e
                if attempt + 1 < attempts:
                    delay = min(defaults.BACKOFF_BASE * (2 ** attempt), defaults.BACKOFF_MAX)
                    log.info("retrying %s %s after %s (%.1fs)", method, redact(url), type(e).__name__, delay)
                    self._sleep(delay)
                    continue
                raise UnreachableError(f"{method} failed: {_short(e)}", where=where or redact(url),
                                       hint="check the endpoint address, the network and any proxy") from e
            if resp.status_code in defaults.RETRY_STATUSES and attempt + 1 < attempts:
                delay = _retry_after(resp, attempt)
                resp.close()
                log.info("retrying %s %s after HTTP %d (%.1fs)", method, redact(url), resp.status_code, delay)
                self._sleep(delay)
                continue
            if not stream:
                try:
                    resp.read()
                finally:
                    resp.close()
            return resp
        raise UnreachableError(f"{method} failed: {last}", where=where or redact(url))  # pragma: no cover


def _is_tls_error(e: Exception) -> bool:
    cur: BaseException | None = e
    while cur is not None:
        if isinstance(cur, ssl.SSLError) or "CERTIFICATE" in str(cur).upper() or "SSL" in str(cur):
            return True
        cur = cur.__cause__ or cur.__context__
    return False


def _short(e: Exception) -> str:
    return redact(str(e).splitlines()[0] if str(e) else type(e).__name__)


def error_detail(resp: httpx.Response) -> str:
    """The registry's error code/message, for messages (never includes request headers)."""
    try:
        doc: Any = resp.json()
        errs = doc.get("errors") or []
        if errs:
            e = errs[0]
            return f"{e.get('code', '')}: {e.get('message', '')}".strip(": ")
    except (ValueError, AttributeError, httpx.ResponseNotRead):
        pass
    return resp.reason_phrase or ""


def raise_for(resp: httpx.Response, what: str, where: str, *, hint: str = "") -> None:
    from .errors import NotFoundError

    code = resp.status_code
    detail = error_detail(resp)
    if code == 401:
        try:
            sent = "authorization" in resp.request.headers
        except RuntimeError:                # a response built without a request
            sent = False
        if sent:
            raise AuthError(f"{what}: unauthorized, the credentials were rejected ({detail})", where=where,
                            hint=hint or "check the username and password (--username/--password-stdin, "
                            "content file auth, or docker login)")
        raise AuthError(f"{what}: unauthorized ({detail})", where=where,
                        hint=hint or "give credentials (--username/--password-stdin, content file auth, "
                        "or docker login)")
    if code == 403:
        raise AuthError(f"{what}: forbidden ({detail})", where=where,
                        hint=hint or "the credentials lack permission for this repository")
    if code == 404:
        raise NotFoundError(f"{what}: not found ({detail})", where=where,
                            hint=hint or "check the repository name and tag")
    raise RegistryError(f"{what}: HTTP {code} ({detail})", where=where, hint=hint)


def iter_response(resp: httpx.Response) -> Iterator[bytes]:
    """A response body as it arrives. No re-chunking: bodies come in reads of up to HTTP_READ_SIZE
    already, and re-chunking copies. A big plain body (HTTP/1.1, Content-Length, no content encoding)
    is read past h11, see `_direct_body`."""
    if not _identity(resp):
        yield from resp.iter_bytes()
        return
    stream = resp.extensions.get("network_stream")
    length = resp.headers.get("content-length", "")
    if (stream is None or not length.isdigit() or int(length) < defaults.HTTP_DIRECT_BODY_MIN
            or resp.extensions.get("http_version") != b"HTTP/1.1" or resp.request.method == "HEAD"):
        yield from _coalesce(resp.iter_raw())
        return
    yield from _coalesce(_direct_body(resp, stream, int(length)))


def _coalesce(chunks: Iterator[bytes], size: int = defaults.HTTP_READ_SIZE // 2) -> Iterator[bytes]:
    # Over TLS a read returns one record, at most 16 KiB: 65 000 chunks per GB, each costing every stage
    # after this one (digest, progress event, the bundle writer's block buffer) a Python call and often a
    # copy. Joining them here into ~HTTP_READ_SIZE/2 costs one copy; chunks already that big (plain HTTP)
    # pass untouched.
    parts: list[bytes] = []
    held = 0
    for c in chunks:
        if not parts and len(c) >= size:
            yield c
            continue
        parts.append(c)
        held += len(c)
        if held >= size:
            yield b"".join(parts)
            parts, held = [], 0
    if parts:
        yield b"".join(parts)


def _direct_body(resp: httpx.Response, stream: Any, length: int) -> Iterator[bytes]:
    # Through h11 every body byte is copied three times in Python (appended to its receive buffer, sliced
    # out, turned into bytes), ~0.45 CPU-s per GB: a fifth of an export's CPU on loopback. So after the
    # first chunk, which drains what h11 had already buffered with the headers, the rest is read from
    # httpcore's documented "network_stream" extension (TLS-aware: it decrypts), one recv per chunk and
    # no copy. h11 then never sees the end of the body, so httpcore closes this connection rather than
    # pooling it; hence only bodies of HTTP_DIRECT_BODY_MIN and more, where a new connection is cheap
    # against the body's own transfer time. Errors are raised as httpx's, so callers' resume logic is
    # unchanged.
    left = length
    raw = resp.iter_raw()
    for first in raw:
        left -= len(first)
        yield first
        break
    if left <= 0:
        yield from raw                             # lets h11 see the end: the connection is pooled
        return
    timeout = (resp.request.extensions.get("timeout") or {}).get("read")
    while left > 0:
        try:
            chunk = stream.read(min(left, defaults.HTTP_READ_SIZE), timeout)
        except httpcore.TimeoutException as e:
            raise httpx.ReadTimeout(str(e) or "read timed out", request=resp.request) from e
        except httpcore.NetworkError as e:
            raise httpx.ReadError(str(e) or "read failed", request=resp.request) from e
        if not chunk:
            raise httpx.RemoteProtocolError(f"peer closed the connection {left} bytes before the end of "
                                            "the body", request=resp.request)
        left -= len(chunk)
        yield chunk


def _identity(resp: httpx.Response) -> bool:
    return resp.headers.get("content-encoding", "identity") in ("identity", "")
