"""A recording HTTP proxy on 127.0.0.1 in front of stripe-mock.

stripe-mock validates every request and returns fixed objects, but
echoes only some parameters back; the proxy keeps each request the stripe
SDK sent, so tests can assert the exact parameters.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from aiohttp import ClientSession, web

from tests.fakes.serving import serve_locally


@dataclass
class RecordedRequest:
    """One request as the SDK sent it; `params` contains the form fields, e.g. "line_items[0][price]"."""

    method: str
    path: str
    params: dict[str, str]
    authorization: str | None


@dataclass
class StripeRecorder:
    """Forwards every request to `upstream` (stripe-mock) and records it; `fail_status` makes it fail instead."""

    upstream: str
    requests: list[RecordedRequest] = field(default_factory=list)
    fail_status: int | None = None

    def __post_init__(self) -> None:
        self._runner: web.AppRunner | None = None
        self._session: ClientSession | None = None
        self.url = ""

    async def start(self) -> str:
        """Start on a free 127.0.0.1 port; returns the base URL for STRIPE_API_BASE."""
        self._session = ClientSession()
        app = web.Application()
        app.router.add_route("*", "/{path:.*}", self._forward)
        self._runner, self.url = await serve_locally(app)
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    def to(self, method: str, path: str) -> list[RecordedRequest]:
        """Return the recorded requests with this method and path, oldest first."""
        return [r for r in self.requests if r.method == method and r.path == path]

    async def _forward(self, request: web.Request) -> web.Response:
        body = await request.read()
        query = dict(parse_qsl(request.query_string, keep_blank_values=True))
        params = dict(parse_qsl(body.decode(), keep_blank_values=True)) if body else query
        self.requests.append(RecordedRequest(method=request.method, path=request.path, params=params,
                                             authorization=request.headers.get("Authorization")))
        if self.fail_status is not None:
            return web.json_response({"error": {"type": "api_error", "message": "recorder set to fail"}},
                                     status=self.fail_status)
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in {"host", "content-length"}}
        async with self._session.request(request.method, self.upstream + request.path_qs, data=body,
                                         headers=headers) as upstream:
            payload = await upstream.read()
            return web.Response(body=payload, status=upstream.status,
                                content_type=upstream.content_type or "application/json")
