"""taskiq tasks, registered by name on whichever broker runs them."""

from __future__ import annotations

import asyncio
import logging

from taskiq import AsyncBroker, Context, TaskiqDepends

from adapters.taskiq_queue import ANALYZE_TASK_NAME
from core.analysis_run import AnalysisRunner, run_analysis
from core.events import Progress, Stage
from core.models import AnalysisStatus, FailureKind
from workers.jobs.children import end_main_job, schedule_analysis_children
from workers.jobs.tasks import register_job_tasks

logger = logging.getLogger(__name__)

# Analyses at the front of the queue whose acknowledgement shows their new place when one starts.
# NOTE: analyses further back keep the place shown when they were queued until they near the front.
POSITIONS_SHOWN = 3
_background: set[asyncio.Task] = set()


async def show_queue_front(runtime) -> None:
    """Edit the new queue positions into the acknowledgements of the first few queued analyses."""
    try:
        for position, job_id in enumerate(await runtime.jobs.front_of_queue(POSITIONS_SHOWN), start=1):
            analysis = await runtime.runner.services.analyses.get(job_id)
            if analysis is not None and analysis.status is AnalysisStatus.QUEUED:
                await runtime.events.analysis_progress(analysis, Progress(Stage.QUEUED, position=position))
    except Exception:
        logger.exception("queue positions not updated")


async def analyze_chart(analysis_id: str, context: Context = TaskiqDepends()) -> str:
    """Run one queued analysis and reply in its chat; returns the final status.

    With a job registry (the Redis worker) a cancelled job is skipped, the
    analysis's notice and watchdog are scheduled, and both are cancelled when
    it ends. The in-process demo has no registry and runs the analysis alone.
    """
    runner: AnalysisRunner = context.state.runner
    runtime = getattr(context.state, "runtime", None)
    jobs = getattr(runtime, "jobs", None)
    if jobs is None or await jobs.registry.get(analysis_id) is None:
        analysis = await run_analysis(analysis_id, runner)
        return analysis.status.value

    if not await jobs.registry.start(analysis_id):
        logger.info("analysis job skipped because it was cancelled analysis=%s", analysis_id)
        return "cancelled"
    await schedule_analysis_children(jobs, analysis_id, runtime.children)
    task = asyncio.create_task(show_queue_front(runtime))
    _background.add(task)
    task.add_done_callback(_background.discard)
    try:
        analysis = await run_analysis(analysis_id, runner)
    except Exception:
        # Model and chart failures end inside run_analysis; what reaches here is a lost database or
        # network call. The job stays running: the broker delivers it again after the reclaim time,
        # and the watchdog fails and refunds the analysis if it never gets through.
        logger.exception("analysis interrupted; it runs again analysis=%s", analysis_id)
        raise
    failed = analysis.status is AnalysisStatus.FAILED
    result = analysis.failure.value if failed and analysis.failure else analysis.status.value
    await end_main_job(jobs, analysis_id, failed=failed, result=result,
                       cancelled=analysis.failure is FailureKind.CANCELLED)
    return analysis.status.value


def register_tasks(broker: AsyncBroker) -> None:
    """Register every task on `broker` under its fixed name."""
    broker.register_task(analyze_chart, task_name=ANALYZE_TASK_NAME)
    register_job_tasks(broker)
