"""Amazon ECR: moto plays the AWS API (in process); a local docker-registry with htpasswd plays the ECR
registry and accepts `AWS:<password from moto's GetAuthorizationToken>`. Nothing reaches AWS."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mirror import ecr
from mirror.cli import main
from mirror.copy import CopyItem
from mirror.errors import UsageError
from mirror.reference import parse
from tests.test_packs import NAME, VERSION, oras_push_pack

ACCOUNT = "123456789012"
TEMPLATED = f"{ACCOUNT}.dkr.ecr.{{{{.spectro.system.aws.region}}}}.amazonaws.com"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/mirror"


@pytest.fixture(autouse=True)
def fake_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Fake AWS settings only: no real credentials, config or endpoint can be picked up."""
    for k in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_REGION"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture
def aws() -> Iterator[None]:
    from moto import mock_aws

    with mock_aws():
        yield


# -- pure helpers -------------------------------------------------------------------------------------------

def test_region_template_and_hosts() -> None:
    assert ecr.expand(TEMPLATED, "eu-west-1") == f"{ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com"
    assert ecr.is_ecr_host(TEMPLATED) and ecr.is_ecr_host(f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com")
    assert not ecr.is_ecr_host("harbor.corp:8443")
    assert ecr.host_region(f"{ACCOUNT}.dkr.ecr.ap-south-1.amazonaws.com") == "ap-south-1"
    cfg = ecr.EcrConfig(region="us-west-2", default_region="us-east-1")
    assert cfg.regions(TEMPLATED) == ["us-west-2", "us-east-1"]
    assert ecr.EcrConfig(region="us-east-1", default_region="us-east-1").regions(TEMPLATED) == ["us-east-1"]
    assert cfg.regions(f"{ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com") == ["eu-west-1"]
    with pytest.raises(UsageError, match="default_region"):
        ecr.EcrConfig(region="us-west-2").regions(TEMPLATED)


def test_missing_boto3_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "boto3", None)
    with pytest.raises(UsageError, match=r"airgap-mirror\[ecr\]"):
        ecr.EcrCredentials(ecr.EcrConfig(), "us-east-1")("h")


# -- credentials against moto -------------------------------------------------------------------------------

def test_token_is_cached_and_refreshed_before_expiry(aws: None) -> None:
    now = [1000.0]
    creds = ecr.EcrCredentials(ecr.EcrConfig(), "us-east-1", clock=lambda: now[0])
    user, password = creds("h")
    assert user == "AWS" and password
    assert creds("h") == (user, password) and creds.fetches == 1
    now[0] += ecr.TOKEN_LIFETIME - ecr.REFRESH_MARGIN - 60       # still comfortably valid
    creds("h")
    assert creds.fetches == 1
    now[0] += 120                                                # inside the refresh margin
    creds("h")
    assert creds.fetches == 2


def test_assume_role_with_external_id(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3

    calls: list[dict[str, Any]] = []
    real = boto3.Session.client

    def spy(self: Any, name: str, *a: Any, **kw: Any) -> Any:
        client = real(self, name, *a, **kw)
        if name == "sts":
            client.meta.events.register("provide-client-params.sts.AssumeRole",
                                        lambda params, **_: calls.append(dict(params)))
        return client

    monkeypatch.setattr(boto3.Session, "client", spy)
    creds = ecr.EcrCredentials(ecr.EcrConfig(role_arn=ROLE, external_id="ext-42"), "us-east-1")
    assert creds("h")[0] == "AWS"
    assert calls == [{"RoleArn": ROLE, "RoleSessionName": "airgap-mirror", "ExternalId": "ext-42"}]
    keys = creds._role[0] if creds._role else {}
    assert keys["aws_access_key_id"] != "testing"                 # the ECR call used the role's keys


def test_static_keys_from_named_env_vars(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_AK", "AKIAFAKESTATIC000001")
    monkeypatch.setenv("MY_SK", "fake-secret")
    creds = ecr.EcrCredentials(ecr.EcrConfig(access_key_env="MY_AK", secret_key_env="MY_SK"), "us-east-1")
    client = creds.ecr_client()
    assert client._request_signer._credentials.access_key == "AKIAFAKESTATIC000001"
    assert creds("h")[0] == "AWS"
    monkeypatch.delenv("MY_SK")
    with pytest.raises(UsageError, match="MY_SK"):
        ecr.EcrCredentials(ecr.EcrConfig(access_key_env="MY_AK", secret_key_env="MY_SK"), "us-east-1")("h")


def test_create_repositories_for_packs_on_an_ecr_target(aws: None) -> None:
    from mirror.harbor import prepare_target
    from mirror.http import Http

    host = f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com"
    items = [CopyItem(parse(f"src.example.com/p/spectro-packs/archive/{NAME}:{VERSION}"),
                      parse(f"{host}/base/spectro-packs/archive/{NAME}:{VERSION}"), kind="pack"),
             CopyItem(parse("docker.io/library/nginx:1.25"), parse(f"{host}/base/docker.io/library/nginx:1.25"))]
    http = Http(use_docker_config=False)
    prepare_target(http, host, items)
    prepare_target(http, host, items)                       # second time: they exist, no error
    import boto3

    names = sorted(r["repositoryName"] for r in
                   boto3.client("ecr", region_name="us-east-1").describe_repositories()["repositories"])
    assert names == ["base/docker.io/library/nginx", "base/spectro-packs/archive",
                     f"base/spectro-packs/archive/{NAME}"]
    assert http.settings(host).provider is not None         # the push will use an ECR token
    http.close()


# -- end to end: region fallback through a real registry behind htpasswd ------------------------------------

@pytest.mark.e2e
def test_templated_ecr_source_falls_back_to_default_region(
        registry_factory: Any, target_registry: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    from moto import mock_aws

    with mock_aws():
        _, password = ecr.EcrCredentials(ecr.EcrConfig(role_arn=ROLE, external_id="ext-42"), "us-east-1")("h")
    west = registry_factory("distribution", auth=True, username="AWS", password=password)   # lacks the pack
    east = registry_factory("distribution", auth=True, username="AWS", password=password)
    try:
        assert httpx.get(f"{east.url}/v2/", trust_env=False).status_code == 401   # really needs the token
        digest = oras_push_pack(tmp_path, monkeypatch, east.host, "production", auth=("AWS", password))
        content = tmp_path / "content.yaml"
        content.write_text(f"""\
apiVersion: airgap-mirror/v1
kind: Content
registries:
  "{TEMPLATED}":
    ecr: {{region: us-west-2, default_region: us-east-1, role_arn: "{ROLE}", external_id: ext-42}}
  "{ACCOUNT}.dkr.ecr.us-west-2.amazonaws.com": {{endpoint: "{west.url}"}}
  "{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com": {{endpoint: "{east.url}"}}
packs:
  - registry: "{TEMPLATED}/production"
    name: {NAME}
    version: {VERSION}
    images: false
""")
        bundle = tmp_path / "bundle"
        caplog.set_level(logging.INFO, logger="mirror")
        with mock_aws():
            assert main(["export", "-f", str(content), "-o", str(bundle)]) == 0
        (art,) = json.loads((bundle / "bundle.json").read_text())["artifacts"]
        assert art["ref"] == f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/production/spectro-packs/archive/" \
                             f"{NAME}:{VERSION}"
        assert art["digest"] == digest and art["meta"]["region"] == "us-east-1"
        assert "not in region us-west-2" in caplog.text
        assert "served by ECR region us-east-1" in caplog.text

        assert main(["import", str(bundle), "--to", f"{target_registry.host}/airgap", "--plain-http"]) == 0
        r = httpx.head(f"{target_registry.url}/v2/airgap/spectro-packs/archive/{NAME}/manifests/{VERSION}",
                       headers={"Accept": "application/vnd.oci.image.manifest.v1+json"}, trust_env=False)
        assert r.headers["docker-content-digest"] == digest
    finally:
        west.stop()
        east.stop()


@pytest.mark.e2e
def test_ecr_source_without_aws_credentials_fails_clearly(registry_factory: Any, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a working token the registry refuses: the ECR provider is what makes the e2e test pass."""
    reg = registry_factory("distribution", auth=True, username="AWS", password=f"{ACCOUNT}-auth-token")
    try:
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "")
        monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
        content = tmp_path / "content.yaml"
        content.write_text(f"""\
apiVersion: airgap-mirror/v1
kind: Content
registries:
  "{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com": {{endpoint: "{reg.url}", ecr: {{region: us-east-1}}}}
packs:
  - registry: "{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/production"
    name: {NAME}
    version: {VERSION}
""")
        monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")      # nothing listens: never AWS
        monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
        assert main(["export", "-f", str(content), "-o", str(tmp_path / "b")]) != 0
    finally:
        reg.stop()
