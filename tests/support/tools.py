"""Running the real clients (helm, ctr, skopeo, podman) from tests."""

from __future__ import annotations

import shutil
import subprocess

import pytest


def need(*tools: str) -> None:
    """Skip the test when a client is not installed (scripts/install-deps installs them all)."""
    for t in tools:
        if not shutil.which(t):
            pytest.skip(f"{t} is not installed (run ./scripts/install-deps)")


def run(cmd: list[str], *, env: dict[str, str] | None = None, timeout: float = 300) -> str:
    """Run a client; fail the test with its whole output when it exits non-zero."""
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    if p.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {p.returncode}:\n{p.stdout}\n{p.stderr}")
    return p.stdout
