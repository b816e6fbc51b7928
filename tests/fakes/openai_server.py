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
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.serving import serve_locally

def chart_report(number: int) -> dict[str, Any]:
    """The default reading of chart `number` (1-based): BTCUSDT daily in an uptrend."""
    return {
        "chart": number, "readable": True, "symbol": "BTCUSDT", "timeframe": "1D", "trend": "up",
        "trend_strength": "strong", "support": [41000, 39500], "resistance": [45000, 46200],
        "patterns": ["ascending triangle"], "indicators": ["RSI 64 & rising <above 50>"],
    }


def default_report(charts: int) -> dict[str, Any]:
    """Return a valid structured response (core.analysis_result.ModelReport) covering `charts` charts."""
    return {
        "readable_chart": True, "bias": "bullish", "confidence": "medium",
        "charts": [chart_report(number) for number in range(1, charts + 1)],
        "confluence": None if charts == 1 else "Every timeframe trends up; the 4h pullback holds the daily support.",
        "trade_idea": {"direction": "long", "entry_low": 41200, "entry_high": 41800, "stop": 40400,
                       "targets": [45000, 46200], "invalidation": "a daily close below 40,400"},
        "summary": "BTC is in an uptrend on the daily chart, making higher highs; <i> tags stay literal & escaped.",
        "reader_measurements": "agree",
    }


# default_report(1) as the chat shows it, between the header and the disclaimer.
DEFAULT_REPORT_HTML = (
    "🟢 <b>Bullish</b> · medium confidence\nBTCUSDT · 1D · Uptrend (strong)\n\n"
    "<b>Levels</b>\nResistance: 45,000 · 46,200\nSupport: 41,000 · 39,500\n\n"
    "Patterns: ascending triangle\nIndicators: RSI 64 &amp; rising &lt;above 50&gt;\n\n"
    "<b>Trade idea: long</b>\nEntry: 41,200 – 41,800\nStop: 40,400\n"
    "Targets: 45,000 (R:R 3.18) · 46,200 (R:R 4.27)\nInvalidation: a daily close below 40,400\n\n"
    "<b>Summary</b>\nBTC is in an uptrend on the daily chart, making higher highs; &lt;i&gt; tags stay literal "
    "&amp; escaped."
)


def images_in(body: dict[str, Any]) -> int:
    """Count the images of a chat completions request."""
    return sum(1 for message in body.get("messages", []) if isinstance(message.get("content"), list)
               for part in message["content"] if part.get("type") == "image_url")


@dataclass
class Failure:
    """One scripted failure: an HTTP status, or a stall of `stall_seconds`."""

    status: int = 500
    retry_after: float | None = None
    stall_seconds: float = 0.0


@dataclass
class FakeOpenAIServer:
    """Chat completions that return `answer`, after working through scripted failures.

    `answer` is the message content: a dict is sent as JSON, a string as it
    is, and None (the default) sends default_report for the number of images
    in the request. `answers` are used first, one per request.
    """

    answer: dict[str, Any] | str | None = None
    answers: list[dict[str, Any] | str] = field(default_factory=list)
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
        self._runner, root = await serve_locally(app)
        self.url = f"{root}/v1"
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
        answer = self.answers.pop(0) if self.answers else self.answer
        if answer is None:
            answer = default_report(max(1, images_in(body)))
        content = answer if isinstance(answer, str) else json.dumps(answer)
        return web.json_response({
            "id": f"chatcmpl-{next(self._ids)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "gpt-4o"),
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": content, "refusal": None}}],
            "usage": {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                      "total_tokens": self.prompt_tokens + self.completion_tokens},
        })
