"""Progress events. The library emits them; only the CLI draws them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Event:
    kind: str          # plan | bytes | blob_done | blob_skip | blob_mount | manifest | artifact_done | error
    digest: str = ""
    n: int = 0         # bytes for 'bytes', counts for 'plan'
    total: int = 0     # total bytes for 'plan'
    label: str = ""


Progress = Callable[[Event], None]


def nothing(_: Event) -> None:
    pass
