"""The vision model behind the ChartAnalyzer port, through the openai SDK."""

from __future__ import annotations

import base64
import logging
import math
from collections.abc import Sequence

import openai
from openai import AsyncOpenAI

from core.errors import ModelRateLimited, PermanentModelError, TransientModelError
from core.models import ChartFindings, ChartImage, ImageInfo, ModelAnswer, TokenUsage
from core.ports import ModelRateLimit
from workers.prompt import ChartPrompt

logger = logging.getLogger(__name__)

MAX_COMPLETION_TOKENS = 1500
# Statuses a retry can fix: request timeout, conflict, rate limit, and any server error.
_TRANSIENT_STATUSES = {408, 409, 429}


def _retry_after_seconds(response: object) -> float | None:
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def image_tokens(info: ImageInfo) -> int:
    """Input tokens of one image at detail "high", by OpenAI's published rule for GPT-4o.

    The image is scaled to fit 2048 x 2048, then its shorter side to 768, and
    costs 85 tokens plus 170 per 512-pixel tile.
    """
    scale = min(1.0, 2048 / max(info.width, info.height))
    width, height = info.width * scale, info.height * scale
    scale = min(1.0, 768 / min(width, height))
    width, height = width * scale, height * scale
    return 85 + 170 * math.ceil(width / 512) * math.ceil(height / 512)


def estimate_tokens(messages: list[dict], images: Sequence[ChartImage]) -> int:
    """Tokens the rate limit counts for one call: the input estimate plus the whole completion allowance.

    Text is counted at one token per 4 characters, rounded up, plus 4 per message.
    """
    characters = 0
    for message in messages:
        content = message["content"]
        parts = [content] if isinstance(content, str) else [p["text"] for p in content if p["type"] == "text"]
        characters += sum(len(part) for part in parts)
    text = math.ceil(characters / 4) + 4 * len(messages)
    return text + sum(image_tokens(image.info) for image in images) + MAX_COMPLETION_TOKENS


class OpenAIChartAnalyzer:
    """ChartAnalyzer that sends the charts to an OpenAI-compatible chat completions endpoint."""

    def __init__(self, client: AsyncOpenAI, *, model: str, prompt: ChartPrompt,
                 rate_limit: ModelRateLimit | None = None) -> None:
        self._client = client
        self._model = model
        self._prompt = prompt
        self._rate_limit = rate_limit
        self.prompt_version = prompt.version

    def _messages(self, images: Sequence[ChartImage], caption: str | None) -> list[dict]:
        content: list[dict] = [{"type": "text", "text": self._prompt.user_text(caption)}]
        for image in images:
            encoded = base64.b64encode(image.data).decode("ascii")
            content.append(
                {
                    "type": "image_url",
                    "image_url": {"url": f"data:{image.info.mime_type};base64,{encoded}", "detail": "high"},
                }
            )
        return [{"role": "system", "content": self._prompt.system}, {"role": "user", "content": content}]

    async def analyze(
        self, images: Sequence[ChartImage], caption: str | None, findings: Sequence[ChartFindings]
    ) -> ModelAnswer:
        # NOTE: the reader's findings are not yet put into the prompt; the model reads the chart alone.
        messages = self._messages(images, caption)
        estimate = estimate_tokens(messages, images)
        ticket = await self._rate_limit.acquire(estimate) if self._rate_limit is not None else None
        try:
            response = await self._client.chat.completions.create(
                model=self._model,
                messages=messages,
                max_completion_tokens=MAX_COMPLETION_TOKENS,
                temperature=0.2,
            )
        except (openai.APITimeoutError, openai.APIConnectionError) as error:
            raise TransientModelError(f"{type(error).__name__}: {error}") from error
        except openai.APIStatusError as error:
            message = f"HTTP {error.status_code} from the model"
            if error.status_code == 429:
                retry_after = _retry_after_seconds(error.response)
                if self._rate_limit is not None:
                    await self._rate_limit.pause(retry_after if retry_after is not None else 1.0)
                raise ModelRateLimited(message, retry_after=retry_after) from error
            if error.status_code in _TRANSIENT_STATUSES or error.status_code >= 500:
                raise TransientModelError(message, retry_after=_retry_after_seconds(error.response)) from error
            raise PermanentModelError(message) from error

        if not response.choices:
            raise PermanentModelError("the model returned no choices")
        message = response.choices[0].message
        if getattr(message, "refusal", None):
            raise PermanentModelError(f"the model refused: {message.refusal}")
        text = (message.content or "").strip()
        if not text:
            raise PermanentModelError("the model returned an empty message")

        usage = TokenUsage()
        if response.usage is not None:
            usage = TokenUsage(
                input_tokens=response.usage.prompt_tokens, output_tokens=response.usage.completion_tokens
            )
            if ticket is not None:
                await self._rate_limit.settle(ticket, usage.input_tokens + MAX_COMPLETION_TOKENS)
        return ModelAnswer(text=text, model=response.model or self._model, usage=usage)


def build_openai_client(*, api_key: str, base_url: str | None, timeout_seconds: float) -> AsyncOpenAI:
    """Create the SDK client with its own retries off: the analysis use case retries and logs them."""
    return AsyncOpenAI(api_key=api_key, base_url=base_url, timeout=timeout_seconds, max_retries=0)
