"""Credentials from the user's machine (docker's config.json, containers' auth.json, credential helpers):
found under every key docker and podman write, in their order, and a damaged file or helper is one error
line that never echoes a secret."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest

from mirror.errors import AuthError, UsageError
from mirror.http import docker_config_credentials


@pytest.fixture()
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty machine: DOCKER_CONFIG in tmp_path, no auth file, no runtime dir, helpers from tmp_path/bin."""
    (tmp_path / "docker").mkdir()
    (tmp_path / "bin").mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    monkeypatch.delenv("REGISTRY_AUTH_FILE", raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    return tmp_path


def config(home: Path, doc: object, name: str = "docker/config.json") -> Path:
    p = home / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(doc) if not isinstance(doc, str) else doc)
    return p


def helper(home: Path, name: str, script: str) -> None:
    p = home / "bin" / f"docker-credential-{name}"
    p.write_text(f"#!/bin/sh\n{script}\n")
    p.chmod(p.stat().st_mode | stat.S_IEXEC)


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_auths_in_every_form_docker_and_podman_write(home: Path) -> None:
    config(home, {"auths": {"quay.io": {"auth": b64("robot:s3cret")},
                            "https://index.docker.io/v1/": {"auth": b64("hubuser:hubpw")},
                            "ghcr.io": {"username": "u", "password": "p"},
                            "https://gcr.io": {"identitytoken": "tok"}}})
    assert docker_config_credentials("quay.io") == ("robot", "s3cret")
    assert docker_config_credentials("docker.io") == ("hubuser", "hubpw")       # Docker Hub's legacy key
    assert docker_config_credentials("ghcr.io") == ("u", "p")
    assert docker_config_credentials("gcr.io") == ("<token>", "tok")
    assert docker_config_credentials("registry.k8s.io") is None


def test_registry_auth_file_comes_before_docker_config(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config(home, {"auths": {"quay.io": {"auth": b64("docker:1")}}})
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(config(home, {"auths": {"quay.io": {"auth": b64("podman:2")}}},
                                                        "auth.json")))
    assert docker_config_credentials("quay.io") == ("podman", "2")


def test_credential_helpers_per_registry_and_as_store(home: Path) -> None:
    helper(home, "corp", 'read s; echo "{\\"Username\\": \\"from-$s\\", \\"Secret\\": \\"x\\"}"')
    helper(home, "store", 'read s; [ "$s" = harbor.corp ] && echo \'{"Username": "st", "Secret": "y"}\' || exit 1')
    config(home, {"credHelpers": {"quay.io": "corp"}, "credsStore": "store"})
    assert docker_config_credentials("quay.io") == ("from-quay.io", "x")
    assert docker_config_credentials("harbor.corp") == ("st", "y")
    assert docker_config_credentials("ghcr.io") is None        # the store knows nothing of it


def test_missing_helper_is_anonymous_with_a_warning(home: Path, caplog: pytest.LogCaptureFixture) -> None:
    config(home, {"credHelpers": {"quay.io": "absent"}})
    assert docker_config_credentials("quay.io") is None
    assert "docker-credential-absent not found" in caplog.text


def test_helper_that_prints_garbage_is_one_error_without_its_output(home: Path) -> None:
    helper(home, "broken", "echo 'password=hunter2'")
    config(home, {"credHelpers": {"quay.io": "broken"}})
    with pytest.raises(AuthError) as e:
        docker_config_credentials("quay.io")
    assert "not its JSON credentials" in e.value.what and "hunter2" not in str(e.value) + e.value.hint


@pytest.mark.parametrize("text, found", [
    ("{not json", "not valid JSON"),
    ('{"auths": ["quay.io"]}', "auths is not an object"),
    ('{"auths": {"quay.io": "cm9ib3Q6eA=="}}', "auths.quay.io is not an object"),
    ('{"credHelpers": {"quay.io": 5}}', "credHelpers.quay.io is not a string"),
])
def test_damaged_file_is_one_error_naming_it(home: Path, text: str, found: str) -> None:
    path = config(home, text)
    with pytest.raises(UsageError) as e:
        docker_config_credentials("quay.io")
    assert found in e.value.what and e.value.where == str(path) and "DOCKER_CONFIG" in e.value.hint


def test_auth_that_is_not_base64_user_password_is_named_not_echoed(home: Path) -> None:
    for bad in ("!!not-base64!!", b64("no-colon-in-here")):
        config(home, {"auths": {"quay.io": {"auth": bad}}})
        with pytest.raises(UsageError) as e:
            docker_config_credentials("quay.io")
        assert "auths.quay.io.auth is not base64 of user:password" in e.value.what
        assert bad not in str(e.value) and "docker login" in e.value.hint
