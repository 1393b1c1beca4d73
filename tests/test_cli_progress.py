"""The library emits progress events; only the CLI draws them, and only on a terminal."""

from __future__ import annotations

import io

import pytest

from mirror.cli import Bars
from mirror.progress import Event


def _drive(bars: Bars) -> None:
    bars(Event("plan", n=2, total=2048))
    bars(Event("bytes", "sha256:a", 1024))
    bars(Event("blob_skip", "sha256:b", 512))
    bars(Event("bytes", "sha256:a", 512))
    bars.close()


def test_bars_draw_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    err = io.StringIO()
    monkeypatch.setattr("sys.stderr", err)
    _drive(Bars("export", enabled=True))
    out = err.getvalue()
    assert "export" in out and "/1.50k" in out       # a skipped blob shrinks the total: 2048 - 512


def test_no_bars_when_not_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    err = io.StringIO()
    monkeypatch.setattr("sys.stderr", err)
    _drive(Bars("export"))                            # StringIO is not a tty
    assert err.getvalue() == ""
