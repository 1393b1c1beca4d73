"""The error hierarchy. Every message says what failed, where, and what to do next.

Messages never contain credentials: URLs are passed through `redact` before they are formatted.
"""

from __future__ import annotations

import logging
import re

_USERINFO = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^/@\s]+@", re.I)
# Query values that are credentials: passwords and tokens, and the signatures of the pre-signed URLs that
# registries redirect blob downloads to (S3 for ECR, Cloud Storage for GCR/Artifact Registry, Azure SAS for
# ACR, Cloudflare's `verify` for Docker Hub). A name only counts after `?`, `&`, `;`, a space or the start.
_SECRET_QUERY = re.compile(
    r"(?i)((?:^|(?<=[?&;\s]))(?:password|passwd|token|secret|access_token|refresh_token|signature|sig|verify|"
    r"credential|googleaccessid|awsaccesskeyid|x-amz-[a-z-]+|x-goog-[a-z-]+)=)[^&\s\"']+")


def redact(text: str) -> str:
    """Remove user:password@ from URLs and secret-looking query values."""
    return _SECRET_QUERY.sub(r"\1***", _USERINFO.sub(r"\g<scheme>***@", text))


class RedactingFilter(logging.Filter):
    """Passes every log record through `redact`: httpx logs each request's full URL at INFO (`-v`), and
    the URL of a redirected blob download carries its signature."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


def has_userinfo(address: str) -> bool:
    """Whether `scheme://user:password@host/...` or `user:password@host/...` carries credentials."""
    return "@" in address.split("://", 1)[-1].split("/", 1)[0]


class MirrorError(Exception):
    """Base of every error this tool raises on purpose. `str()` is the one-line message."""

    exit_code = 1

    def __init__(self, what: str, *, where: str = "", hint: str = "") -> None:
        self.what = redact(what)
        self.where = redact(where)
        self.hint = hint
        super().__init__(self.message())

    def message(self) -> str:
        parts = [self.what]
        if self.where:
            parts[0] = f"{self.where}: {self.what}"
        if self.hint:
            parts.append(f"hint: {self.hint}")
        return " — ".join(parts)


class UsageError(MirrorError):
    exit_code = 2


class ContentFileError(MirrorError):
    """The content file is malformed (carries file:line in `where`)."""

    exit_code = 2


class ReferenceError_(MirrorError):  # trailing _ avoids shadowing the builtin
    exit_code = 2


class RegistryError(MirrorError):
    """A registry answered something we cannot use."""


class NotFoundError(RegistryError):
    pass


class AuthError(RegistryError):
    pass


class UnreachableError(RegistryError):
    pass


class TLSError(RegistryError):
    pass


class UnsupportedError(RegistryError):
    """The target cannot hold this content as it is (e.g. zot without docker2s2 compat)."""


class DigestMismatchError(MirrorError):
    pass


class BundleError(MirrorError):
    pass


class SourceDamageError(MirrorError):
    """Blobs whose bytes in a local source (a bundle, a layout) are damaged: their digest did not match
    (found by the target or here) or their frame is broken. `damaged` maps each digest to what was wrong."""

    def __init__(self, what: str, *, damaged: dict[str, str], where: str = "", hint: str = "") -> None:
        self.damaged = damaged
        super().__init__(what, where=where, hint=hint)


class PartError(BundleError):
    """A part is missing, truncated or corrupted."""


class BundleVersionError(BundleError):
    pass


class DependencyError(BundleError):
    """A delta bundle relies on blobs the target does not have."""


class DiskFullError(MirrorError):
    pass
