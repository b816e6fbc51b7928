"""The vision model behind the ChartAnalyzer port, through the openai SDK."""

from __future__ import annotations

import asyncio
import base64
import logging
import math
from collections.abc import Callable, Sequence

import openai
import pydantic
from openai import AsyncOpenAI

from core.analysis_result import AnalysisResult, ModelReport
from core.errors import InvalidModelReply, ModelRateLimited, PermanentModelError, TransientModelError
from core.models import ChartFindings, ChartImage, ModelAnswer, PreparedImage, TokenUsage
from core.ports import ModelRateLimit
from workers.image_prep import image_tokens
from workers.prompt import ChartPrompt, reader_facts

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


def estimate_tokens(messages: list[dict], images: Sequence[ChartImage], detail: str = "high") -> int:
    """Tokens the rate limit counts for one call: the input estimate plus the whole completion allowance.

    Text is counted at one token per 4 characters, rounded up, plus 4 per message.
    """
    characters = 0
    for message in messages:
        content = message["content"]
        parts = [content] if isinstance(content, str) else [p["text"] for p in content if p["type"] == "text"]
        characters += sum(len(part) for part in parts)
    text = math.ceil(characters / 4) + 4 * len(messages)
    images_cost = sum(image_tokens(image.info.width, image.info.height, detail) for image in images)
    return text + images_cost + MAX_COMPLETION_TOKENS


# Prepares one chart for the model: returns the image to send and the record of what preparation did.
ImagePreparer = Callable[[ChartImage, ChartFindings | None], tuple[ChartImage, PreparedImage]]


class OpenAIChartAnalyzer:
    """ChartAnalyzer that requests a structured report from an OpenAI-compatible chat completions endpoint.

    The single-chart or the multi-chart prompt is chosen by the number of
    charts; the reader's measurements go into the request as facts. The
    response must validate against ModelReport (pydantic; the SDK sends its
    JSON schema as a strict response format) and must cover every chart sent,
    or InvalidModelReply is raised.
    """

    def __init__(self, client: AsyncOpenAI, *, model: str, prompt: ChartPrompt, multi_prompt: ChartPrompt | None = None,
                 rate_limit: ModelRateLimit | None = None, detail: str = "high",
                 prepare: ImagePreparer | None = None) -> None:
        self._client = client
        self._model = model
        self._prompt = prompt
        self._multi_prompt = multi_prompt or prompt
        self._rate_limit = rate_limit
        self._detail = detail
        self._prepare = prepare
        self.prompt_version = prompt.version
        self.multi_prompt_version = self._multi_prompt.version

    def _prompt_for(self, count: int) -> ChartPrompt:
        return self._prompt if count == 1 else self._multi_prompt

    def _messages(self, prompt: ChartPrompt, images: Sequence[ChartImage], caption: str | None,
                  findings: Sequence[ChartFindings]) -> list[dict]:
        text = prompt.user_text(caption, count=len(images), facts=reader_facts(findings))
        content: list[dict] = [{"type": "text", "text": text}]
        for image in images:
            encoded = base64.b64encode(image.data).decode("ascii")
            content.append(
                {
                    "type": "image_url",
                    "image_url": {"url": f"data:{image.info.mime_type};base64,{encoded}", "detail": self._detail},
                }
            )
        return [{"role": "system", "content": prompt.system}, {"role": "user", "content": content}]

    async def _prepared(self, images: Sequence[ChartImage],
                        findings: Sequence[ChartFindings]) -> tuple[list[ChartImage], list[PreparedImage]]:
        if self._prepare is None:
            return list(images), []
        sent: list[ChartImage] = []
        records: list[PreparedImage] = []
        for index, image in enumerate(images):
            finding = findings[index] if index < len(findings) else None
            prepared, record = await asyncio.to_thread(self._prepare, image, finding)
            sent.append(prepared)
            records.append(record)
        return sent, records

    async def analyze(
        self, images: Sequence[ChartImage], caption: str | None, findings: Sequence[ChartFindings]
    ) -> ModelAnswer:
        prompt = self._prompt_for(len(images))
        sent, prepared = await self._prepared(images, findings)
        messages = self._messages(prompt, sent, caption, findings)
        estimate = estimate_tokens(messages, sent, self._detail)
        ticket = await self._rate_limit.acquire(estimate) if self._rate_limit is not None else None
        try:
            response = await self._client.chat.completions.parse(
                model=self._model,
                messages=messages,
                max_completion_tokens=MAX_COMPLETION_TOKENS,
                temperature=0.2,
                response_format=ModelReport,
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
        except pydantic.ValidationError as error:
            raise InvalidModelReply(f"the response is invalid: {_first_error(error)}") from error
        except openai.LengthFinishReasonError as error:
            raise InvalidModelReply("the response was cut off at the completion token limit") from error
        except openai.ContentFilterFinishReasonError as error:
            raise PermanentModelError("the response was stopped by the content filter") from error

        if not response.choices:
            raise PermanentModelError("the model returned no choices")
        message = response.choices[0].message
        if getattr(message, "refusal", None):
            raise PermanentModelError(f"the model refused: {message.refusal}")
        report = message.parsed
        if report is None:
            raise InvalidModelReply("the response was empty")
        if report.readable_chart and len(report.charts) != len(images):
            raise InvalidModelReply(f"the response covers {len(report.charts)} of {len(images)} charts")

        usage = TokenUsage()
        if response.usage is not None:
            usage = TokenUsage(
                input_tokens=response.usage.prompt_tokens, output_tokens=response.usage.completion_tokens
            )
            if ticket is not None:
                await self._rate_limit.settle(ticket, usage.input_tokens + MAX_COMPLETION_TOKENS)
        return ModelAnswer(result=AnalysisResult.from_report(report), model=response.model or self._model,
                           usage=usage, prompt_version=prompt.version, prepared=prepared)


def _first_error(error: pydantic.ValidationError) -> str:
    """Describe the first validation problem in a few words, without echoing the model's whole response."""
    first = error.errors()[0]
    where = ".".join(str(part) for part in first.get("loc", ())) or "response"
    return f"{where}: {first.get('msg', 'invalid')}"[:200]


def build_openai_client(*, api_key: str, base_url: str | None, timeout_seconds: float) -> AsyncOpenAI:
    """Create the SDK client with its own retries off: the analysis use case retries and logs them."""
    return AsyncOpenAI(api_key=api_key, base_url=base_url, timeout=timeout_seconds, max_retries=0)
