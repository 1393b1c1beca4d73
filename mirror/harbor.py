"""Make target registries ready before a push: Harbor projects and ECR repositories.

Harbor: the first path segment of a repository is a project, and pushing into a missing project fails.
`HEAD /api/v2.0/projects?project_name=X` answers 200/404; `POST /api/v2.0/projects` creates it (201, or
409 when someone else just did). We only try when the target is a Harbor (its `/api/v2.0/systeminfo`
answers) and we have credentials; without permission we say what to do instead of failing early.

ECR: repositories are not created on push, so every target repository (for packs also the parent
`<base>/spectro-packs/archive`) is created with CreateRepository first.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
from collections.abc import Iterable
from typing import Any

import httpx

from .copy import CopyItem
from .errors import RegistryError, UsageError
from .http import Http, basic_header, error_detail

log = logging.getLogger("mirror.harbor")

PROJECT_RE = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$")
_SYSTEMINFO_KEYS = ("harbor_version", "auth_mode", "primary_auth_mode", "registry_url", "with_chartmuseum")


def projects_of(repositories: Iterable[str]) -> list[str]:
    return sorted({r.split("/", 1)[0] for r in repositories if r})


def is_harbor(http: Http, base_url: str) -> bool:
    """True when `base_url` is a Harbor (its system info API answers, anonymously readable)."""
    try:
        resp = http.request("GET", f"{base_url}/api/v2.0/systeminfo", where=base_url, retry=False)
    except RegistryError:
        return False
    if resp.status_code != 200:
        return False
    try:
        doc = resp.json()
    except ValueError:
        return False
    return isinstance(doc, dict) and any(k in doc for k in _SYSTEMINFO_KEYS)


def ensure_project(http: Http, base_url: str, project: str, credentials: tuple[str, str] | None, *,
                   public: bool = False) -> str:
    """Make sure the Harbor project exists. Returns "exists", "created" or "skipped" (not allowed)."""
    if not PROJECT_RE.match(project):
        raise UsageError(f"{project!r} cannot be a Harbor project name", where=base_url,
                         hint="the first path segment of --to must match ^[a-z0-9]+(?:[._-][a-z0-9]+)*$")
    headers = {"Accept": "application/json"}
    if credentials:
        headers["Authorization"] = basic_header(*credentials)
    url = f"{base_url}/api/v2.0/projects"
    resp = http.request("HEAD", url, params={"project_name": project}, headers=headers, where=base_url)
    if resp.status_code == 200:
        log.info("Harbor project %s exists", project)
        return "exists"
    if resp.status_code in (401, 403) and not credentials:
        log.warning("Harbor %s: cannot check project %s anonymously; if it is missing, create it or pass "
                    "--username/--password-stdin", base_url, project)
        return "skipped"
    if resp.status_code not in (404, 401, 403):
        raise RegistryError(f"checking Harbor project {project}: HTTP {resp.status_code} ({error_detail(resp)})",
                            where=base_url)
    if not credentials:
        log.warning("Harbor project %s does not exist and no credentials were given to create it; "
                    "the push will fail: create it in Harbor or pass --username/--password-stdin", project)
        return "skipped"
    body = {"project_name": project, "metadata": {"public": "true" if public else "false"}}
    resp = http.request("POST", url, content=json.dumps(body).encode(),
                        headers={**headers, "Content-Type": "application/json"}, where=base_url)
    if resp.status_code == 201:
        log.warning("created Harbor project %s (private) on %s", project, base_url)
        return "created"
    if resp.status_code == 409:
        return "exists"
    if resp.status_code in (401, 403):
        log.warning("Harbor project %s is missing and these credentials may not create it (HTTP %d); ask a "
                    "Harbor admin to create it, or use an account with project creation rights",
                    project, resp.status_code)
        return "skipped"
    raise RegistryError(f"creating Harbor project {project}: HTTP {resp.status_code} ({error_detail(resp)})",
                        where=base_url, hint="create the project in the Harbor UI and rerun")


def ensure_projects(http: Http, host: str, repositories: Iterable[str]) -> dict[str, str]:
    base_url = http.endpoint(host)
    if not is_harbor(http, base_url):
        return {}
    creds = http.credentials_for_netloc(httpx.URL(base_url).netloc.decode())
    return {p: ensure_project(http, base_url, p, creds) for p in projects_of(repositories)}


def ecr_repositories(items: Iterable[CopyItem]) -> list[str]:
    """Every target repository, plus `<base>/spectro-packs/archive` above each pack repository."""
    repos: set[str] = set()
    for it in items:
        repo = it.target.repository
        repos.add(repo)
        if it.kind == "pack" and "/spectro-packs/archive/" in f"/{repo}":
            repos.add(repo.rsplit("/", 1)[0])
    return sorted(repos)


def prepare_target(http: Http, host: str, items: list[CopyItem]) -> None:
    """Create what the target needs before the push (Harbor projects or ECR repositories)."""
    from . import ecr

    if ecr.is_ecr_host(host):
        settings = http.settings(host)
        creds = ecr.EcrCredentials(ecr.EcrConfig(), ecr.host_region(host) or "us-east-1",
                                   registry_id=ecr.host_account(host))
        if settings.username is None and settings.provider is None:
            settings.provider = creds           # push with an ECR token when no user was given
        ecr.ensure_repositories(creds, ecr_repositories(items))
        return
    ensure_projects(http, host, [it.target.repository for it in items])


def import_prepare_hook(args: argparse.Namespace, http: Http, target: Any, items: list[CopyItem]) -> None:
    """`mirror.cli.IMPORT_PREPARE_HOOKS` entry."""
    prepare_target(http, target.host, items)


__all__ = ["ecr_repositories", "ensure_project", "ensure_projects", "is_harbor", "prepare_target", "projects_of"]
