"""Use cases on the bot side of an analysis: request it for one chart or several, and fail it with a refund."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from core.errors import CaptionTooLong, InvalidChartImage, InvalidChartInRequest, ReplyNotSent, TooManyCharts
from core.images import ImageLimits, inspect_image
from core.models import (
    CAPTION_MAX_CHARS,
    Analysis,
    AnalysisJob,
    AnalysisStatus,
    ChartImage,
    FailureKind,
    Platform,
    StoredImage,
)
from core.ports import AnalysisQueue, AnalysisRepository, Clock, ImageStore, JobControl, Notifier
from core.usage import UsageService, user_key

logger = logging.getLogger(__name__)


def utc_now() -> datetime:
    """Return the current time in UTC."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class AnalysisServices:
    """The ports and rules that the analysis use cases run on."""

    analyses: AnalysisRepository
    images: ImageStore
    usage: UsageService
    queue: AnalysisQueue
    image_limits: ImageLimits = ImageLimits()
    clock: Clock = utc_now
    # With a job registry the analysis is queued through it, so it can be found, cancelled and timed out.
    jobs: JobControl | None = None


@dataclass(frozen=True)
class Upload:
    """A chart file as a chat adapter received it."""

    platform: Platform
    user_id: str
    chat_id: str
    data: bytes
    message_id: str | None = None
    caption: str | None = None


def _check_caption(caption: str | None) -> None:
    if caption is not None and len(caption) > CAPTION_MAX_CHARS:
        raise CaptionTooLong(length=len(caption), limit=CAPTION_MAX_CHARS)


def _chart_image(data: bytes, limits: ImageLimits) -> ChartImage:
    info = inspect_image(data, max_bytes=limits.max_bytes, max_pixels=limits.max_pixels, min_side=limits.min_side)
    return ChartImage(info=info, data=data)


async def submit_upload(upload: Upload, services: AnalysisServices, notifier: Notifier) -> Analysis:
    """Check an uploaded chart, then request its analysis.

    Raises CaptionTooLong, InvalidChartImage or UsageLimitExceeded; none of
    them costs the user anything or stores anything.
    """
    _check_caption(upload.caption)
    image = _chart_image(upload.data, services.image_limits)
    job = AnalysisJob(
        platform=upload.platform,
        user_id=upload.user_id,
        chat_id=upload.chat_id,
        message_id=upload.message_id,
        images=[image],
        caption=upload.caption,
    )
    return await request_analysis(job, services, notifier)


def check_chart_count(count: int, *, max_charts: int) -> None:
    """Raise TooManyCharts when one request carries more than `max_charts` charts."""
    if count > max_charts:
        raise TooManyCharts(count, max_charts)


async def submit_uploads(
    uploads: Sequence[Upload],
    services: AnalysisServices,
    notifier: Notifier,
    *,
    max_charts: int,
    media_group_id: str | None = None,
) -> Analysis:
    """Check several charts sent together (a chat album), then request one analysis of all of them.

    `uploads` are in the order the user sent them. The first one with a
    caption gives the question, the first one's message is the one the
    acknowledgement replies to, and the analysis reserves one use per chart.
    Raises TooManyCharts, CaptionTooLong, InvalidChartInRequest (naming the
    chart) or UsageLimitExceeded; none of them costs the user anything or
    stores anything.
    """
    if not uploads:
        raise ValueError("submit_uploads needs at least one upload")
    first = uploads[0]
    if any((u.platform, u.user_id, u.chat_id) != (first.platform, first.user_id, first.chat_id) for u in uploads):
        raise ValueError("the uploads of one request must come from one user in one chat")
    check_chart_count(len(uploads), max_charts=max_charts)
    caption = next((u.caption for u in uploads if u.caption), None)
    _check_caption(caption)

    images = []
    for position, upload in enumerate(uploads, start=1):
        try:
            images.append(_chart_image(upload.data, services.image_limits))
        except InvalidChartImage as error:
            raise InvalidChartInRequest(position=position, count=len(uploads), error=error) from error

    job = AnalysisJob(
        platform=first.platform,
        user_id=first.user_id,
        chat_id=first.chat_id,
        message_id=first.message_id,
        images=images,
        caption=caption,
        media_group_id=media_group_id,
    )
    return await request_analysis(job, services, notifier)


async def request_analysis(job: AnalysisJob, services: AnalysisServices, notifier: Notifier) -> Analysis:
    """Reserve the user's uses, store the charts, acknowledge in chat and queue the analysis.

    Raises UsageLimitExceeded, which costs nothing. Any later failure refunds
    the reservation before the error propagates.
    """
    now = services.clock()
    key = user_key(job.platform.value, job.user_id)
    units = len(job.images)
    analysis_id = uuid.uuid4().hex
    reservation = await services.usage.reserve(job.platform.value, job.user_id, units=units, analysis_id=analysis_id)

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
            media_group_id=job.media_group_id,
            images=stored,
            units=units,
            reservation=reservation,
            created_at=now,
        )
        await services.analyses.add(analysis)
    except Exception:
        logger.exception("storing analysis failed analysis=%s user=%s", analysis_id, key)
        await services.usage.refund(reservation)
        for image in stored:
            await services.images.delete(image.image_id)
        raise

    try:
        position = await services.jobs.queued_analyses() + 1 if services.jobs is not None else None
        ack_message_id = await notifier.analysis_queued(analysis, position=position)
        if ack_message_id is not None:
            await services.analyses.update(analysis.id, {"ack_message_id": ack_message_id})
            analysis = analysis.model_copy(update={"ack_message_id": ack_message_id})
        if services.jobs is not None:
            await services.jobs.enqueue_analysis(analysis.id, owner=key)
        else:
            await services.queue.enqueue(analysis.id)
    except Exception as error:
        logger.exception("queueing analysis failed analysis=%s user=%s", analysis.id, key)
        await fail_analysis(analysis, services, notifier, failure=FailureKind.QUEUE, error=f"could not queue: {error}")
        raise

    logger.info("analysis queued analysis=%s user=%s images=%d", analysis.id, key, units)
    return analysis


async def fail_analysis(
    analysis: Analysis,
    services: AnalysisServices,
    notifier: Notifier,
    *,
    failure: FailureKind,
    error: str,
) -> Analysis:
    """Mark an analysis failed, refund its reservation once, and tell the user."""
    refunded = await services.usage.refund(analysis.reservation)
    changes = {
        "status": AnalysisStatus.FAILED,
        "error": error[:500],
        "failure": failure,
        "refunded": True,
        "finished_at": services.clock(),
    }
    await services.analyses.update(analysis.id, changes)
    failed = analysis.model_copy(update=changes)
    # A chart the trader sent by mistake or cancelled is not a fault of the service.
    level = logging.INFO if failure in (FailureKind.NOT_A_CHART, FailureKind.CANCELLED) else logging.WARNING
    logger.log(level, "analysis failed analysis=%s user=%s failure=%s refunded_now=%s error=%s",
               analysis.id, analysis.user_id, failure.value, refunded, error[:200])
    try:
        await notifier.analysis_failed(failed)
    except ReplyNotSent:
        raise
    except Exception:
        logger.exception("failure notice not delivered analysis=%s chat=%s", analysis.id, analysis.chat_id)
    return failed
