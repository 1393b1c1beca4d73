"""Running the real clients (helm, ctr, skopeo, podman) from tests."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest


def need(*tools: str) -> None:
    """Skip the test when a client is not installed (scripts/install-deps installs them all)."""
    for t in tools:
        if not shutil.which(t):
            pytest.skip(f"{t} is not installed (run ./scripts/install-deps)")


def attempt(cmd: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None,
            timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run a client whose failure the test looks at itself."""
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout)


def run(cmd: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 300) -> str:
    """Run a client; fail the test with its whole output when it exits non-zero."""
    p = attempt(cmd, env=env, cwd=cwd, timeout=timeout)
    if p.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {p.returncode}:\n{p.stdout}\n{p.stderr}")
    return p.stdout
