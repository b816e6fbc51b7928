"""The vision model behind the ChartAnalyzer port, through the openai SDK."""

from __future__ import annotations

import base64
import logging
from collections.abc import Sequence

import openai
from openai import AsyncOpenAI

from core.errors import PermanentModelError, TransientModelError
from core.models import ChartFindings, ChartImage, ModelAnswer, TokenUsage
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


class OpenAIChartAnalyzer:
    """ChartAnalyzer that sends the charts to an OpenAI-compatible chat completions endpoint."""

    def __init__(self, client: AsyncOpenAI, *, model: str, prompt: ChartPrompt) -> None:
        self._client = client
        self._model = model
        self._prompt = prompt
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
        try:
            response = await self._client.chat.completions.create(
                model=self._model,
                messages=self._messages(images, caption),
                max_completion_tokens=MAX_COMPLETION_TOKENS,
                temperature=0.2,
            )
        except (openai.APITimeoutError, openai.APIConnectionError) as error:
            raise TransientModelError(f"{type(error).__name__}: {error}") from error
        except openai.APIStatusError as error:
            message = f"HTTP {error.status_code} from the model"
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
        return ModelAnswer(text=text, model=response.model or self._model, usage=usage)


def build_openai_client(*, api_key: str, base_url: str | None, timeout_seconds: float) -> AsyncOpenAI:
    """Create the SDK client with its own retries off: the analysis use case retries and logs them."""
    return AsyncOpenAI(api_key=api_key, base_url=base_url, timeout=timeout_seconds, max_retries=0)
