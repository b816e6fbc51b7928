"""Clients a worker process keeps while it runs: backends, the chart reader, the model, the chat notifier."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from dataclasses import dataclass

from taskiq import AsyncBroker
from telegram import Bot

from adapters.backends import Backends, open_backends
from adapters.redis_jobs import RedisJobControl
from bot.telegram.client import build_bot, quiet_http_loggers
from bot.telegram.notifier import TelegramNotifier
from core.analysis_run import AnalysisRunner, RetryPolicy
from core.ports import ChartAnalyzer
from core.settings import Settings
from workers.jobs.children import AnalysisChildren
from workers.offline_analyzer import OfflineAnalyzer
from workers.openai_analyzer import OpenAIChartAnalyzer, build_openai_client
from workers.prompt import load_prompt
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

    async def close(self) -> None:
        """Close every client."""
        await self.bot.shutdown()
        await self.backends.close()


def build_analyzer(settings: Settings) -> ChartAnalyzer:
    """Create the vision model client, or the offline analyzer when OPENAI_API_KEY is not set."""
    if settings.openai_api_key is None or not settings.openai_api_key.get_secret_value():
        return OfflineAnalyzer()
    client = build_openai_client(
        api_key=settings.openai_api_key.get_secret_value(),
        base_url=settings.openai_base_url,
        timeout_seconds=settings.openai_timeout_seconds,
    )
    return OpenAIChartAnalyzer(client, model=settings.openai_model, prompt=load_prompt())


def build_retry_policy(settings: Settings) -> RetryPolicy:
    """Return the model retry policy the settings choose."""
    return RetryPolicy(
        max_attempts=settings.model_max_attempts,
        base_seconds=settings.model_retry_base_seconds,
        max_seconds=settings.model_retry_max_seconds,
    )


@asynccontextmanager
async def build_bot_notifier(settings: Settings):
    """Yield a TelegramNotifier on a started Bot, shut down on exit."""
    bot = build_bot(settings)
    await bot.initialize()
    try:
        yield TelegramNotifier(bot)
    finally:
        await bot.shutdown()


async def open_runtime(settings: Settings, broker: AsyncBroker) -> WorkerRuntime:
    """Connect every client the analysis task needs."""
    quiet_http_loggers()
    analyzer = build_analyzer(settings)
    backends = await open_backends(settings, broker)
    bot = build_bot(settings)
    await bot.initialize()
    runner = AnalysisRunner(
        services=backends.services,
        analyzer=analyzer,
        notifier=TelegramNotifier(bot),
        retry=build_retry_policy(settings),
        reader=OfflineChartReader(max_pixels=settings.max_image_pixels),
        cancellation=backends.jobs.registry,
    )
    children = AnalysisChildren(notice_delay_seconds=settings.analysis_notice_delay_seconds,
                                timeout_seconds=settings.analysis_timeout_seconds)
    model = settings.openai_model if isinstance(analyzer, OpenAIChartAnalyzer) else "offline reader (OPENAI_API_KEY not set)"
    logger.info(
        "worker ready model=%s prompt=%s database=%s queue=%s free_plan=%s/day,%s/period max_attempts=%d",
        model, analyzer.prompt_version, settings.mongodb_database, settings.queue_name,
        backends.services.usage.plans.free.daily_limit, backends.services.usage.plans.free.period_limit,
        settings.model_max_attempts,
    )
    return WorkerRuntime(backends=backends, bot=bot, runner=runner, jobs=backends.jobs, children=children)
