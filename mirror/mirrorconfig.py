"""Runtime mirror configuration rendered from an import receipt (issue 3).

`render(receipt, fmt, opts)` is pure: it returns `{relative path: text}` and touches neither the network nor
a logger, so a password handed in through `MirrorOptions` reaches only the formats that carry credentials.
Every mapping comes from `Receipt.mirror_prefix`: the configs name exactly the paths the import wrote, never
a guessed layout. Facts on each format: ../shared/REFERENCE.md sections 1 and 3.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ._yaml import yaml
from .errors import UsageError
from .receipt import Receipt, palette_mirror_string

FORMATS = (
    "image-swap", "image-swap-maps", "palette-secret", "palette-values", "paletteai-values",
    "containerd-hosts", "containerd-config", "registries-conf", "k3s", "helm", "palette-packs",
)
ALL = "all"
# Formats that render several files: `-o` names a directory for these, a file for the others.
DIRECTORY_FORMATS = frozenset({"containerd-hosts", "palette-values", "helm", ALL})

# Where the CA goes on a node for formats that can only name a path (README in `all` says so too).
CONTAINERD_LEGACY_CA = "/etc/containerd/airgap-mirror-ca.crt"
K3S_CA = "/etc/rancher/k3s/airgap-mirror-ca.crt"
PALETTE_REGISTRY_NAME = "airgap-mirror"
# Upstream registries as containerd names them when the mirror may fall back (non-strict).
_UPSTREAM = {"docker.io": "registry-1.docker.io"}


@dataclass(frozen=True)
class MirrorOptions:
    strict: bool = False                 # no upstream fallback anywhere: a strict air gap
    ca_file: str | None = None           # PEM of the target's CA on this machine; default receipt.target.ca_file
    insecure: bool | None = None         # skip TLS verification; default receipt.target.insecure
    username: str | None = None          # default receipt.target.username
    password: str | None = field(default=None, repr=False)   # never in the receipt, never in repr/logs


@dataclass(frozen=True)
class _Target:
    """Everything the renderers need, resolved once from the receipt and the options."""

    registry: str
    base: str
    plain_http: bool
    skip_verify: bool
    ca_pem: str | None
    username: str | None
    password: str | None = field(repr=False)
    strict: bool
    prefixes: dict[str, str]             # source host -> HOST/BASE/segment, sorted by host

    @property
    def scheme(self) -> str:
        return "http" if self.plain_http else "https"

    @property
    def insecure(self) -> bool:
        """What 'insecure' means to Palette and containers/image: plain HTTP or unverified TLS."""
        return self.plain_http or self.skip_verify

    @property
    def has_auth(self) -> bool:
        return bool(self.username) and self.password is not None

    def path_of(self, host: str) -> str:
        """The repository path prefix under the registry, e.g. `airgap-images/docker.io` ('' at the root)."""
        return self.prefixes[host].partition("/")[2]

    def v2_url(self, host: str) -> str:
        """containerd endpoint with the full API path (used with override_path / legacy CRI endpoints)."""
        path = self.path_of(host)
        return f"{self.scheme}://{self.registry}/v2" + (f"/{path}" if path else "")

def _tls_fields(t: _Target, ca_path: str) -> dict[str, object]:
    """`ca_file` / `insecure_skip_verify` as containerd's legacy config and k3s both spell them."""
    tls: dict[str, object] = {}
    if not t.plain_http:
        if t.ca_pem:
            tls["ca_file"] = ca_path
        if t.skip_verify:
            tls["insecure_skip_verify"] = True
    return tls



def _resolve(receipt: Receipt, opts: MirrorOptions) -> _Target:
    if not receipt.hosts:
        raise UsageError("the receipt maps no source hosts, so there is nothing to mirror",
                         hint="run `airgap-mirror import` first and pass the receipt it wrote")
    ca_file = opts.ca_file or receipt.target.ca_file
    ca_pem = None
    if ca_file:
        try:
            ca_pem = Path(ca_file).read_text()
        except OSError as e:
            raise UsageError(f"cannot read CA file: {e.strerror or e}", where=str(ca_file),
                             hint="pass the PEM file of the CA that signed the target's certificate") from e
        if "BEGIN CERTIFICATE" not in ca_pem:
            raise UsageError("CA file holds no PEM certificate", where=str(ca_file))
    insecure = receipt.target.insecure if opts.insecure is None else opts.insecure
    return _Target(
        registry=receipt.target.registry,
        base=receipt.target.base.strip("/"),
        plain_http=receipt.target.plain_http,
        skip_verify=bool(insecure),
        ca_pem=ca_pem,
        username=opts.username or receipt.target.username,
        password=opts.password,
        strict=opts.strict,
        prefixes={h: receipt.mirror_prefix(h) for h in sorted(receipt.hosts)},
    )


# --- text helpers -------------------------------------------------------------------------------------------

_TOML_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def toml_str(s: str) -> str:
    """A TOML basic string (also valid as a quoted key)."""
    out = []
    for ch in s:
        if ch in _TOML_ESCAPES:
            out.append(_TOML_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _toml_value(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return toml_str(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"no TOML rendering for {type(v).__name__}")


def _toml_table(header: str, values: Mapping[str, object]) -> list[str]:
    return [f"[{header}]", *(f"  {k} = {_toml_value(v)}" for k, v in values.items()), ""]


def _str_presenter(dumper: yaml.SafeDumper, s: str) -> yaml.ScalarNode:
    style = "|" if "\n" in s and not s.startswith((" ", "\n")) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", s, style=style)


@functools.cache
def _dumper() -> type[yaml.SafeDumper]:
    """Multi-line strings (PEM certificates) as literal blocks, so they read like the file they came from.
    Built on first use: subclassing at import time would load PyYAML in every run."""
    class _Dumper(yaml.SafeDumper):
        pass

    _Dumper.add_representer(str, _str_presenter)
    return _Dumper


def _yaml(doc: object, header: str = "") -> str:
    text = yaml.dump(doc, Dumper=_dumper(), sort_keys=False, default_flow_style=False, width=1 << 16)
    return header + text


def _comment(lines: list[str], mark: str = "#") -> str:
    return "".join(f"{mark} {line}".rstrip() + "\n" for line in lines)


def _hostdir(host: str) -> str:
    """containerd looks up `certs.d/<host:port>/hosts.toml` (it also accepts `host_port_`)."""
    return host


def _upstream(host: str) -> str:
    return _UPSTREAM.get(host, host)


# --- renderers ----------------------------------------------------------------------------------------------


def _image_swap(receipt: Receipt, t: _Target) -> dict[str, str]:
    return {"image-swap.txt": palette_mirror_string(receipt) + "\n"}


def _image_swap_maps(receipt: Receipt, t: _Target) -> dict[str, str]:
    lines = _comment([
        "imageswap-webhook MAPS file, generated by airgap-mirror from an import receipt.",
        "Only the source hosts the import mapped are swapped; `default::` (empty) leaves every other image alone.",
        "`docker.io/library` covers short names such as nginx:1.25, which the webhook would otherwise swap",
        "without their library/ path.",
    ])
    lines += "default::\n"
    for host, prefix in t.prefixes.items():
        if "." not in host.partition(":")[0]:
            # The webhook only recognises a first path segment containing '.' as a registry.
            lines += _comment([f"{host}: not mappable, imageswap reads a registry without '.' as a Docker Hub path"])
            continue
        lines += f"{host}::{prefix}\n"
        if host == "docker.io":
            lines += f"docker.io/library::{prefix}/library\n"
    return {"imageswap-maps.conf": lines}


def _palette_secret(receipt: Receipt, t: _Target) -> dict[str, str]:
    doc = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "registry-info", "namespace": "jet-system"},
        "type": "Opaque",
        "stringData": {
            "DOMAIN": t.registry,
            "BASE_PATH": t.base,
            "USERNAME": (t.username or "") if t.has_auth else "",
            "PASSWORD": (t.password or "") if t.has_auth else "",
            "INSECURE": "true" if t.insecure else "false",
            "CA_CERT": t.ca_pem or "",
            "MIRROR_REGISTRIES": palette_mirror_string(receipt),
        },
    }
    header = _comment(["Palette registry-info Secret (kubectl apply -f), generated by airgap-mirror."])
    return {"palette-registry-info-secret.yaml": _yaml(doc, header)}


def _oci_image_registry(receipt: Receipt, t: _Target, *, v2: bool) -> dict[str, object]:
    return {
        "endpoint": t.registry,
        "name": PALETTE_REGISTRY_NAME,
        "password": (t.password or "") if t.has_auth else "",
        "username": (t.username or "") if t.has_auth else "",
        "baseContentPath": t.base,
        "insecureSkipVerify": t.insecure,
        "caCert": t.ca_pem or "",
        "mirrorRegistries": palette_mirror_string(receipt, v2=v2),
    }


def _palette_values(receipt: Receipt, t: _Target) -> dict[str, str]:
    chart = {"config": {"ociImageRegistry": _oci_image_registry(receipt, t, v2=False)}}
    mgmt = {"config": {"ociImageRegistry": _oci_image_registry(receipt, t, v2=True)}}
    return {
        "palette-values.yaml": _yaml(chart, _comment(["image-swap chart values (helm -f), by airgap-mirror."])),
        "palette-mgmt-values.yaml": _yaml(mgmt, _comment([
            "Palette management-plane values: mirrorRegistries in the /v2/ form, by airgap-mirror."])),
    }


def _paletteai_values(receipt: Receipt, t: _Target) -> dict[str, str]:
    reg: dict[str, object] = {
        "endpoint": f"oci://{t.registry}",
        "repository": t.base,
        "insecure": t.insecure,
        "timeout": "60s",
        "provider": "generic",
    }
    if t.has_auth:
        reg["basicAuth"] = {"username": t.username, "password": t.password}
    if t.ca_pem:
        reg["certData"] = {"ca.crt": t.ca_pem}
    header = _comment(["PaletteAI hub/spoke values (helm -f), generated by airgap-mirror."])
    return {"paletteai-values.yaml": _yaml({"ociRegistry": reg}, header)}


def _containerd_hosts(receipt: Receipt, t: _Target) -> dict[str, str]:
    files: dict[str, str] = {}
    for host in t.prefixes:
        d = f"certs.d/{_hostdir(host)}"
        tls: dict[str, object] = {}
        if not t.plain_http:
            if t.ca_pem:
                files[f"{d}/ca.crt"] = t.ca_pem
                tls["ca"] = "ca.crt"          # containerd resolves relative paths against this directory
            if t.skip_verify:
                tls["skip_verify"] = True
        mirror = t.v2_url(host)
        lines = _comment([
            f"containerd hosts.toml for {host}, generated by airgap-mirror.",
            f"Pulls of {host}/... are served from {t.prefixes[host]}/...",
            "Credentials are not a hosts.toml field: give them to the client (ctr --user, CRI auth, k8s secret).",
        ])
        if t.strict:
            lines += _comment(["strict: the server is the mirror too, so nothing falls back to the upstream."])
            lines += f"server = {toml_str(mirror)}\noverride_path = true\n"
            lines += "".join(f"{k} = {_toml_value(v)}\n" for k, v in tls.items())
        else:
            lines += f"server = {toml_str('https://' + _upstream(host))}\n"
        lines += "\n" + "\n".join(_toml_table(
            f"host.{toml_str(mirror)}",
            {"capabilities": ["pull", "resolve"], "override_path": True, **tls},
        ))
        files[f"{d}/hosts.toml"] = lines
    return files


def _containerd_config(receipt: Receipt, t: _Target) -> dict[str, str]:
    cri = 'plugins."io.containerd.grpc.v1.cri".registry'
    notes = [
        "containerd config.toml (version 2) registry snippet, generated by airgap-mirror.",
        "Merge into /etc/containerd/config.toml; never combine with config_path (certs.d hosts.toml).",
    ]
    if t.strict:
        notes += ["strict: containerd's legacy CRI mirrors always add the upstream as a last endpoint;",
                  "for a strict air gap use the containerd-hosts format instead."]
    if t.ca_pem and not t.plain_http:
        notes += [f"Copy the target's CA to {CONTAINERD_LEGACY_CA}."]
    lines = [_comment(notes) + "version = 2", ""]
    for host in t.prefixes:
        lines += _toml_table(f"{cri}.mirrors.{toml_str(host)}", {"endpoint": [t.v2_url(host)]})
    tls = _tls_fields(t, CONTAINERD_LEGACY_CA)
    if tls:
        lines += _toml_table(f"{cri}.configs.{toml_str(t.registry)}.tls", tls)
    if t.has_auth:
        lines += _toml_table(f"{cri}.configs.{toml_str(t.registry)}.auth",
                             {"username": t.username or "", "password": t.password or ""})
    return {"containerd-config.toml": "\n".join(lines)}


def _registries_conf(receipt: Receipt, t: _Target) -> dict[str, str]:
    notes = ["containers-registries.conf v2 (CRI-O, podman, skopeo, buildah), generated by airgap-mirror."]
    if t.ca_pem and not t.plain_http:
        notes += [f"Copy the target's CA to /etc/containers/certs.d/{t.registry}/ca.crt."]
    if t.has_auth:
        notes += ["Credentials do not belong here: use `podman login` or an auth.json (REGISTRY_AUTH_FILE)."]
    if t.strict:
        notes += ["strict: each prefix's location is the mirror itself; nothing falls back to the upstream."]
    lines = [_comment(notes).rstrip("\n")]
    search = ["docker.io"] if "docker.io" in t.prefixes else []
    lines += [f"unqualified-search-registries = {_toml_value(search)}", 'short-name-mode = "permissive"', ""]
    for host, prefix in t.prefixes.items():
        lines += ["[[registry]]", f"prefix = {toml_str(host)}"]
        if t.strict:
            lines += [f"location = {toml_str(prefix)}", f"insecure = {_toml_value(t.insecure)}", ""]
        else:
            lines += [f"location = {toml_str(host)}", "", "[[registry.mirror]]",
                      f"location = {toml_str(prefix)}", f"insecure = {_toml_value(t.insecure)}", ""]
    return {"registries.conf": "\n".join(lines)}


def _k3s(receipt: Receipt, t: _Target) -> dict[str, str]:
    endpoint = f"{t.scheme}://{t.registry}"
    mirrors: dict[str, object] = {}
    for host in t.prefixes:
        path = t.path_of(host)
        mirrors[host] = {"endpoint": [endpoint],
                         "rewrite": {"^(.*)$": f"{path}/$1" if path else "$1"}}
    doc: dict[str, object] = {"mirrors": mirrors}
    config: dict[str, object] = {}
    if t.has_auth:
        config["auth"] = {"username": t.username, "password": t.password}
    tls = _tls_fields(t, K3S_CA)
    if tls:
        config["tls"] = tls
    if config:
        doc["configs"] = {t.registry: config}
    notes = ["k3s / RKE2 registries.yaml (/etc/rancher/k3s/ or /etc/rancher/rke2/), by airgap-mirror."]
    if tls.get("ca_file"):
        notes += [f"Copy the target's CA to {K3S_CA}."]
    if t.strict:
        notes += ["strict: also start k3s/RKE2 with --disable-default-registry-endpoint, otherwise it falls",
                  "back to the upstream registry after the mirror."]
    return {"registries.yaml": _yaml(doc, _comment(notes))}


_RENDERERS = {
    "image-swap": _image_swap,
    "image-swap-maps": _image_swap_maps,
    "palette-secret": _palette_secret,
    "palette-values": _palette_values,
    "paletteai-values": _paletteai_values,
    "containerd-hosts": _containerd_hosts,
    "containerd-config": _containerd_config,
    "registries-conf": _registries_conf,
    "k3s": _k3s,
}

# Where each format lands inside the `all` directory, and where it goes on a node (README).
_ALL_DIRS = {
    "image-swap": "palette",
    "image-swap-maps": "imageswap",
    "palette-secret": "palette",
    "palette-values": "palette",
    "paletteai-values": "paletteai",
    "containerd-hosts": "containerd",
    "containerd-config": "containerd",
    "registries-conf": "containers",
    "k3s": "k3s",
}


def _readme(t: _Target) -> str:
    ca = bool(t.ca_pem) and not t.plain_http
    rows = [
        ("palette/image-swap.txt", "Palette registry `mirrorRegistries` field / image-swap MIRROR_REGISTRIES"),
        ("palette/palette-registry-info-secret.yaml", "`kubectl apply -f` (Secret jet-system/registry-info)"),
        ("palette/palette-values.yaml", "`helm -f` for the image-swap chart (config.ociImageRegistry)"),
        ("palette/palette-mgmt-values.yaml", "Palette management-plane values (/v2/ mirror form)"),
        ("paletteai/paletteai-values.yaml", "`helm -f` for the PaletteAI hub/spoke (ociRegistry)"),
        ("imageswap/imageswap-maps.conf", "imageswap-webhook MAPS file (its maps ConfigMap)"),
        ("containerd/certs.d/", "copy the host directories into /etc/containerd/certs.d/ and set "
         "`config_path = \"/etc/containerd/certs.d\"` in the CRI registry section; restart containerd"),
        ("containerd/containerd-config.toml", "legacy alternative: merge into /etc/containerd/config.toml "
         "(never together with config_path)" + (f"; CA to {CONTAINERD_LEGACY_CA}" if ca else "")),
        ("containers/registries.conf", "/etc/containers/registries.conf (CRI-O, podman, skopeo)"
         + (f"; CA to /etc/containers/certs.d/{t.registry}/ca.crt" if ca else "")),
        ("k3s/registries.yaml", "/etc/rancher/k3s/registries.yaml (RKE2: /etc/rancher/rke2/registries.yaml)"
         + (f"; CA to {K3S_CA}" if ca else "")),
    ]
    if ca:
        rows.append(("ca.crt", "the target's CA certificate (the paths above say where each runtime wants it)"))
    lines = [
        "# Mirror configuration generated by airgap-mirror",
        "",
        f"Target registry `{t.registry}` ({t.scheme}), base path `{t.base or '(none)'}`; "
        f"{'strict: no upstream fallback' if t.strict else 'upstream kept as a fallback (use --strict to drop it)'}.",
        "",
        "Source host -> mirror prefix:",
        "",
        *(f"- `{h}` -> `{p}`" for h, p in t.prefixes.items()),
        "",
        "| file | where it goes on a node |",
        "|---|---|",
        *(f"| `{f}` | {w} |" for f, w in rows),
        "",
    ]
    if t.has_auth:
        lines += ["Files holding the registry password are written with mode 0600: "
                  "palette-registry-info-secret.yaml, palette values, paletteai values, "
                  "containerd-config.toml and registries.yaml.", ""]
    return "\n".join(lines)


def _helm(receipt: Receipt, t: _Target) -> dict[str, str]:
    """Helm charts (issue 4): Palette OCI Helm registry settings + index.yaml, rendered by mirror.charts."""
    from .charts import render_helm

    return render_helm(receipt, ca_pem=t.ca_pem, insecure=t.insecure)


def render(receipt: Receipt, fmt: str, opts: MirrorOptions | None = None) -> dict[str, str]:
    """Render one format (or `all`) as `{relative path: content}`."""
    t = _resolve(receipt, opts or MirrorOptions())
    if fmt == ALL:
        files: dict[str, str] = {"README.md": _readme(t)}
        for name, fn in _RENDERERS.items():
            for path, text in fn(receipt, t).items():
                files[f"{_ALL_DIRS[name]}/{path}"] = text
        if t.ca_pem and not t.plain_http:
            files["ca.crt"] = t.ca_pem
        if any(a.kind == "chart" for a in receipt.artifacts):
            files.update({f"helm/{p}": text for p, text in _helm(receipt, t).items()})
        return files
    if fmt == "helm":
        return _helm(receipt, t)
    if fmt == "palette-packs":              # issue 5: ociPackRegistry values (mirror/packs.py); not in `all`
        from .packs import render_palette_packs

        return render_palette_packs(receipt, t)
    renderer = _RENDERERS.get(fmt)
    if renderer is None:
        raise UsageError(f"unknown mirror format {fmt!r}", hint="choose one of " + ", ".join((*FORMATS, ALL)))
    return renderer(receipt, t)


def render_text(receipt: Receipt, fmt: str, opts: MirrorOptions | None = None) -> str:
    """One text for stdout: the file itself, or each file after a `# ==> path <==` line."""
    files = render(receipt, fmt, opts)
    if len(files) == 1:
        return next(iter(files.values()))
    return "".join(f"# ==> {p} <==\n{text}" + ("" if text.endswith("\n") else "\n") + "\n"
                   for p, text in files.items())


def _secret(text: str, password: str | None) -> bool:
    return bool(password and password in text)


def write_files(files: Mapping[str, str], out_dir: str | os.PathLike[str], *,
                password: str | None = None) -> list[Path]:
    """Write rendered files under out_dir (temp name, then rename); files holding the password get 0600."""
    root = Path(out_dir)
    written = []
    for rel, text in files.items():
        p = root / rel
        if ".." in Path(rel).parts or Path(rel).is_absolute():
            raise UsageError(f"refusing to write outside the output directory: {rel}")
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(p.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if _secret(text, password) else 0o644)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        tmp.replace(p)
        written.append(p)
    return written


def write_all(receipt: Receipt, out_dir: str | os.PathLike[str], opts: MirrorOptions | None = None) -> list[Path]:
    """Every format into out_dir with a README (what `import --mirrors-out DIR` calls)."""
    opts = opts or MirrorOptions()
    return write_files(render(receipt, ALL, opts), out_dir, password=opts.password)
