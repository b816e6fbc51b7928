"""The worker side of an analysis: the non-chart gate, the model call with retries, the reply."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from core.analysis import AnalysisServices, fail_analysis
from core.analysis_result import ModelReport
from core.archive import archive_charts
from core.errors import (
    AnalysisNotFound,
    InvalidModelReply,
    ModelRateLimited,
    PermanentModelError,
    ReplyNotSent,
    TransientModelError,
)
from core.events import Progress, Stage
from core.models import Analysis, AnalysisStatus, ChartAgreement, ChartFindings, ChartImage, FailureKind, ModelAnswer
from core.ports import CancellationCheck, ChartAnalyzer, ChartArchive, ChartReader, Notifier

logger = logging.getLogger(__name__)


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


@dataclass(frozen=True)
class AnalysisRunner:
    """Ports and policy the worker runs an analysis with."""

    services: AnalysisServices
    analyzer: ChartAnalyzer
    notifier: Notifier
    retry: RetryPolicy
    reader: ChartReader | None = None
    cancellation: CancellationCheck | None = None
    # USD cost of a model's tokens (model, input tokens, output tokens), or None when the model has no price.
    pricing: Callable[[str, int, int], float | None] | None = None
    # Times a response that fails validation is requested again before the analysis fails.
    invalid_reply_retries: int = 1
    # With an archive (Cloudinary) the charts of a finished analysis are uploaded after the reply.
    archive: ChartArchive | None = None


class _Failed(Exception):
    def __init__(self, failure: FailureKind, error: str) -> None:
        super().__init__(error)
        self.failure = failure
        self.error = error


async def _load_images(analysis: Analysis, services: AnalysisServices) -> list[ChartImage]:
    try:
        return [
            ChartImage(info=image.info, data=await services.images.get(image.image_id))
            for image in analysis.images
        ]
    except KeyError as error:
        logger.error("stored image missing analysis=%s image=%s", analysis.id, error)
        raise _Failed(FailureKind.IMAGE_MISSING, f"stored image missing: {error}") from error


async def _read_charts(
    analysis: Analysis, images: Sequence[ChartImage], runner: AnalysisRunner
) -> tuple[list[ChartFindings], list[int]]:
    """Run the offline reader; returns its findings and the numbers of the charts it found not to be charts.

    When no image is a chart, the analysis ends before any model call. In an
    album with some charts left, the others are left out of the model call and
    refunded. An image the reader cannot read at all still goes to the model:
    a false refusal costs the trader more than a model call costs the operator.
    """
    if runner.reader is None:
        return [], []
    try:
        findings = [await runner.reader.read(image) for image in images]
    except Exception as error:
        logger.warning("chart reader failed, sending to the model anyway analysis=%s error=%r", analysis.id, error)
        return [], []
    await runner.services.analyses.update(analysis.id, {"findings": findings})
    rejected = [number for number, finding in enumerate(findings, start=1) if not finding.is_chart]
    for number in rejected:
        logger.info("not a price chart analysis=%s image=%d confidence=%.2f",
                    analysis.id, number - 1, findings[number - 1].confidence)
    if rejected and len(rejected) == len(images):
        first = findings[rejected[0] - 1]
        raise _Failed(FailureKind.NOT_A_CHART, f"image {rejected[0]} is not a price chart "
                                               f"(chart confidence {first.confidence:.2f})")
    return findings, rejected


def _numbered_as_sent(answer: ModelAnswer, model_charts: Sequence[int]) -> ModelAnswer:
    """Give the charts of the model's report the numbers they had in the album, when some were left out.

    `model_charts` lists the album numbers of the charts sent to the model, in the order sent.
    """
    if answer.result is None:
        return answer
    report = answer.result.report
    charts = []
    for chart in report.charts:
        if 0 < chart.chart <= len(model_charts):
            chart = chart.model_copy(update={"chart": model_charts[chart.chart - 1]})
        charts.append(chart)
    result = answer.result.model_copy(update={"report": report.model_copy(update={"charts": charts})})
    return answer.model_copy(update={"result": result})


async def _call_model(
    analysis: Analysis, images: Sequence[ChartImage], findings: Sequence[ChartFindings], runner: AnalysisRunner
) -> tuple[ModelAnswer, int, float]:
    """Call the analyzer, retrying transient errors; returns the model output, the attempts it took and
    the seconds spent inside the analyzer (every attempt, including waits for the shared rate limit).

    A rate-limit answer (429) waits as the model asks and does not use up an
    attempt: the analysis is not failed for the operator's own limit. The
    analysis's watchdog still ends one that waits too long.
    """
    retry = runner.retry
    attempt = 0
    rate_limited = 0
    invalid = 0
    seconds = 0.0
    while True:
        attempt += 1
        await runner.services.analyses.update(analysis.id, {"attempts": attempt})
        started = time.perf_counter()
        try:
            answer = await runner.analyzer.analyze(images, analysis.caption, findings)
            return answer, attempt, seconds + time.perf_counter() - started
        except ModelRateLimited as error:
            seconds += time.perf_counter() - started
            attempt -= 1
            rate_limited += 1
            delay = retry.delay(1, error.retry_after)
            logger.warning("model rate limited, waiting analysis=%s times=%d delay=%.1fs",
                           analysis.id, rate_limited, delay)
            await retry.sleep(delay)
        except TransientModelError as error:
            seconds += time.perf_counter() - started
            if attempt >= retry.max_attempts:
                raise _Failed(FailureKind.MODEL, f"model unavailable after {attempt} attempts: {error}") from error
            delay = retry.delay(attempt, error.retry_after)
            logger.warning("model call failed, retrying analysis=%s attempt=%d delay=%.1fs error=%s",
                           analysis.id, attempt, delay, error)
            await runner.notifier.analysis_progress(
                analysis, Progress(Stage.RETRYING, attempt=attempt + 1, max_attempts=retry.max_attempts))
            await retry.sleep(delay)
        except InvalidModelReply as error:
            seconds += time.perf_counter() - started
            attempt -= 1
            invalid += 1
            if invalid > runner.invalid_reply_retries:
                raise _Failed(FailureKind.INVALID_REPLY, f"invalid model response {invalid} times: {error}") from error
            logger.warning("model response invalid, requesting it again analysis=%s times=%d error=%s",
                           analysis.id, invalid, error)
        except PermanentModelError as error:
            raise _Failed(FailureKind.MODEL, f"model error: {error}") from error
        except Exception as error:
            logger.exception("model call raised unexpectedly analysis=%s", analysis.id)
            raise _Failed(FailureKind.MODEL, f"unexpected error: {error!r}") from error


def agreement(findings: Sequence[ChartFindings], report: ModelReport) -> list[ChartAgreement]:
    """Compare the trend the reader measured on each chart with the trend the model read."""
    rows = []
    for chart in report.charts:
        measured = findings[chart.chart - 1] if 0 < chart.chart <= len(findings) else None
        reader_trend = measured.trend if measured is not None else None
        agrees = None if reader_trend is None else reader_trend == chart.trend
        rows.append(ChartAgreement(chart=chart.chart, reader_trend=reader_trend, model_trend=chart.trend,
                                   trend_agrees=agrees))
    return rows


def _unreadable_charts(report: ModelReport | None, charts: int) -> list[int]:
    """Return the numbers of the charts, of the `charts` sent, that the model marked not readable."""
    if report is None:
        return []
    return sorted({chart.chart for chart in report.charts if not chart.readable and 0 < chart.chart <= charts})


def _answer_fields(answer: ModelAnswer, findings: Sequence[ChartFindings], runner: AnalysisRunner) -> dict:
    """Return the analysis fields a model response sets: the result, the prompt, tokens, cost and preparation."""
    fields = {
        "result_text": answer.text or None,
        "result": answer.result,
        "model": answer.model,
        "prompt_version": answer.prompt_version or runner.analyzer.prompt_version,
        "usage": answer.usage,
        "prepared": answer.prepared,
    }
    if runner.pricing is not None:
        fields["cost_usd"] = runner.pricing(answer.model, answer.usage.input_tokens, answer.usage.output_tokens)
    if answer.result is not None:
        fields["agreement"] = agreement(findings, answer.result.report)
    return fields


async def _stop_if_cancelled(analysis: Analysis, runner: AnalysisRunner) -> None:
    """Raise _Cancelled at a safe point when the analysis was cancelled or asked to stop."""
    if runner.cancellation is not None and await runner.cancellation.cancelled(analysis.id):
        raise _Cancelled()


class _Cancelled(Exception):
    pass


async def _finish_cancelled(analysis: Analysis, runner: AnalysisRunner) -> Analysis:
    """Fail a cancelled analysis with a refund, unless whoever cancelled it already did."""
    services = runner.services
    current = await services.analyses.get(analysis.id) or analysis
    logger.info("analysis stopped at a safe point analysis=%s status=%s", analysis.id, current.status.value)
    if current.status in (AnalysisStatus.DONE, AnalysisStatus.FAILED):
        return current
    return await fail_analysis(current, services, runner.notifier, failure=FailureKind.CANCELLED,
                               error="cancelled by the user")


async def _finish_delivered_again(analysis: Analysis, runner: AnalysisRunner) -> Analysis:
    """Finish what a worker that died after storing the outcome left undone: the refund and the reply.

    Both are idempotent (the refund per analysis, the reply through the
    notifier's once-only guard), so this is safe on any repeat delivery.
    """
    logger.info("analysis delivered again after it finished analysis=%s status=%s replied=%s",
                analysis.id, analysis.status.value, analysis.replied_at is not None)
    if analysis.replied_at is not None:
        return analysis
    try:
        if analysis.status is AnalysisStatus.DONE:
            if analysis.refunded_charts:
                await runner.services.usage.refund_charts(analysis.reservation, analysis.refunded_charts)
            await runner.notifier.analysis_done(analysis)
        else:
            await runner.services.usage.refund(analysis.reservation)
            await runner.notifier.analysis_failed(analysis)
    except ReplyNotSent:
        raise
    except Exception:
        logger.exception("reply of a finished analysis not delivered analysis=%s chat=%s",
                         analysis.id, analysis.chat_id)
    return analysis


async def run_analysis(analysis_id: str, runner: AnalysisRunner) -> Analysis:
    """Run one queued analysis: gate it, call the model, store the result and reply in its chat.

    A non-chart, a permanent model error, or running out of attempts fails the
    analysis and refunds it. In an album, each image that is not a chart or
    that the model cannot read is refunded, and the rest are analysed. With
    `runner.cancellation` set, a cancelled analysis stops before the model
    call and before the reply, refunded once. A job delivered again after its
    analysis finished only completes the refund and reply a dead worker may
    have missed.
    """
    services = runner.services
    analysis = await services.analyses.get(analysis_id)
    if analysis is None:
        raise AnalysisNotFound(analysis_id)
    if analysis.status in (AnalysisStatus.DONE, AnalysisStatus.FAILED):
        return await _finish_delivered_again(analysis, runner)

    started = {"status": AnalysisStatus.RUNNING, "started_at": services.clock()}
    await services.analyses.update(analysis_id, started)
    analysis = analysis.model_copy(update=started)
    logger.info("analysis started analysis=%s user=%s", analysis_id, analysis.user_id)
    await runner.notifier.analysis_progress(analysis, Progress(Stage.ANALYSING))

    try:
        images = await _load_images(analysis, services)
        findings, rejected = await _read_charts(analysis, images, runner)
        model_charts = [number for number in range(1, len(images) + 1) if number not in rejected]
        await _stop_if_cancelled(analysis, runner)
        answer, attempts, model_seconds = await _call_model(
            analysis, [images[number - 1] for number in model_charts],
            [findings[number - 1] for number in model_charts] if findings else [], runner)
        if rejected:
            answer = _numbered_as_sent(answer, model_charts)
        await _stop_if_cancelled(analysis, runner)
    except _Failed as failed:
        return await fail_analysis(analysis, services, runner.notifier, failure=failed.failure, error=failed.error)
    except _Cancelled:
        return await _finish_cancelled(analysis, runner)

    outcome = _answer_fields(answer, findings, runner)
    outcome.update(attempts=attempts, model_seconds=round(model_seconds, 4))
    report = answer.result.report if answer.result is not None else None
    unreadable = _unreadable_charts(report, len(analysis.images))
    if report is not None and (not report.readable_chart or len(unreadable) == len(model_charts)):
        # The model could not read any chart, so the user is refunded. The response is kept for the operator.
        await services.analyses.update(analysis_id, outcome)
        logger.info("model found no readable chart analysis=%s", analysis_id)
        return await fail_analysis(analysis.model_copy(update=outcome), services, runner.notifier,
                                   failure=FailureKind.NOT_A_CHART, error="the model found no readable chart")

    refunded = sorted({*rejected, *unreadable})
    if refunded:
        # The refund is keyed by the analysis, so a job run again after a crash gives it once.
        await services.usage.refund_charts(analysis.reservation, refunded)
        outcome["refunded_charts"] = refunded
        logger.info("charts of an album refunded analysis=%s not_charts=%s not_readable=%s",
                    analysis_id, rejected, unreadable)
    # NOTE: a cancel that lands between the last safe point and this write is refunded by the canceller,
    # and the reply below is still sent; the window is the time of one MongoDB update. A refund of
    # some charts of an album made in that window is given on top of the canceller's.
    done = {"status": AnalysisStatus.DONE, **outcome, "finished_at": services.clock()}
    await services.analyses.update(analysis_id, done)
    analysis = analysis.model_copy(update=done)
    trends = [row.trend_agrees for row in analysis.agreement if row.trend_agrees is not None]
    model_view = answer.result.report.reader_measurements if answer.result is not None else "-"
    logger.info("analysis done analysis=%s user=%s charts=%d input_tokens=%d output_tokens=%d cost_usd=%s "
                "reader_trend_agrees=%d/%d model_on_reader=%s", analysis_id, analysis.user_id, len(analysis.images),
                answer.usage.input_tokens, answer.usage.output_tokens, analysis.cost_usd, sum(trends), len(trends),
                model_view)
    try:
        await runner.notifier.analysis_done(analysis)
    except ReplyNotSent:
        raise
    except Exception:
        logger.exception("analysis reply not delivered analysis=%s chat=%s", analysis_id, analysis.chat_id)
    if runner.archive is not None:
        try:
            analysis = await archive_charts(analysis, analyses=services.analyses, images=services.images,
                                            archive=runner.archive)
        except Exception:
            # The maintenance job only retries records marked pending; this one is logged for the operator.
            logger.exception("archiving the charts failed analysis=%s", analysis_id)
    return analysis
