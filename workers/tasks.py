"""taskiq tasks, registered by name on whichever broker runs them."""

from __future__ import annotations

import logging

from taskiq import AsyncBroker, Context, TaskiqDepends

from adapters.taskiq_queue import ANALYZE_TASK_NAME
from core.analysis_run import AnalysisRunner, run_analysis

logger = logging.getLogger(__name__)


async def analyze_chart(analysis_id: str, context: Context = TaskiqDepends()) -> str:
    """Run one queued analysis and reply in its chat; returns the final status."""
    runner: AnalysisRunner = context.state.runner
    analysis = await run_analysis(analysis_id, runner)
    return analysis.status.value


def register_tasks(broker: AsyncBroker) -> None:
    """Register every task on `broker` under its fixed name."""
    broker.register_task(analyze_chart, task_name=ANALYZE_TASK_NAME)
