"""Blob bytes that go from the bundle's part files to the socket without passing through Python.

Why: pushing a layer from a bundle copied every byte three times on this side (the page cache into a
buffer, the buffer into one bytes object per MiB without the raw frame's block headers, that into the
socket): a third of an import's CPU, on a 2-core machine where the target registry wants the other core.
sendfile(2) hands the kernel the file range instead. No HTTP library for Python sends a request body with
it, and httpx gives no way to put a file range in a body, so the hand-over is made here, by hand, in two
halves that meet on one thread:

- the reader of a blob (mirror.bundle) makes a placeholder of the right length (`chunk`), never filled
  nor read, and records where its bytes lie in the part files; it does so only where the thread's
  consumer said it takes such chunks (`accepting`, around an upload whose bytes go untouched to a plain
  TCP socket of the connection pool; see mirror.registry and mirror.pool);
- the pool's network stream (mirror.pool), asked to write the next chunk of this thread of exactly that
  length, sends the recorded file ranges instead (`take`).

h11 and httpcore pass a body chunk of Content-Length requests through as the same bytes object in the
same thread, so the placeholder is the next write; were that ever not so, `sent()` finds the chunk still
waiting and the upload fails (the registry also refuses it, since its digest would not match): zeros
never land in a registry.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

Span = tuple[int, int, int]               # file descriptor, offset in that file, length

_local = threading.local()


@contextmanager
def accepting(enabled: bool = True) -> Iterator[None]:
    """While inside, readers on this thread may hand over file chunks (when `enabled`)."""
    before = getattr(_local, "accept", False)
    _local.accept = enabled
    try:
        yield
    finally:
        _local.accept = before
        _local.job = None


def offered() -> bool:
    """Whether this thread's consumer takes file chunks now."""
    return bool(getattr(_local, "accept", False))


def chunk(spans: list[Span]) -> bytes:
    """A placeholder for the bytes of `spans`, to be yielded as the next chunk of the body."""
    placeholder = bytes(sum(n for _, _, n in spans))        # calloc'd pages, never touched
    _local.job = (len(placeholder), spans)
    return placeholder


def take(buffer: bytes) -> list[Span] | None:
    """The file ranges to send instead of `buffer`, when it is this thread's waiting placeholder."""
    job = getattr(_local, "job", None)
    if job is None or len(buffer) != job[0]:
        return None
    _local.job = None
    return job[1]


def sent() -> bool:
    """Whether the last placeholder of this thread went out as its file ranges."""
    return getattr(_local, "job", None) is None
