"""`airgap-mirror mirrors`: runtime mirror configuration from an import receipt (issue 3).

The main CLI calls `add_parser(subparsers)`; `python -m mirror.cli_mirrors ...` runs it on its own.
The password is read from the environment variable named by --password-env, never from the command line,
and is never printed: only the files that carry credentials receive it (written with mode 0600).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from .errors import MirrorError, UsageError
from .mirrorconfig import (
    ALL,
    CONTAINERD_LEGACY_CA,
    DIRECTORY_FORMATS,
    FORMATS,
    K3S_CA,
    MirrorOptions,
    render,
    render_text,
    write_all,
    write_files,
)
from .receipt import Receipt

__all__ = ["add_parser", "main", "options_from_args", "run", "write_all"]

_CA_HINTS = {
    "containerd-config": CONTAINERD_LEGACY_CA,
    "k3s": K3S_CA,
}


def _configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--receipt", required=True, metavar="RECEIPT", help="receipt JSON written by `import`")
    p.add_argument("--format", required=True, choices=[*FORMATS, ALL], metavar="FORMAT",
                   help="one of: " + ", ".join((*FORMATS, ALL)))
    p.add_argument("-o", "--output", metavar="PATH",
                   help="output file; a directory for " + ", ".join(sorted(DIRECTORY_FORMATS))
                   + " (default: stdout)")
    p.add_argument("--strict", action="store_true",
                   help="point only at the mirror: no fallback to the upstream registries")
    p.add_argument("--ca-file", metavar="F", help="CA (PEM) of the target registry (default: from the receipt)")
    p.add_argument("--insecure", action="store_true", default=None,
                   help="skip TLS verification of the target (default: from the receipt)")
    p.add_argument("--username", metavar="U", help="registry user for formats that carry credentials")
    p.add_argument("--password-env", metavar="VAR",
                   help="name of the environment variable holding the registry password")
    p.set_defaults(func=run)


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:  # type: ignore[type-arg]
    p = subparsers.add_parser(
        "mirrors", help="write runtime mirror configuration (containerd, CRI-O, k3s, Palette) from a receipt",
        description="Generate the configuration that makes clusters pull imported content by its original "
                    "names. Only the hosts the import mapped are included, exactly as it mapped them.")
    _configure(p)
    return p


def options_from_args(args: argparse.Namespace, receipt: Receipt) -> MirrorOptions:
    password = None
    if args.password_env:
        if args.password_env not in os.environ:
            raise UsageError(f"environment variable {args.password_env} is not set",
                             hint="export it with the registry password, or drop --password-env")
        password = os.environ[args.password_env]
        if not (args.username or receipt.target.username):
            raise UsageError("--password-env needs a user", hint="add --username")
    return MirrorOptions(strict=args.strict, ca_file=args.ca_file, insecure=args.insecure,
                         username=args.username, password=password)


def run(args: argparse.Namespace) -> int:
    try:
        receipt = Receipt.load(args.receipt)
        opts = options_from_args(args, receipt)
        fmt = args.format
        if fmt == ALL and not args.output:
            raise UsageError("--format all writes a directory", hint="add -o DIR")
        if args.output is None:
            sys.stdout.write(render_text(receipt, fmt, opts))
            return 0
        files = render(receipt, fmt, opts)
        if fmt in DIRECTORY_FORMATS:
            out = Path(args.output)
            if out.exists() and not out.is_dir():
                raise UsageError(f"--format {fmt} writes a directory, and this is a file", where=str(out))
            written = write_files(files, out, password=opts.password)
        else:
            out = Path(args.output)
            (text,) = files.values()
            written = write_files({out.name: text}, out.parent, password=opts.password)
        for p in written:
            print(f"wrote {p}", file=sys.stderr)
        ca = _CA_HINTS.get(fmt)
        if ca and (opts.ca_file or receipt.target.ca_file) and not receipt.target.plain_http:
            print(f"note: copy the CA to {ca} on each node", file=sys.stderr)
        if fmt == "k3s" and opts.strict:
            print("note: start k3s/RKE2 with --disable-default-registry-endpoint for a strict air gap",
                  file=sys.stderr)
        return 0
    except MirrorError as e:
        print(f"airgap-mirror mirrors: error: {e}", file=sys.stderr)
        return e.exit_code


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="airgap-mirror mirrors")
    _configure(p)
    return run(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
