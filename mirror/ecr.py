"""Amazon ECR: registry credentials from the AWS API, region templates, repositories on ECR targets.

ECR has no token service of its own for registry clients: `ecr.get_authorization_token()` returns
base64 `AWS:<password>`, valid 12 hours, used as Basic credentials. `EcrCredentials` plugs into
`HostSettings.provider` so the one HTTP client asks it for credentials when a registry answers 401.

AWS credentials come from, in this order: static keys named by `access_key_env`/`secret_key_env`, a
`profile`, else boto3's default chain (environment, shared config, instance role...). With `role_arn`
those credentials only call STS AssumeRole (with `external_id` when given) and the temporary keys feed ECR.

Palette names its ECR registries with a region template (`<id>.dkr.ecr.{{.spectro.system.aws.region}}
.amazonaws.com`): `regions_for()` gives the chosen region, then the mandatory default region, and the
caller uses the first region whose registry holds the artifact (logging which one served it).

boto3 is the optional extra `ecr` and is imported only when an ECR credential is actually needed.
A concrete per-region host entry in the content file (e.g. `<id>.dkr.ecr.us-east-1.amazonaws.com:
{endpoint: http://127.0.0.1:5001}`) overrides where that region's registry is reached (VPC endpoints,
proxies, tests); the AWS API itself follows boto3's own settings (`AWS_ENDPOINT_URL`, profiles).
"""

from __future__ import annotations

import base64
import logging
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .errors import AuthError, MirrorError, UsageError

log = logging.getLogger("mirror.ecr")

REGION_TEMPLATE = "{{.spectro.system.aws.region}}"
_TEMPLATE_RE = re.compile(r"\{\{\s*\.spectro\.system\.aws\.region\s*\}\}")
ECR_HOST_RE = re.compile(r"^(?P<account>\d{12})\.dkr\.ecr(?:-fips)?\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?"
                         r"(?::\d+)?$")
TOKEN_LIFETIME = 12 * 3600.0          # what ECR documents; used when the answer's expiry is unusable
REFRESH_MARGIN = 15 * 60.0            # refresh this long before a token (or assumed role) expires
SESSION_NAME = "airgap-mirror"


def has_template(text: str) -> bool:
    return bool(_TEMPLATE_RE.search(text))


def expand(text: str, region: str) -> str:
    """Replace the Palette region template in a host or reference."""
    return _TEMPLATE_RE.sub(region, text)


def is_ecr_host(host: str) -> bool:
    return bool(ECR_HOST_RE.match(expand(host, "us-east-1")))


def host_region(host: str) -> str | None:
    m = ECR_HOST_RE.match(host)
    return m.group("region") if m else None


def host_account(host: str) -> str | None:
    m = ECR_HOST_RE.match(expand(host, "us-east-1"))
    return m.group("account") if m else None


def boto3_module() -> Any:
    try:
        import boto3
    except ImportError:
        raise UsageError("Amazon ECR needs boto3, which is not installed",
                         hint="pip install 'airgap-mirror[ecr]' (or pip install boto3)") from None
    return boto3


@dataclass(frozen=True)
class EcrConfig:
    """`registries.<host>.ecr` from the content file (every field optional)."""

    region: str | None = None
    default_region: str | None = None
    role_arn: str | None = None
    external_id: str | None = None
    access_key_env: str | None = None
    secret_key_env: str | None = None
    profile: str | None = None

    @classmethod
    def from_spec(cls, spec: dict[str, Any] | None) -> EcrConfig:
        spec = spec or {}
        return cls(**{k: (str(v) if v is not None else None) for k, v in spec.items()
                      if k in cls.__dataclass_fields__})

    def regions(self, host: str = "") -> list[str]:
        """Regions to try, in order: the chosen one, then the default (fallback) one for templated hosts;
        a concrete ECR host has exactly its own region."""
        env = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        if not has_template(host):
            region = host_region(host) or self.region or self.default_region or env
            if not region:
                raise UsageError(f"no AWS region for {host}", hint="set ecr.region in the content file")
            return [region]
        if not self.default_region:
            raise UsageError(f"the region-templated registry {host} needs ecr.default_region",
                             hint="Palette requires a default region for templated ECR endpoints, e.g. "
                             "ecr: {region: us-west-2, default_region: us-east-1}")
        chosen = self.region or env or self.default_region
        return [chosen] if chosen == self.default_region else [chosen, self.default_region]


def regions_for(host: str, config: EcrConfig) -> list[str]:
    return config.regions(host)


def _expiry(value: Any, now: float, wall: float) -> float:
    """Seconds-on-`now`'s-clock when a token expires. Expiries already past on arrival (clock skew,
    stand-ins) fall back to the documented lifetime."""
    if isinstance(value, datetime):
        left = value.timestamp() - wall
        if left > REFRESH_MARGIN:
            return now + min(left, TOKEN_LIFETIME)
        log.debug("ECR token expiry %s is not in the future; assuming %ds", value, TOKEN_LIFETIME)
    return now + TOKEN_LIFETIME


class EcrCredentials:
    """A `HostSettings.provider`: `(host) -> ("AWS", password)`; cached and refreshed before expiry.

    One instance per (configuration, region). Thread-safe: copy workers may ask at once.
    """

    def __init__(self, config: EcrConfig, region: str, *, registry_id: str | None = None,
                 clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time) -> None:
        self.config = config
        self.region = region
        self.registry_id = registry_id
        self._clock = clock
        self._wall = wall
        self._lock = threading.Lock()
        self._token: tuple[str, str, float] | None = None          # user, password, expires (clock)
        self._role: tuple[dict[str, str], float] | None = None     # assumed keys, expires (clock)
        self.fetches = 0                                           # token requests made (for logs/tests)

    def __repr__(self) -> str:
        return f"EcrCredentials(region={self.region!r})"

    def __call__(self, host: str) -> tuple[str, str]:
        with self._lock:
            now = self._clock()
            if self._token is None or self._token[2] - REFRESH_MARGIN <= now:
                self._token = self._fetch(now)
            return self._token[0], self._token[1]

    # -- AWS calls --------------------------------------------------------------------------------
    def _base_session(self) -> Any:
        boto3 = boto3_module()
        kw: dict[str, Any] = {"region_name": self.region}
        c = self.config
        if c.access_key_env or c.secret_key_env:
            key = os.environ.get(c.access_key_env or "")
            secret = os.environ.get(c.secret_key_env or "")
            if not key or not secret:
                missing = c.access_key_env if not key else c.secret_key_env
                raise UsageError(f"ECR static keys: environment variable {missing} is not set",
                                 hint="export both variables named by access_key_env/secret_key_env")
            kw.update(aws_access_key_id=key, aws_secret_access_key=secret)
        elif c.profile:
            kw["profile_name"] = c.profile
        return boto3.Session(**kw)

    def _session_keys(self, now: float) -> dict[str, str] | None:
        """Temporary keys from STS AssumeRole (cached until shortly before they expire), or None."""
        if not self.config.role_arn:
            return None
        if self._role is not None and self._role[1] - REFRESH_MARGIN > now:
            return self._role[0]
        sts = self._base_session().client("sts")
        kw: dict[str, Any] = {"RoleArn": self.config.role_arn, "RoleSessionName": SESSION_NAME}
        if self.config.external_id:
            kw["ExternalId"] = self.config.external_id
        try:
            creds = sts.assume_role(**kw)["Credentials"]
        except Exception as e:
            raise AuthError(f"STS AssumeRole {self.config.role_arn} failed: {_aws_error(e)}", where="AWS STS",
                            hint="check the role's trust policy, the external ID and the calling "
                            "credentials") from None
        keys = {"aws_access_key_id": creds["AccessKeyId"], "aws_secret_access_key": creds["SecretAccessKey"],
                "aws_session_token": creds["SessionToken"]}
        self._role = (keys, _expiry(creds.get("Expiration"), now, self._wall()))
        log.info("assumed role %s for ECR in %s", self.config.role_arn, self.region)
        return keys

    def ecr_client(self) -> Any:
        now = self._clock()
        keys = self._session_keys(now)
        if keys:
            return boto3_module().Session(region_name=self.region, **keys).client("ecr")
        return self._base_session().client("ecr")

    def _fetch(self, now: float) -> tuple[str, str, float]:
        client = self.ecr_client()
        kw = {"registryIds": [self.registry_id]} if self.registry_id else {}
        try:
            data = client.get_authorization_token(**kw)["authorizationData"][0]
        except MirrorError:
            raise
        except Exception as e:
            raise AuthError(f"ECR GetAuthorizationToken in {self.region} failed: {_aws_error(e)}",
                            where=f"AWS ECR {self.region}",
                            hint="give AWS credentials (environment, profile, ecr.access_key_env/secret_key_env "
                            "or ecr.role_arn) allowed ecr:GetAuthorizationToken") from None
        user, _, password = base64.b64decode(data["authorizationToken"]).decode().partition(":")
        self.fetches += 1
        expires = _expiry(data.get("expiresAt"), now, self._wall())
        log.info("ECR token for %s obtained (valid for %.0f min)", self.region, (expires - now) / 60)
        return user, password, expires


def _aws_error(e: Exception) -> str:
    resp = getattr(e, "response", None)
    if isinstance(resp, dict) and resp.get("Error"):
        err = resp["Error"]
        return f"{err.get('Code', '')}: {err.get('Message', '')}".strip(": ")
    return type(e).__name__


def ensure_repositories(creds: EcrCredentials, repositories: list[str]) -> list[str]:
    """CreateRepository for each name (ECR does not create repositories on push). Returns those created."""
    client = creds.ecr_client()
    created = []
    for name in sorted(set(repositories)):
        kw: dict[str, Any] = {"repositoryName": name}
        if creds.registry_id:
            kw["registryId"] = creds.registry_id
        try:
            client.create_repository(**kw)
            created.append(name)
            log.info("created ECR repository %s in %s", name, creds.region)
        except Exception as e:
            code = (getattr(e, "response", None) or {}).get("Error", {}).get("Code")
            if code == "RepositoryAlreadyExistsException":
                continue
            raise AuthError(f"ECR CreateRepository {name} failed: {_aws_error(e)}", where=f"AWS ECR {creds.region}",
                            hint="the credentials need ecr:CreateRepository, or create the repository first") from None
    return created


__all__ = ["REGION_TEMPLATE", "EcrConfig", "EcrCredentials", "ensure_repositories", "expand", "has_template",
           "host_region", "is_ecr_host", "regions_for"]
