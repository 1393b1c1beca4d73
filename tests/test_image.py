"""The Containerfile, built and used: scripts/image makes a Python base image without any container
registry (debootstrap), builds the tool's image on it with podman, and runs export, verify and import with
that image (as its non-root user) between two loopback registries; skopeo checks the mirrored digest.
The README's demo runs too. Both scripts must stop the registries they start."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from mirror import __version__

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.e2e
def test_containerfile_builds_an_image_that_does_the_main_job() -> None:
    if not shutil.which("podman"):
        pytest.skip("podman is not installed")
    before = _script_registries("airgap-image.")
    p = subprocess.run([str(REPO / "scripts" / "image")], capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    lines = p.stdout.splitlines()
    assert lines[-1] == "image ok"
    assert f"airgap-mirror {__version__}" in lines
    assert any(line.startswith("import /work/bundle: 6 artifacts ok, 0 failed") for line in lines)
    assert _script_registries("airgap-image.") <= before, "the script left its registries running"


@pytest.mark.e2e
def test_demo_does_the_main_job_and_stops_its_registries() -> None:
    before = _script_registries("airgap-demo.")
    p = subprocess.run([str(REPO / "scripts" / "demo")], capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert p.stdout.splitlines()[-1] == "demo ok"
    assert _script_registries("airgap-demo.") <= before, "the demo left its registries running"


def _script_registries(prefix: str) -> set[int]:
    """PIDs of registries serving from a script's scratch directory (/tmp/<prefix>XXXXXX)."""
    found = set()
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue                    # not a process, or it just ended
        if b"serve" in argv and any(a.startswith(f"/tmp/{prefix}".encode()) for a in argv):
            found.add(int(proc.name))
    return found
