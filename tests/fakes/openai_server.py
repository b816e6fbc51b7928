"""A fake OpenAI-compatible chat completions server on 127.0.0.1.

It records every request and can be set to reply, fail with a status
(429 with Retry-After, 500), or stall longer than the client's timeout.
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

    def __post_init__(self) -> None:
        self._runner: web.AppRunner | None = None
        self._ids = itertools.count(1)
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

    async def _completions(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization", "") != "Bearer test-openai-key":
            return web.json_response({"error": {"message": "Incorrect API key", "type": "invalid_request_error"}},
                                     status=401)
        body = await request.json()
        self.requests.append(body)
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
