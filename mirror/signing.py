"""Bundle signatures with SSH keys, so that the air-gapped side can check who made a bundle, not only that
its parts arrived intact (SHA256SUMS guards against damage, not against a swapped stick).

`export --sign-key KEY` signs bundle.json (which holds every part's and every blob's digest) and SHA256SUMS
with `ssh-keygen -Y sign` in the namespace "airgap-mirror", before either is put in place: a bundle whose
signing failed has no bundle.json, so nothing unsigned looks complete. `verify` and `import` with
`--allowed-signers FILE` (OpenSSH's allowed_signers format) refuse a bundle that is unsigned, signed by a
key not listed for that namespace, or whose signed files changed, before anything else is read.

Why ssh-keygen and no crypto library: OpenSSH (8.1 and later) is on every machine that has ssh, its SSHSIG
format is verifiable by hand (`ssh-keygen -Y verify`, as README shows), it takes the keys people already have
(ed25519, ECDSA, RSA, FIDO keys, ssh-agent), and git signs commits the same way. No new dependency.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from .bundle import BUNDLE_JSON, SIG, SUMS, BundleInfo
from .errors import BundleError, UsageError

NAMESPACE = "airgap-mirror"
SIGNED = (SUMS, BUNDLE_JSON)


def _ssh_keygen() -> str:
    exe = shutil.which("ssh-keygen")
    if exe is None:
        raise UsageError("ssh-keygen is not installed; bundles are signed and checked with it",
                         hint="install OpenSSH's client (Debian: apt-get install openssh-client)")
    return exe


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def check_key(key: str) -> None:
    """Refuse a signing key that cannot work, before an export spends any time."""
    _ssh_keygen()
    if not Path(key).expanduser().is_file():
        raise UsageError(f"signing key {key} is not a file", where="--sign-key",
                         hint="give an SSH private key, or the public key of one held by ssh-agent")


def sign(files: list[Path], key: str) -> list[Path]:
    """Sign each file; returns the signatures (`<file>.sig`, SSHSIG armour)."""
    exe = _ssh_keygen()
    for f in files:
        f.with_name(f.name + SIG).unlink(missing_ok=True)       # ssh-keygen will not overwrite one
    p = subprocess.run([exe, "-q", "-Y", "sign", "-n", NAMESPACE, "-f", str(Path(key).expanduser()),
                        *map(str, files)], capture_output=True, text=True, stdin=subprocess.DEVNULL)
    sigs = [f.with_name(f.name + SIG) for f in files]
    if p.returncode != 0 or not all(s.is_file() for s in sigs):
        for s in sigs:
            s.unlink(missing_ok=True)
        raise UsageError(f"signing with {key} failed: {_last_line(p.stderr)}", where="--sign-key",
                         hint="check the key (a passphrase-protected key needs a terminal or ssh-agent)")
    return sigs


def verify_signed(directory: Path, names: list[str], allowed_signers: str) -> str:
    """Check the signature of each named file of a bundle directory; returns the signer's principal."""
    exe = _ssh_keygen()
    allowed = Path(allowed_signers).expanduser()
    if not allowed.is_file():
        raise UsageError(f"allowed signers file {allowed_signers} is not a file", where="--allowed-signers",
                         hint="one line per signer: <principal> namespaces=\"airgap-mirror\" <public key>")
    principal = ""
    for name in names:
        data, sig = directory / name, directory / (name + SIG)
        if not sig.is_file():
            raise BundleError(f"the bundle is not signed: {sig.name} is missing", where=str(directory),
                              hint="export it with --sign-key, or copy the .sig files too")
        found = subprocess.run([exe, "-Y", "find-principals", "-s", str(sig), "-f", str(allowed)],
                               capture_output=True, text=True, stdin=subprocess.DEVNULL)
        who = [w for w in found.stdout.split() if w]
        if found.returncode != 0 or not who:
            raise BundleError(f"{sig.name} was made by a key that {allowed_signers} does not list",
                              where=str(directory), hint="add the exporter's public key there if you trust it")
        with data.open("rb") as f:
            checked = subprocess.run([exe, "-Y", "verify", "-f", str(allowed), "-I", who[0], "-n", NAMESPACE,
                                      "-s", str(sig)], stdin=f, capture_output=True, text=True)
        if checked.returncode != 0:
            raise BundleError(f"the signature of {name} does not verify ({_last_line(checked.stderr)}): the file "
                              "changed after it was signed, or the key is not allowed the namespace "
                              f"{NAMESPACE}", where=str(directory), hint="copy the bundle again from the export side")
        principal = principal or who[0]
    return principal


def check_bundle(directory: Path, info: BundleInfo, allowed_signers: str) -> str:
    """Both signed files verify, and SHA256SUMS lists exactly the parts bundle.json does (import trusts the
    latter, `sha256sum -c` the former: the two signed views must agree). Returns the signer."""
    who = verify_signed(directory, list(SIGNED), allowed_signers)
    listed = sorted(tuple(line.split()[::-1]) for line in (directory / SUMS).read_text().splitlines() if line.strip())
    if listed != sorted((p.name, p.sha256) for p in info.parts):
        raise BundleError(f"{SUMS} and {BUNDLE_JSON} list different parts, though both are signed",
                          where=str(directory), hint="the export that made them is broken; export again")
    return who


__all__ = ["NAMESPACE", "SIGNED", "check_bundle", "check_key", "sign", "verify_signed"]
