"""The whole flow in one process on embedded defaults: taskiq's in-memory broker,
in-memory records, a local image store, and the offline reader in place of the
model unless OPENAI_API_KEY is set."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from taskiq import InMemoryBroker

from adapters.local_images import LocalImageStore
from adapters.taskiq_queue import TaskiqAnalysisQueue
from datetime import timedelta

from core.analysis import AnalysisServices, utc_now
from core.analysis_run import AnalysisRunner
from core.memory import (
    InMemoryAnalysisRepository,
    InMemorySubscriptionRepository,
    InMemoryUsageCounters,
    InMemoryUsageLedger,
)
from core.plans import PlanTable
from core.ports import Notifier
from core.settings import Settings
from core.usage import UsageService
from workers.reading import OfflineChartReader
from workers.runtime import build_analyzer, build_retry_policy
from workers.tasks import register_tasks


@dataclass
class EmbeddedBot:
    """A running in-process bot: the broker that runs the worker task, and the services."""

    broker: InMemoryBroker
    services: AnalysisServices
    runner: AnalysisRunner
    image_folder: tempfile.TemporaryDirectory

    async def settle(self) -> None:
        """Wait until every queued analysis has finished."""
        await self.broker.wait_all()

    async def close(self) -> None:
        """Stop the broker and remove the stored images."""
        await self.broker.shutdown()
        self.image_folder.cleanup()


async def start_embedded(settings: Settings, notifier: Notifier, *, plans: PlanTable) -> EmbeddedBot:
    """Build and start the in-process bot."""
    broker = InMemoryBroker()
    register_tasks(broker)
    image_folder = tempfile.TemporaryDirectory(prefix="chartbot-images-")
    services = AnalysisServices(
        analyses=InMemoryAnalysisRepository(),
        images=LocalImageStore(Path(image_folder.name)),
        usage=UsageService(
            counters=InMemoryUsageCounters(),
            ledger=InMemoryUsageLedger(),
            subscriptions=InMemorySubscriptionRepository(),
            plans=plans,
            past_due_grace=timedelta(days=settings.past_due_grace_days),
            clock=utc_now,
        ),
        queue=TaskiqAnalysisQueue(broker),
        image_limits=settings.image_limits(),
    )
    runner = AnalysisRunner(
        services=services,
        analyzer=build_analyzer(settings),
        notifier=notifier,
        retry=build_retry_policy(settings),
        reader=OfflineChartReader(max_pixels=settings.max_image_pixels),
    )
    broker.state.runner = runner
    await broker.startup()
    return EmbeddedBot(broker=broker, services=services, runner=runner, image_folder=image_folder)
