"""The job layer's taskiq tasks: maintenance, and an analysis's still-working notice and watchdog."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from taskiq import AsyncBroker, Context, TaskiqDepends

from core.analysis import fail_analysis
from core.archive import retry_pending_archives
from core.models import AnalysisStatus, FailureKind
from workers.jobs.names import MAINTENANCE_TASK_NAME, STILL_WORKING_TASK_NAME, WATCHDOG_TASK_NAME
from workers.jobs.retention import remove_expired
from workers.jobs.scheduling import RecurringSchedules

logger = logging.getLogger(__name__)

# Analyses whose chart uploads one maintenance run retries, oldest first; the rest wait for the next run.
ARCHIVE_RETRY_LIMIT = 50


async def _tracked(context: Context, job_id: str, work) -> str:
    """Run `work()` as job `job_id`: skipped when cancelled, then marked completed or failed."""
    registry = context.state.runtime.jobs.registry
    if not await registry.start(job_id):
        logger.info("job skipped because it was cancelled job=%s", job_id)
        return "skipped"
    try:
        result = await work()
    except Exception as error:
        logger.exception("job failed job=%s", job_id)
        await registry.finish(job_id, failed=True, error=repr(error))
        raise
    await registry.finish(job_id, result=result)
    return result


async def maintenance(job_id: str, context: Context = TaskiqDepends()) -> str:
    """Remove expired job records and orphaned schedules, and retry the chart uploads that failed."""
    async def work() -> str:
        runtime = context.state.runtime
        registry = runtime.jobs.registry
        report = await remove_expired(registry, RecurringSchedules(registry.redis), datetime.now(UTC))
        result = f"removed {report.job_records} job records, {report.schedules} schedules"
        if runtime.archive is not None:
            services = runtime.runner.services
            completed = await retry_pending_archives(analyses=services.analyses, images=services.images,
                                                     archive=runtime.archive, limit=ARCHIVE_RETRY_LIMIT)
            result += f"; archived the charts of {completed} analyses"
        return result
    return await _tracked(context, job_id, work)


async def analysis_still_working(job_id: str, analysis_id: str, context: Context = TaskiqDepends()) -> str:
    """Tell the trader that their analysis is still running."""
    async def work() -> str:
        runner = context.state.runtime.runner
        analysis = await runner.services.analyses.get(analysis_id)
        if analysis is None or analysis.status is not AnalysisStatus.RUNNING:
            return "not running"
        await runner.notifier.analysis_still_working(analysis)
        return "notice sent"
    return await _tracked(context, job_id, work)


async def analysis_watchdog(job_id: str, analysis_id: str, context: Context = TaskiqDepends()) -> str:
    """Fail and refund an analysis still unfinished at its timeout, and ask its worker to stop."""
    async def work() -> str:
        runtime = context.state.runtime
        services = runtime.runner.services
        analysis = await services.analyses.get(analysis_id)
        if analysis is None or analysis.status in (AnalysisStatus.DONE, AnalysisStatus.FAILED):
            return "already finished"
        await runtime.jobs.registry.cancel(analysis_id)
        logger.warning("analysis timed out analysis=%s user=%s", analysis_id, analysis.user_id)
        await fail_analysis(analysis, services, runtime.runner.notifier, failure=FailureKind.TIMED_OUT,
                            error="timed out")
        return "timed out"
    return await _tracked(context, job_id, work)


def register_job_tasks(broker: AsyncBroker) -> None:
    """Register the job layer's tasks on `broker` under their fixed names."""
    broker.register_task(maintenance, task_name=MAINTENANCE_TASK_NAME)
    broker.register_task(analysis_still_working, task_name=STILL_WORKING_TASK_NAME)
    broker.register_task(analysis_watchdog, task_name=WATCHDOG_TASK_NAME)
