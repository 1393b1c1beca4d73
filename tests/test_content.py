"""Content file validation: versioned, unknown keys rejected with file:line and a hint."""

from __future__ import annotations

from pathlib import Path

import pytest

from mirror.content import load
from mirror.errors import ContentFileError, MirrorError

HEAD = "apiVersion: airgap-mirror/v1\nkind: Content\n"


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "content.yaml"
    p.write_text(text)
    return p


def error(tmp_path: Path, text: str) -> ContentFileError:
    p = write(tmp_path, text)
    with pytest.raises(ContentFileError) as ei:
        load(p)
    e = ei.value
    assert "\n" not in str(e), "messages are one line"
    assert e.exit_code == 2
    return e


def test_full_example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUAY_TOKEN", "s3cret")
    digest = "sha256:" + "b" * 64
    p = write(tmp_path, HEAD + f"""\
platforms: [linux/amd64, linux/arm64]
registries:
  docker.io:
    endpoint: http://127.0.0.1:5001/
  quay.io:
    ca_file: /etc/ssl/quay-ca.pem
    insecure: true
    auth: {{username: robot, password_env: QUAY_TOKEN}}
images:
  - nginx:1.25
  - quay.io/coreos/etcd:v3.5.9
  - ref: registry.k8s.io/pause@{digest}
    platforms: [linux/arm64/v8]
""")
    c = load(p)
    assert c.platforms == ["linux/amd64", "linux/arm64"]
    assert [str(i.ref) for i in c.images] == ["docker.io/library/nginx:1.25", "quay.io/coreos/etcd:v3.5.9",
                                              f"registry.k8s.io/pause@{digest}"]
    assert [i.platforms for i in c.images] == [["linux/amd64", "linux/arm64"], ["linux/amd64", "linux/arm64"],
                                               ["linux/arm64/v8"]]
    assert [i.line for i in c.images] == [12, 13, 14]
    dh = c.registries["docker.io"]
    assert dh.endpoint == "http://127.0.0.1:5001"
    hs = c.host_settings()
    assert hs["docker.io"].plain_http is True            # http:// endpoint implies plain HTTP
    q = hs["quay.io"]
    assert q.insecure and q.ca_file == "/etc/ssl/quay-ca.pem"
    assert q.credentials("quay.io") == ("robot", "s3cret")
    assert "s3cret" not in repr(q)


def test_minimal_no_images_key(tmp_path: Path) -> None:
    c = load(write(tmp_path, HEAD))
    assert c.images == [] and c.platforms == [] and c.registries == {}


def test_unknown_top_key_names_line_and_suggests(tmp_path: Path) -> None:
    e = error(tmp_path, HEAD + "imagse:\n  - nginx\n")
    assert e.where.endswith("content.yaml:3")
    assert "unknown key 'imagse'" in e.what
    assert e.hint == "did you mean 'images'?"
    assert "content.yaml:3: unknown key 'imagse'" in str(e)
    assert "hint: did you mean 'images'?" in str(e)


def test_unknown_key_in_registry(tmp_path: Path) -> None:
    e = error(tmp_path, HEAD + "registries:\n  quay.io:\n    endpiont: http://x\n")
    assert e.where.endswith(":5")
    assert "registries.quay.io" in e.what
    assert "did you mean 'endpoint'" in e.hint


def test_unknown_key_in_image_entry(tmp_path: Path) -> None:
    e = error(tmp_path, HEAD + "images:\n  - ref: nginx\n    platfroms: [linux/amd64]\n")
    assert e.where.endswith(":5") and "did you mean 'platforms'" in e.hint


def test_unknown_key_without_close_match_lists_allowed(tmp_path: Path) -> None:
    e = error(tmp_path, HEAD + "zzzzzz: 1\n")
    assert "allowed keys:" in e.hint and "images" in e.hint


@pytest.mark.parametrize("version", ["airgap-mirror/v2", "v1", "airgap-mirror/v1beta1"])
def test_bad_api_version(tmp_path: Path, version: str) -> None:
    e = error(tmp_path, f"apiVersion: {version}\nkind: Content\n")
    assert e.where.endswith(":1")
    assert f"unsupported apiVersion {version!r}" in e.what
    assert "airgap-mirror/v1" in e.hint


def test_missing_api_version(tmp_path: Path) -> None:
    e = error(tmp_path, "kind: Content\nimages: []\n")
    assert "apiVersion is missing" in e.what and "add apiVersion: airgap-mirror/v1" in e.hint


def test_bad_kind(tmp_path: Path) -> None:
    e = error(tmp_path, "apiVersion: airgap-mirror/v1\nkind: Contents\n")
    assert e.where.endswith(":2") and "kind must be Content" in e.what


def test_password_in_file_refused(tmp_path: Path) -> None:
    p = write(tmp_path, HEAD + "registries:\n  quay.io:\n    auth:\n      username: u\n"
                              "      password: hunter2\n")
    with pytest.raises(MirrorError) as ei:
        load(p)
    e = ei.value
    assert e.where.endswith(":7")
    assert "passwords are not written in content files" in e.what
    assert "password_env" in e.hint
    assert "hunter2" not in str(e)


def test_password_env_unset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOPE_TOKEN", raising=False)
    c = load(write(tmp_path, HEAD + "registries:\n  quay.io:\n    auth: {username: u, password_env: NOPE_TOKEN}\n"))
    with pytest.raises(MirrorError, match="NOPE_TOKEN is not set"):
        c.host_settings()


def test_password_file(tmp_path: Path) -> None:
    pw = tmp_path / "pw"
    pw.write_text("filepw\n")
    c = load(write(tmp_path, HEAD + f"registries:\n  quay.io:\n    auth: {{username: u, password_file: {pw}}}\n"))
    assert c.host_settings()["quay.io"].credentials("quay.io") == ("u", "filepw")


@pytest.mark.parametrize("plat", ["linux", "linux/arm64/v8/extra", "amd64"])
def test_bad_platform(tmp_path: Path, plat: str) -> None:
    e = error(tmp_path, HEAD + f"platforms: [{plat}]\n")
    assert e.where.endswith(":3") and f"invalid platform {plat!r}" in e.what and "os/arch" in e.hint


def test_platforms_must_be_a_list(tmp_path: Path) -> None:
    e = error(tmp_path, HEAD + "platforms: linux/amd64\n")
    assert "platforms must be a list" in e.what


def test_image_platforms_override_top(tmp_path: Path) -> None:
    c = load(write(tmp_path, HEAD + "platforms: [linux/amd64]\nimages:\n  - a:1\n"
                                    "  - {ref: b:1, platforms: [linux/arm64]}\n"))
    assert [i.platforms for i in c.images] == [["linux/amd64"], ["linux/arm64"]]


def test_referrers_default_off_top_level_on_and_per_image_override(tmp_path: Path) -> None:
    c = load(write(tmp_path, HEAD + "images:\n  - a:1\n  - {ref: b:1, referrers: true}\n"))
    assert [i.referrers for i in c.images] == [False, True]
    c = load(write(tmp_path, HEAD + "referrers: true\nimages:\n  - a:1\n  - {ref: b:1, referrers: false}\n"))
    assert [i.referrers for i in c.images] == [True, False]
    e = error(tmp_path, HEAD + "images:\n  - {ref: b:1, referrers: all}\n")
    assert e.where.endswith(":4") and "referrers must be true or false" in e.what
    e = error(tmp_path, HEAD + "images:\n  - {ref: b:1, referers: true}\n")
    assert "did you mean 'referrers'?" in e.hint


def test_bad_image_reference_names_its_line(tmp_path: Path) -> None:
    e = error(tmp_path, HEAD + "images:\n  - nginx:1.25\n  - quay.io/Bad/Name:1\n")
    assert e.where.endswith(":5") and "invalid repository name" in e.what and "lowercase" in e.hint


def test_image_mapping_needs_ref(tmp_path: Path) -> None:
    e = error(tmp_path, HEAD + "images:\n  - platforms: [linux/amd64]\n")
    assert e.where.endswith(":4") and "needs ref:" in e.what


def test_images_must_be_a_list(tmp_path: Path) -> None:
    e = error(tmp_path, HEAD + "images: nginx\n")
    assert "images must be a list" in e.what


def test_endpoint_needs_scheme(tmp_path: Path) -> None:
    e = error(tmp_path, HEAD + "registries:\n  docker.io:\n    endpoint: 127.0.0.1:5000\n")
    assert e.where.endswith(":5") and "needs a scheme" in e.what


def test_endpoint_with_credentials_is_refused_without_echoing_them(tmp_path: Path) -> None:
    e = error(tmp_path, HEAD + "registries:\n  quay.io:\n    endpoint: https://robot:s3cret@10.0.0.5:8443\n")
    assert e.where.endswith(":5") and "carries credentials" in e.what and "auth:" in e.hint
    assert "s3cret" not in f"{e.what} {e.where} {e.hint}"


def test_boolean_validation(tmp_path: Path) -> None:
    e = error(tmp_path, HEAD + "registries:\n  docker.io:\n    insecure: maybe\n")
    assert "insecure must be true or false" in e.what


def test_duplicate_key(tmp_path: Path) -> None:
    e = error(tmp_path, HEAD + "images: []\nimages: []\n")
    assert "duplicate key 'images'" in e.what and e.where.endswith(":4")


def test_invalid_yaml_names_line(tmp_path: Path) -> None:
    e = error(tmp_path, HEAD + "images:\n  - [unclosed\n")
    assert "invalid YAML" in e.what
    assert e.where.rsplit(":", 1)[1].isdigit() and int(e.where.rsplit(":", 1)[1]) >= 4


def test_empty_file(tmp_path: Path) -> None:
    e = error(tmp_path, "")
    assert "content file is empty" in e.what


def test_top_level_not_a_mapping(tmp_path: Path) -> None:
    e = error(tmp_path, "- nginx\n")
    assert "must be a mapping" in e.what


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ContentFileError, match="cannot read content file"):
        load(tmp_path / "nope.yaml")


def test_charts_and_packs_entries(tmp_path: Path) -> None:
    c = load(write(tmp_path, HEAD + "charts:\n  - {repo: https://charts.example.com, name: a, version: 1}\n"
                                    "packs:\n  - {name: p, version: 1.0.0}\n"))
    assert c.charts[0]["name"] == "a" and c.charts[0]["line"] == 4
    assert c.packs[0]["name"] == "p"
    e = error(tmp_path, HEAD + "charts:\n  - {name: a}\n")
    assert "exactly one of repo: or oci:" in e.what


def test_chart_referrers_follow_the_top_level_default_for_oci_charts_only(tmp_path: Path) -> None:
    charts = ("charts:\n  - {oci: oci://ghcr.io/o/app, version: 1.0.0}\n"
              "  - {repo: https://charts.example.com, name: a, version: 1}\n"
              "  - {oci: oci://ghcr.io/o/b, version: 1.0.0, referrers: false}\n")
    c = load(write(tmp_path, HEAD + "referrers: true\n" + charts))
    assert [ch["referrers"] for ch in c.charts] == [True, False, False] and c.asks_referrers()
    c = load(write(tmp_path, HEAD + charts))
    assert [ch["referrers"] for ch in c.charts] == [False, False, False] and not c.asks_referrers()
    c = load(write(tmp_path, HEAD + "charts:\n  - {oci: oci://ghcr.io/o/app, version: 1.0.0, referrers: true}\n"))
    assert c.asks_referrers()
    e = error(tmp_path, HEAD + "charts:\n  - {repo: https://charts.example.com, name: a, version: 1,\n"
                               "     referrers: true}\n")
    assert e.where.endswith(":5") and "classic repository" in e.what and ".prov" in e.hint
    e = error(tmp_path, HEAD + "charts:\n  - {oci: oci://ghcr.io/o/app, version: 1.0.0, referrers: maybe}\n")
    assert "referrers must be true or false" in e.what


EXAMPLES = Path(__file__).resolve().parents[1] / "manifests"


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("*.yaml")))
def test_every_example_content_file_loads(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUAY_TOKEN", "x")           # examples name credentials by environment variable
    c = load(EXAMPLES / name)
    assert c.images or c.charts or c.packs
