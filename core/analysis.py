"""Use cases of a chart analysis: request it (bot side) and run it (worker side)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from core.errors import (
    AnalysisNotFound,
    PermanentModelError,
    TransientModelError,
    UsageLimitExceeded,
)
from core.models import Analysis, AnalysisJob, AnalysisStatus, ChartImage, StoredImage
from core.ports import AnalysisQueue, AnalysisRepository, ChartAnalyzer, Clock, ImageStore, Notifier, UsageCounter

logger = logging.getLogger(__name__)


def utc_now() -> datetime:
    """Return the current time in UTC."""
    return datetime.now(UTC)


def user_key(platform: str, user_id: str) -> str:
    """Return the key that identifies a user in usage counters."""
    return f"{platform}:{user_id}"


def usage_day(moment: datetime) -> str:
    """Return the UTC day (YYYY-MM-DD) a moment is counted in."""
    return moment.astimezone(UTC).date().isoformat()


def next_day_start(moment: datetime) -> datetime:
    """Return the next UTC midnight after `moment`, when the daily count resets."""
    day = moment.astimezone(UTC).date() + timedelta(days=1)
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


@dataclass(frozen=True)
class AnalysisServices:
    """The ports and rules that the analysis use cases run on."""

    analyses: AnalysisRepository
    images: ImageStore
    usage: UsageCounter
    queue: AnalysisQueue
    daily_limit: int
    clock: Clock = utc_now


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to wait before calling the model again after a transient error."""

    max_attempts: int = 4
    base_seconds: float = 2.0
    max_seconds: float = 60.0
    sleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep)

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Return seconds to wait after failed attempt number `attempt` (1-based)."""
        if retry_after is not None and retry_after >= 0:
            return min(retry_after, self.max_seconds)
        return min(self.base_seconds * 2 ** (attempt - 1), self.max_seconds)


async def request_analysis(job: AnalysisJob, services: AnalysisServices, notifier: Notifier) -> Analysis:
    """Reserve the user's uses, store the charts, acknowledge in chat and queue the analysis.

    Raises UsageLimitExceeded, which costs nothing. Any later failure refunds
    the reservation before the error propagates.
    """
    now = services.clock()
    day = usage_day(now)
    key = user_key(job.platform.value, job.user_id)
    units = len(job.images)

    admitted, used = await services.usage.reserve(key, day, units=units, limit=services.daily_limit)
    if not admitted:
        logger.info("usage limit reached user=%s used=%d limit=%d", key, used, services.daily_limit)
        raise UsageLimitExceeded(
            limit=services.daily_limit, used=used, requested=units, resets_at=next_day_start(now)
        )

    analysis_id = uuid.uuid4().hex
    stored: list[StoredImage] = []
    try:
        for index, image in enumerate(job.images):
            image_id = f"{analysis_id}-{index}"
            await services.images.put(image_id, image.info, image.data)
            stored.append(StoredImage(image_id=image_id, info=image.info))
        analysis = Analysis(
            id=analysis_id,
            platform=job.platform,
            user_id=job.user_id,
            chat_id=job.chat_id,
            message_id=job.message_id,
            caption=job.caption,
            images=stored,
            units=units,
            usage_day=day,
            created_at=now,
        )
        await services.analyses.add(analysis)
    except Exception:
        logger.exception("storing analysis failed analysis=%s user=%s", analysis_id, key)
        await services.usage.refund(key, day, units=units, refund_key=analysis_id)
        for image in stored:
            await services.images.delete(image.image_id)
        raise

    try:
        ack_message_id = await notifier.analysis_queued(analysis)
        if ack_message_id is not None:
            await services.analyses.update(analysis.id, {"ack_message_id": ack_message_id})
            analysis = analysis.model_copy(update={"ack_message_id": ack_message_id})
        await services.queue.enqueue(analysis.id)
    except Exception as error:
        logger.exception("queueing analysis failed analysis=%s user=%s", analysis.id, key)
        await fail_analysis(analysis, services, notifier, error=f"could not queue: {error}")
        raise

    logger.info("analysis queued analysis=%s user=%s images=%d", analysis.id, key, units)
    return analysis


async def fail_analysis(analysis: Analysis, services: AnalysisServices, notifier: Notifier, *, error: str) -> Analysis:
    """Mark an analysis failed, refund its reservation once, and tell the user."""
    refunded = await services.usage.refund(
        user_key(analysis.platform.value, analysis.user_id),
        analysis.usage_day,
        units=analysis.units,
        refund_key=analysis.id,
    )
    changes = {
        "status": AnalysisStatus.FAILED,
        "error": error[:500],
        "refunded": True,
        "finished_at": services.clock(),
    }
    await services.analyses.update(analysis.id, changes)
    failed = analysis.model_copy(update=changes)
    logger.warning("analysis failed analysis=%s user=%s refunded_now=%s error=%s",
                   analysis.id, analysis.user_id, refunded, error[:200])
    try:
        await notifier.analysis_failed(failed)
    except Exception:
        logger.exception("failure notice not delivered analysis=%s chat=%s", analysis.id, analysis.chat_id)
    return failed


async def _load_images(analysis: Analysis, services: AnalysisServices) -> list[ChartImage]:
    return [
        ChartImage(info=image.info, data=await services.images.get(image.image_id))
        for image in analysis.images
    ]


async def run_analysis(
    analysis_id: str,
    services: AnalysisServices,
    analyzer: ChartAnalyzer,
    notifier: Notifier,
    *,
    retry: RetryPolicy,
) -> Analysis:
    """Run one queued analysis through the model and deliver the result to its chat.

    Transient model errors are retried under `retry`; a permanent error, or
    running out of attempts, fails the analysis and refunds it. An analysis
    that already finished is returned as it is, so a redelivered job does
    nothing twice.
    """
    analysis = await services.analyses.get(analysis_id)
    if analysis is None:
        raise AnalysisNotFound(analysis_id)
    if analysis.status in (AnalysisStatus.DONE, AnalysisStatus.FAILED):
        logger.info("analysis already finished analysis=%s status=%s", analysis_id, analysis.status.value)
        return analysis

    started = {"status": AnalysisStatus.RUNNING, "started_at": services.clock()}
    await services.analyses.update(analysis_id, started)
    analysis = analysis.model_copy(update=started)
    logger.info("analysis started analysis=%s user=%s", analysis_id, analysis.user_id)

    try:
        images = await _load_images(analysis, services)
    except KeyError as error:
        logger.error("stored image missing analysis=%s image=%s", analysis_id, error)
        return await fail_analysis(analysis, services, notifier, error=f"stored image missing: {error}")

    attempt = 0
    while True:
        attempt += 1
        await services.analyses.update(analysis_id, {"attempts": attempt})
        try:
            answer = await analyzer.analyze(images, analysis.caption)
            break
        except TransientModelError as error:
            if attempt >= retry.max_attempts:
                return await fail_analysis(
                    analysis, services, notifier, error=f"model unavailable after {attempt} attempts: {error}"
                )
            delay = retry.delay(attempt, error.retry_after)
            logger.warning("model call failed, retrying analysis=%s attempt=%d delay=%.1fs error=%s",
                           analysis_id, attempt, delay, error)
            await retry.sleep(delay)
        except PermanentModelError as error:
            return await fail_analysis(analysis, services, notifier, error=f"model error: {error}")
        except Exception as error:
            logger.exception("model call raised unexpectedly analysis=%s", analysis_id)
            return await fail_analysis(analysis, services, notifier, error=f"unexpected error: {error!r}")

    done = {
        "status": AnalysisStatus.DONE,
        "result_text": answer.text,
        "model": answer.model,
        "prompt_version": analyzer.prompt_version,
        "usage": answer.usage,
        "attempts": attempt,
        "finished_at": services.clock(),
    }
    await services.analyses.update(analysis_id, done)
    analysis = analysis.model_copy(update=done)
    logger.info("analysis done analysis=%s user=%s input_tokens=%d output_tokens=%d",
                analysis_id, analysis.user_id, answer.usage.input_tokens, answer.usage.output_tokens)
    try:
        await notifier.analysis_done(analysis)
    except Exception:
        logger.exception("analysis reply not delivered analysis=%s chat=%s", analysis_id, analysis.chat_id)
    return analysis
