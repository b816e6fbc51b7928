"""A fake OpenAI-compatible chat completions server on 127.0.0.1.

It records every request and can be set to reply, fail with a status
(429 with Retry-After, 500), or stall longer than the client's timeout. Like
OpenAI it can hold a rate limit: requests and tokens per window (a minute by
default), counting each request's prompt tokens plus its whole
max_completion_tokens, and answering 429 with Retry-After past either.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

DEFAULT_ANSWER = (
    "**Trend**\nBTC is in an uptrend on the daily chart, making higher highs.\n\n"
    "**Key levels**\nSupport near 41,000 & resistance at 45,000 (<i> tags stay literal).\n\n"
    "**Scenarios**\nA close above 45,000 confirms the breakout; a loss of 41,000 invalidates it."
)


@dataclass
class Failure:
    """One scripted failure: an HTTP status, or a stall of `stall_seconds`."""

    status: int = 500
    retry_after: float | None = None
    stall_seconds: float = 0.0


@dataclass
class FakeOpenAIServer:
    """Chat completions that return `answer`, after working through scripted failures."""

    answer: str = DEFAULT_ANSWER
    prompt_tokens: int = 1234
    completion_tokens: int = 321
    requests: list[dict[str, Any]] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    fail_always: Failure | None = None
    latency_seconds: float = 0.0
    requests_per_window: int | None = None
    tokens_per_window: int | None = None
    window_seconds: float = 60.0
    # Monotonic arrival times of the requests served, and of the ones rejected with 429 for the limit.
    answered_at: list[float] = field(default_factory=list)
    rate_limited_at: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._runner: web.AppRunner | None = None
        self._ids = itertools.count(1)
        self._window: list[tuple[float, int]] = []
        self.url = ""

    async def start(self) -> str:
        """Start serving; returns the base URL for OPENAI_BASE_URL (ending in /v1)."""
        app = web.Application(client_max_size=128 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self._completions)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/v1"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def _over_limit(self, body: dict[str, Any]) -> web.Response | None:
        if self.requests_per_window is None and self.tokens_per_window is None:
            return None
        now = time.monotonic()
        self._window = [(at, tokens) for at, tokens in self._window if at > now - self.window_seconds]
        tokens = self.prompt_tokens + int(body.get("max_completion_tokens") or 0)
        too_many = self.requests_per_window is not None and len(self._window) >= self.requests_per_window
        too_big = (self.tokens_per_window is not None
                   and sum(t for _, t in self._window) + tokens > self.tokens_per_window)
        if too_many or too_big:
            self.rate_limited_at.append(now)
            retry_after = max(0.1, self._window[0][0] + self.window_seconds - now) if self._window else 1.0
            return web.json_response(
                {"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}},
                status=429, headers={"Retry-After": f"{retry_after:.2f}"},
            )
        self._window.append((now, tokens))
        self.answered_at.append(now)
        return None

    async def _completions(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization", "") != "Bearer test-openai-key":
            return web.json_response({"error": {"message": "Incorrect API key", "type": "invalid_request_error"}},
                                     status=401)
        body = await request.json()
        self.requests.append(body)
        if (refusal := self._over_limit(body)) is not None:
            return refusal
        failure = self.failures.pop(0) if self.failures else self.fail_always
        if failure is not None:
            if failure.stall_seconds:
                await asyncio.sleep(failure.stall_seconds)
            else:
                headers = {}
                if failure.retry_after is not None:
                    headers["Retry-After"] = str(failure.retry_after)
                return web.json_response(
                    {"error": {"message": f"scripted failure {failure.status}", "type": "server_error"}},
                    status=failure.status, headers=headers,
                )
        if self.latency_seconds:
            await asyncio.sleep(self.latency_seconds)
        return web.json_response({
            "id": f"chatcmpl-{next(self._ids)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "gpt-4o"),
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": self.answer, "refusal": None}}],
            "usage": {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                      "total_tokens": self.prompt_tokens + self.completion_tokens},
        })
