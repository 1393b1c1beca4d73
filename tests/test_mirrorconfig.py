"""Unit tests for mirror/mirrorconfig.py: every format parses and says exactly what the import did."""

from __future__ import annotations

import fnmatch
import stat
import tomllib
from pathlib import Path

import pytest
import yaml

from mirror import cli_mirrors
from mirror.errors import UsageError
from mirror.mirrorconfig import ALL, FORMATS, MirrorOptions, render, render_text, toml_str, write_all
from mirror.receipt import Receipt, Target

REG = "127.0.0.1:5000"
PEM = "-----BEGIN CERTIFICATE-----\nMIIBdummy\n-----END CERTIFICATE-----\n"
SECRET_KEYS = {"DOMAIN", "BASE_PATH", "USERNAME", "PASSWORD", "INSECURE", "CA_CERT", "MIRROR_REGISTRIES"}


# -- the imageswap webhook's MAPS semantics (phenixblue/imageswap-webhook, REFERENCE.md section 3) -----------
def parse_maps(text: str) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """(exact, replace, maps) as the webhook reads a maps file: '#' comments, spaces dropped, 'key::value'."""
    exact: dict[str, str] = {}
    replace: dict[str, str] = {}
    maps: dict[str, str] = {}
    for raw in text.splitlines():
        if raw.startswith("#"):
            continue
        line = raw.split("#", 1)[0].replace(" ", "").rstrip()
        if not line:
            continue
        parts = line.split("::")
        assert len(parts) == 2, f"the webhook would skip this line: {raw!r}"
        key, val = parts
        if key.startswith("[EXACT]"):
            exact[key[len("[EXACT]"):]] = val
        elif key.startswith("[REPLACE]"):
            replace[key[len("[REPLACE]"):]] = val
        else:
            maps[key] = val
    return exact, replace, maps


def apply_maps(text: str, image: str) -> str | None:
    """The image the webhook would put in the pod spec (None: left unchanged)."""
    exact, replace, maps = parse_maps(text)
    if image in exact:
        return exact[image]
    for pattern, value in replace.items():
        if fnmatch.fnmatch(image, pattern):
            return f"{value.rstrip('/')}/{image.split('/')[-1]}"
    first, slash, rest = image.partition("/")
    # A registry is a first segment holding '.' (so `nginx:1.25` and `bitnami/redis` are Docker Hub).
    registry = first if "." in first and slash and rest else "docker.io"
    if "default" not in maps:
        return None
    key = registry
    if key not in maps and registry.partition(":")[0] in maps:
        key = registry.partition(":")[0]
    if key in maps or f"{key}/library" in maps:
        if not slash and f"{key}/library" in maps:       # a one-segment Docker Hub name
            key = f"{key}/library"
        value = maps[key]
        if not value:
            return None
        if key in image:                                  # the webhook substitutes the key in place
            return image.replace(key, value)
        return f"{value}/{image}"
    if not maps["default"]:
        return None
    return f"{maps['default']}/{image}"


def test_apply_maps_follows_the_webhook_rules() -> None:
    maps = "default::\ndocker.io::m/docker.io\ndocker.io/library::m/docker.io/library\n[EXACT]a.io/x:1::b.io/y:2\n"
    assert apply_maps(maps, "nginx:1.25") == "m/docker.io/library/nginx:1.25"
    assert apply_maps(maps, "bitnami/redis:7") == "m/docker.io/bitnami/redis:7"
    assert apply_maps(maps, "docker.io/library/nginx:1.25") == "m/docker.io/library/nginx:1.25"
    assert apply_maps(maps, "a.io/x:1") == "b.io/y:2"
    assert apply_maps(maps, "ghcr.io/x/y:1") is None
    # without the library line the short name loses library/ (why the generator writes it)
    assert apply_maps("default::\ndocker.io::m/docker.io\n", "nginx:1.25") == "m/docker.io/nginx:1.25"


# -- fixtures ---------------------------------------------------------------------------------------------
def make_receipt(*, plain_http: bool = True, insecure: bool = False, ca_file: str | None = None,
                 username: str | None = None, base: str = "airgap-images") -> Receipt:
    return Receipt(
        target=Target(registry=REG, base=base, plain_http=plain_http, insecure=insecure, ca_file=ca_file,
                      username=username),
        hosts={"docker.io": "docker.io", "quay.io": "quay.io", "registry.k8s.io": "registry.k8s.io",
               "harbor.corp:8443": "harbor.corp_8443"},
    )


@pytest.fixture
def ca_file(tmp_path: Path) -> str:
    p = tmp_path / "ca.pem"
    p.write_text(PEM)
    return str(p)


def only(files: dict[str, str]) -> str:
    assert len(files) == 1, list(files)
    return next(iter(files.values()))


# -- every format parses ------------------------------------------------------------------------------------
@pytest.mark.parametrize("strict", [False, True])
@pytest.mark.parametrize("tls", [False, True])
def test_every_format_parses(strict: bool, tls: bool, ca_file: str) -> None:
    r = make_receipt(plain_http=not tls, ca_file=ca_file if tls else None)
    files = render(r, ALL, MirrorOptions(strict=strict, username="u", password="p"))
    kinds = {".toml": 0, ".conf": 0, ".yaml": 0}
    for path, text in files.items():
        if path.endswith(".toml") or path.endswith("registries.conf"):
            tomllib.loads(text)
            kinds[".toml"] += 1
        elif path.endswith(".yaml"):
            assert isinstance(yaml.safe_load(text), dict)
            kinds[".yaml"] += 1
    assert kinds[".toml"] == 4 + 1 + 1        # hosts.toml per host, legacy config, registries.conf
    assert kinds[".yaml"] == 5                # secret, two palette values, paletteai, k3s
    assert "README.md" in files
    for fmt in FORMATS:
        assert render(r, fmt, MirrorOptions(strict=strict))


def test_unknown_format_and_empty_receipt() -> None:
    with pytest.raises(UsageError, match="unknown mirror format"):
        render(make_receipt(), "docker-daemon")
    empty = Receipt(target=Target(registry=REG))
    with pytest.raises(UsageError, match="no source hosts"):
        render(empty, "k3s")


def test_toml_strings_escape_everything_tomllib_cares_about() -> None:
    s = 'a"b\\c\nd\te\x01f\x7fg ü'
    assert tomllib.loads(f"k = {toml_str(s)}")["k"] == s


# -- Palette --------------------------------------------------------------------------------------------------
def test_palette_secret_exact_keys_and_values(ca_file: str) -> None:
    r = make_receipt(plain_http=False, ca_file=ca_file)
    doc = yaml.safe_load(only(render(r, "palette-secret", MirrorOptions(username="robot", password="s3cr3t"))))
    assert doc["apiVersion"] == "v1" and doc["kind"] == "Secret"
    assert doc["metadata"] == {"name": "registry-info", "namespace": "jet-system"}
    sd = doc["stringData"]
    assert set(sd) == SECRET_KEYS
    assert all(isinstance(v, str) for v in sd.values())
    assert sd["DOMAIN"] == REG
    assert sd["BASE_PATH"] == "airgap-images"
    assert (sd["USERNAME"], sd["PASSWORD"]) == ("robot", "s3cr3t")
    assert sd["INSECURE"] == "false"
    assert sd["CA_CERT"] == PEM
    assert sd["MIRROR_REGISTRIES"] == (
        f"docker.io::{REG}/airgap-images/docker.io,harbor.corp:8443::{REG}/airgap-images/harbor.corp_8443,"
        f"quay.io::{REG}/airgap-images/quay.io,registry.k8s.io::{REG}/airgap-images/registry.k8s.io")


def test_palette_secret_insecure_for_plain_http_and_skip_verify() -> None:
    for r, opts in ((make_receipt(plain_http=True), MirrorOptions()),
                    (make_receipt(plain_http=False), MirrorOptions(insecure=True)),
                    (make_receipt(plain_http=False, insecure=True), MirrorOptions())):
        sd = yaml.safe_load(only(render(r, "palette-secret", opts)))["stringData"]
        assert sd["INSECURE"] == "true"
        assert sd["CA_CERT"] == "" and sd["USERNAME"] == "" and sd["PASSWORD"] == ""


def test_palette_values_and_v2_variant(ca_file: str) -> None:
    r = make_receipt(plain_http=False, ca_file=ca_file)
    files = render(r, "palette-values", MirrorOptions(username="u", password="p"))
    assert set(files) == {"palette-values.yaml", "palette-mgmt-values.yaml"}
    chart = yaml.safe_load(files["palette-values.yaml"])["config"]["ociImageRegistry"]
    mgmt = yaml.safe_load(files["palette-mgmt-values.yaml"])["config"]["ociImageRegistry"]
    keys = {"endpoint", "name", "password", "username", "baseContentPath", "insecureSkipVerify", "caCert",
            "mirrorRegistries"}
    assert set(chart) == keys and set(mgmt) == keys
    assert chart["endpoint"] == REG and chart["baseContentPath"] == "airgap-images"
    assert chart["insecureSkipVerify"] is False and chart["caCert"] == PEM
    assert (chart["username"], chart["password"]) == ("u", "p")
    assert chart["mirrorRegistries"].startswith(f"docker.io::{REG}/airgap-images/docker.io,")
    assert mgmt["mirrorRegistries"].startswith(f"docker.io::{REG}/v2/airgap-images/docker.io,")
    assert f"quay.io::{REG}/v2/airgap-images/quay.io" in mgmt["mirrorRegistries"]


def test_paletteai_values(ca_file: str) -> None:
    r = make_receipt(plain_http=False, ca_file=ca_file)
    reg = yaml.safe_load(only(render(r, "paletteai-values", MirrorOptions(username="u", password="p"))))
    reg = reg["ociRegistry"]
    assert reg["endpoint"] == f"oci://{REG}" and reg["repository"] == "airgap-images"
    assert reg["insecure"] is False and reg["provider"] == "generic" and reg["timeout"] == "60s"
    assert reg["basicAuth"] == {"username": "u", "password": "p"}
    assert reg["certData"] == {"ca.crt": PEM}
    bare = yaml.safe_load(only(render(make_receipt(), "paletteai-values")))["ociRegistry"]
    assert "basicAuth" not in bare and "certData" not in bare and bare["insecure"] is True


def test_image_swap_string_is_the_receipts_mapping() -> None:
    r = make_receipt(base="")
    text = only(render(r, "image-swap")).strip()
    pairs = dict(p.split("::") for p in text.split(","))
    assert pairs == {h: f"{REG}/{seg}" for h, seg in r.hosts.items()}


# -- image-swap maps ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(("image", "expected"), [
    ("nginx:1.25", f"{REG}/airgap-images/docker.io/library/nginx:1.25"),
    ("library/nginx:1.25", f"{REG}/airgap-images/docker.io/library/nginx:1.25"),
    ("docker.io/library/nginx:1.25", f"{REG}/airgap-images/docker.io/library/nginx:1.25"),
    ("bitnami/redis:7", f"{REG}/airgap-images/docker.io/bitnami/redis:7"),
    ("quay.io/coreos/etcd:v3.5.9", f"{REG}/airgap-images/quay.io/coreos/etcd:v3.5.9"),
    ("registry.k8s.io/pause:3.9", f"{REG}/airgap-images/registry.k8s.io/pause:3.9"),
    ("harbor.corp:8443/team/app:1", f"{REG}/airgap-images/harbor.corp_8443/team/app:1"),
    ("ghcr.io/example/tool:v1", None),                 # not imported: left alone
])
def test_image_swap_maps_full_and_short_names(image: str, expected: str | None) -> None:
    text = only(render(make_receipt(), "image-swap-maps"))
    assert "default::\n" in text
    assert apply_maps(text, image) == expected


def test_image_swap_maps_skips_hosts_the_webhook_cannot_see() -> None:
    r = make_receipt()
    r.hosts["localhost:5001"] = "localhost_5001"
    text = only(render(r, "image-swap-maps"))
    _, _, maps = parse_maps(text)
    assert "localhost:5001" not in maps and "localhost:5001: not mappable" in text


# -- containerd ------------------------------------------------------------------------------------------------
def test_containerd_hosts_tree_with_ports_and_ca(ca_file: str) -> None:
    r = make_receipt(plain_http=False, ca_file=ca_file)
    files = render(r, "containerd-hosts")
    assert set(files) == {f"certs.d/{h}/{f}" for h in r.hosts for f in ("hosts.toml", "ca.crt")}
    for host, seg in r.hosts.items():
        doc = tomllib.loads(files[f"certs.d/{host}/hosts.toml"])
        mirror = f"https://{REG}/v2/airgap-images/{seg}"
        assert list(doc["host"]) == [mirror]
        h = doc["host"][mirror]
        assert h == {"capabilities": ["pull", "resolve"], "override_path": True, "ca": "ca.crt"}
        assert files[f"certs.d/{host}/ca.crt"] == PEM
        upstream = "registry-1.docker.io" if host == "docker.io" else host
        assert doc["server"] == f"https://{upstream}"          # non-strict keeps the upstream


def test_containerd_hosts_strict_and_skip_verify() -> None:
    r = make_receipt(plain_http=False, insecure=True)
    files = render(r, "containerd-hosts", MirrorOptions(strict=True))
    assert not any(p.endswith("ca.crt") for p in files)
    doc = tomllib.loads(files["certs.d/quay.io/hosts.toml"])
    mirror = f"https://{REG}/v2/airgap-images/quay.io"
    assert doc["server"] == mirror and doc["override_path"] is True and doc["skip_verify"] is True
    assert doc["host"][mirror]["skip_verify"] is True


def test_containerd_hosts_plain_http() -> None:
    files = render(make_receipt(), "containerd-hosts", MirrorOptions(strict=True))
    doc = tomllib.loads(files["certs.d/docker.io/hosts.toml"])
    assert doc["server"] == f"http://{REG}/v2/airgap-images/docker.io"
    assert "skip_verify" not in doc and "ca" not in doc


def test_containerd_legacy_config(ca_file: str) -> None:
    r = make_receipt(plain_http=False, ca_file=ca_file)
    doc = tomllib.loads(only(render(r, "containerd-config", MirrorOptions(username="u", password="p"))))
    assert doc["version"] == 2
    reg = doc["plugins"]["io.containerd.grpc.v1.cri"]["registry"]
    assert reg["mirrors"]["harbor.corp:8443"]["endpoint"] == [f"https://{REG}/v2/airgap-images/harbor.corp_8443"]
    assert set(reg["mirrors"]) == set(r.hosts)
    assert reg["configs"][REG]["tls"] == {"ca_file": "/etc/containerd/airgap-mirror-ca.crt"}
    assert reg["configs"][REG]["auth"] == {"username": "u", "password": "p"}
    bare = tomllib.loads(only(render(make_receipt(), "containerd-config")))
    assert "configs" not in bare["plugins"]["io.containerd.grpc.v1.cri"]["registry"]


# -- registries.conf -----------------------------------------------------------------------------------------
def test_registries_conf_mirror_and_strict() -> None:
    r = make_receipt()
    doc = tomllib.loads(only(render(r, "registries-conf")))
    assert doc["unqualified-search-registries"] == ["docker.io"]
    assert doc["short-name-mode"] == "permissive"
    by_prefix = {e["prefix"]: e for e in doc["registry"]}
    assert set(by_prefix) == set(r.hosts)
    e = by_prefix["harbor.corp:8443"]
    assert e["location"] == "harbor.corp:8443"
    assert e["mirror"] == [{"location": f"{REG}/airgap-images/harbor.corp_8443", "insecure": True}]
    strict = tomllib.loads(only(render(r, "registries-conf", MirrorOptions(strict=True))))
    for e in strict["registry"]:
        assert e["location"] == f"{REG}/airgap-images/{r.hosts[e['prefix']]}" and "mirror" not in e
        assert e["insecure"] is True


def test_registries_conf_without_docker_hub_has_no_search_registry() -> None:
    r = make_receipt()
    del r.hosts["docker.io"]
    doc = tomllib.loads(only(render(r, "registries-conf")))
    assert doc["unqualified-search-registries"] == []


# -- k3s --------------------------------------------------------------------------------------------------------
def test_k3s_registries_yaml(ca_file: str) -> None:
    r = make_receipt(plain_http=False, ca_file=ca_file)
    doc = yaml.safe_load(only(render(r, "k3s", MirrorOptions(username="u", password="p", insecure=True))))
    assert set(doc["mirrors"]) == set(r.hosts)
    m = doc["mirrors"]["docker.io"]
    assert m == {"endpoint": [f"https://{REG}"], "rewrite": {"^(.*)$": "airgap-images/docker.io/$1"}}
    assert doc["configs"][REG] == {
        "auth": {"username": "u", "password": "p"},
        "tls": {"ca_file": "/etc/rancher/k3s/airgap-mirror-ca.crt", "insecure_skip_verify": True},
    }
    bare = yaml.safe_load(only(render(make_receipt(base=""), "k3s")))
    assert "configs" not in bare
    assert bare["mirrors"]["quay.io"] == {"endpoint": [f"http://{REG}"], "rewrite": {"^(.*)$": "quay.io/$1"}}


# -- credentials -------------------------------------------------------------------------------------------------
def test_no_credentials_when_not_given() -> None:
    # The receipt names a user, but without a password no format carries credentials.
    files = render(make_receipt(username="robot"), ALL, MirrorOptions())
    assert not any("robot" in t for t in files.values())
    k3s = yaml.safe_load(files["k3s/registries.yaml"])
    assert "configs" not in k3s
    legacy = tomllib.loads(files["containerd/containerd-config.toml"])
    assert "configs" not in legacy["plugins"]["io.containerd.grpc.v1.cri"]["registry"]
    assert "basicAuth" not in yaml.safe_load(files["paletteai/paletteai-values.yaml"])["ociRegistry"]
    sd = yaml.safe_load(files["palette/palette-registry-info-secret.yaml"])["stringData"]
    assert sd["USERNAME"] == "" and sd["PASSWORD"] == ""
    for name in ("palette/palette-values.yaml", "palette/palette-mgmt-values.yaml"):
        v = yaml.safe_load(files[name])["config"]["ociImageRegistry"]
        assert v["username"] == "" and v["password"] == ""


def test_credentials_only_in_formats_that_carry_them() -> None:
    files = render(make_receipt(), ALL, MirrorOptions(username="u", password="hunter2-secret"))
    carriers = {p for p, t in files.items() if "hunter2-secret" in t}
    assert carriers == {"palette/palette-registry-info-secret.yaml", "palette/palette-values.yaml",
                        "palette/palette-mgmt-values.yaml", "paletteai/paletteai-values.yaml",
                        "containerd/containerd-config.toml", "k3s/registries.yaml"}


def test_write_all_modes_and_readme(tmp_path: Path) -> None:
    written = write_all(make_receipt(), tmp_path / "out", MirrorOptions(username="u", password="pw-xyz"))
    names = {p.relative_to(tmp_path / "out").as_posix() for p in written}
    assert "README.md" in names and "containerd/certs.d/harbor.corp:8443/hosts.toml" in names
    readme = (tmp_path / "out" / "README.md").read_text()
    for rel in ("k3s/registries.yaml", "containers/registries.conf", "containerd/certs.d/"):
        assert rel in readme
    for p in written:
        mode = stat.S_IMODE(p.stat().st_mode)
        assert mode == (0o600 if "pw-xyz" in p.read_text() else 0o644), p


# -- the CLI -------------------------------------------------------------------------------------------------------
def test_cli_reads_password_from_env_and_never_prints_it(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    rp = tmp_path / "receipt.json"
    make_receipt().save(rp)
    monkeypatch.setenv("MIRROR_PW", "very-secret-pw")
    out = tmp_path / "k3s.yaml"
    rc = cli_mirrors.main(["--receipt", str(rp), "--format", "k3s", "-o", str(out), "--username", "u",
                           "--password-env", "MIRROR_PW", "--strict"])
    cap = capsys.readouterr()
    assert rc == 0
    assert "very-secret-pw" not in cap.out + cap.err
    assert yaml.safe_load(out.read_text())["configs"][REG]["auth"]["password"] == "very-secret-pw"
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert "disable-default-registry-endpoint" in cap.err

    rc = cli_mirrors.main(["--receipt", str(rp), "--format", "image-swap"])
    assert rc == 0 and capsys.readouterr().out.startswith(f"docker.io::{REG}/airgap-images/docker.io,")

    rc = cli_mirrors.main(["--receipt", str(rp), "--format", "all", "-o", str(tmp_path / "all")])
    assert rc == 0 and (tmp_path / "all" / "README.md").is_file()

    rc = cli_mirrors.main(["--receipt", str(rp), "--format", "k3s", "--username", "u", "--password-env", "NOPE"])
    assert rc == 2 and "NOPE is not set" in capsys.readouterr().err

    rc = cli_mirrors.main(["--receipt", str(tmp_path / "missing.json"), "--format", "k3s"])
    assert rc == 2


def test_cli_subparser_registration() -> None:
    import argparse

    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd")
    cli_mirrors.add_parser(sub)
    args = p.parse_args(["mirrors", "--receipt", "r.json", "--format", "all", "-o", "d", "--strict"])
    assert args.func is cli_mirrors.run and args.strict and args.insecure is None


def test_render_text_for_directory_formats() -> None:
    text = render_text(make_receipt(), "containerd-hosts")
    assert "# ==> certs.d/docker.io/hosts.toml <==" in text
