"""A fake transport for the few cases no loopback registry produces (token challenges, 429s, dropped
connections, a registry with the referrers API): every request is recorded and a handler answers it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from mirror.http import HostSettings, Http

HOST = "reg.test"
BASE = f"https://{HOST}"


class Fake:
    """Records every request; `handler(request) -> Response` decides the answer."""

    def __init__(self, handler: Callable[[httpx.Request], httpx.Response]) -> None:
        self.handler = handler
        self.requests: list[httpx.Request] = []
        self.sleeps: list[float] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        # a snapshot: the auth flow re-sends the same Request object with headers added
        self.requests.append(httpx.Request(request.method, request.url, headers=request.headers.copy()))
        return self.handler(request)

    def http(self, **settings: Any) -> Http:
        return Http({HOST: HostSettings(**settings)}, transport=httpx.MockTransport(self),
                    sleep=self.sleeps.append, use_docker_config=False)

    def to(self, host: str) -> list[httpx.Request]:
        return [r for r in self.requests if r.url.host == host]
