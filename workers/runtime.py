"""Clients a worker process keeps while it runs: backends, the chart reader, the model, the chat notifier."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from dataclasses import dataclass

from taskiq import AsyncBroker
from telegram import Bot

from adapters.backends import Backends, open_backends
from adapters.cloudinary_archive import build_chart_archive
from adapters.redis_jobs import RedisJobControl
from adapters.redis_rate_limit import RedisModelRateLimit
from bot.telegram.client import build_bot, quiet_http_loggers
from bot.telegram.notifier import once_telegram_notifier
from core.analysis_run import AnalysisRunner, RetryPolicy
from core.events import AnalysisEvents, Progress, Stage
from core.models import Analysis
from core.ports import ChartAnalyzer, ChartArchive, ModelRateLimit
from core.replies import OnceNotifier
from core.settings import Settings
from workers.jobs.children import AnalysisChildren
from workers.image_prep import model_image_preparer
from workers.offline_analyzer import OfflineAnalyzer
from workers.openai_analyzer import OpenAIChartAnalyzer, build_openai_client
from workers.prompt import MULTI_CHART_PROMPT, SINGLE_CHART_PROMPT, load_prompt
from workers.reading import OfflineChartReader

logger = logging.getLogger(__name__)


@dataclass
class WorkerRuntime:
    """Clients a worker opens once at start and closes at stop."""

    backends: Backends
    bot: Bot
    runner: AnalysisRunner
    jobs: RedisJobControl
    children: AnalysisChildren
    events: AnalysisEvents
    archive: ChartArchive | None = None

    async def close(self) -> None:
        """Close every client."""
        await self.bot.shutdown()
        await self.backends.close()


def build_analyzer(settings: Settings, rate_limit: ModelRateLimit | None = None) -> ChartAnalyzer:
    """Create the vision model client, or the offline analyzer when OPENAI_API_KEY is not set."""
    if settings.openai_api_key is None or not settings.openai_api_key.get_secret_value():
        return OfflineAnalyzer()
    client = build_openai_client(
        api_key=settings.openai_api_key.get_secret_value(),
        base_url=settings.openai_base_url,
        timeout_seconds=settings.openai_timeout_seconds,
    )
    return OpenAIChartAnalyzer(client, model=settings.openai_model, prompt=load_prompt(SINGLE_CHART_PROMPT),
                               multi_prompt=load_prompt(MULTI_CHART_PROMPT), rate_limit=rate_limit,
                               detail=settings.openai_image_detail,
                               prepare=model_image_preparer(detail=settings.openai_image_detail,
                                                            max_pixels=settings.max_image_pixels))


def build_retry_policy(settings: Settings) -> RetryPolicy:
    """Return the model retry policy the settings choose."""
    return RetryPolicy(
        max_attempts=settings.model_max_attempts,
        base_seconds=settings.model_retry_base_seconds,
        max_seconds=settings.model_retry_max_seconds,
    )


@asynccontextmanager
async def build_bot_notifier(settings: Settings, backends: Backends):
    """Yield the paced, once-only Telegram notifier on a started Bot, shut down on exit."""
    bot = build_bot(settings)
    await bot.initialize()
    try:
        yield once_telegram_notifier(bot, backends, settings)
    finally:
        await bot.shutdown()


def chat_events(notifier: OnceNotifier, backends: Backends) -> AnalysisEvents:
    """Register the handlers that follow an analysis: the chat (final reply once) and the job's progress note."""
    events = AnalysisEvents()

    async def note_progress(analysis: Analysis, progress: Progress) -> None:
        if progress.stage is not Stage.QUEUED:
            await backends.jobs.registry.set_progress(analysis.id, progress.stage.value)

    events.on_progress(notifier.analysis_progress)
    events.on_progress(note_progress)
    events.on_completed(notifier.analysis_done)
    events.on_failed(notifier.analysis_failed)
    events.on_still_working(notifier.analysis_still_working)
    return events


async def open_runtime(settings: Settings, broker: AsyncBroker) -> WorkerRuntime:
    """Connect every client the analysis task needs, once, and log the settings it runs with."""
    quiet_http_loggers()
    archive = build_chart_archive(settings)
    backends = await open_backends(settings, broker)
    rate_limit = RedisModelRateLimit(backends.redis, requests_per_window=settings.model_requests_per_minute,
                                     tokens_per_window=settings.model_tokens_per_minute,
                                     window_seconds=settings.model_rate_window_seconds)
    analyzer = build_analyzer(settings, rate_limit)
    bot = build_bot(settings)
    await bot.initialize()
    notifier = once_telegram_notifier(bot, backends, settings)
    events = chat_events(notifier, backends)
    runner = AnalysisRunner(
        services=backends.services,
        analyzer=analyzer,
        notifier=events,
        retry=build_retry_policy(settings),
        reader=OfflineChartReader(max_pixels=settings.max_image_pixels),
        cancellation=backends.jobs.registry,
        pricing=settings.model_cost,
        archive=archive,
    )
    children = AnalysisChildren(notice_delay_seconds=settings.analysis_notice_delay_seconds,
                                timeout_seconds=settings.analysis_timeout_seconds)
    model = settings.openai_model if isinstance(analyzer, OpenAIChartAnalyzer) else "offline reader (OPENAI_API_KEY not set)"
    logger.info(
        "worker ready consumer=%s model=%s prompt=%s database=%s queue=%s concurrency=%d reclaim=%gs "
        "stop_grace=%gs model_limit=%d requests/%d tokens per %gs free_plan=%s/day,%s/period max_attempts=%d",
        getattr(broker, "consumer", "-"), model,
        "/".join(filter(None, (analyzer.prompt_version, getattr(analyzer, "multi_prompt_version", None)))), settings.mongodb_database,
        settings.queue_name, settings.worker_concurrency, settings.worker_reclaim_seconds,
        settings.worker_stop_grace_seconds, settings.model_requests_per_minute, settings.model_tokens_per_minute,
        settings.model_rate_window_seconds, backends.services.usage.plans.free.daily_limit,
        backends.services.usage.plans.free.period_limit, settings.model_max_attempts,
    )
    return WorkerRuntime(backends=backends, bot=bot, runner=runner, jobs=backends.jobs, children=children,
                         events=events, archive=archive)
