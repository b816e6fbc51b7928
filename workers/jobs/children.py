"""Background jobs that belong to a main job, and ending the main job so none of them is left pending."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from adapters.redis_jobs import RedisJobControl
from core.jobs import JobState
from workers.jobs.names import STILL_WORKING_TASK_NAME, WATCHDOG_TASK_NAME

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AnalysisChildren:
    """Delays of an analysis's child jobs, in seconds after it starts."""

    notice_delay_seconds: float
    timeout_seconds: float


async def schedule_analysis_children(control: RedisJobControl, analysis_id: str, children: AnalysisChildren) -> None:
    """Schedule the still-working notice and the watchdog of a running analysis.

    Their ids derive from the analysis id, so a job delivered again does not schedule them twice.
    """
    now = datetime.now(UTC)
    for name, delay in ((STILL_WORKING_TASK_NAME, children.notice_delay_seconds),
                        (WATCHDOG_TASK_NAME, children.timeout_seconds)):
        job_id = f"{analysis_id}-{name.rsplit('.', 1)[-1]}"
        if await control.registry.get(job_id) is not None:
            continue
        # The task receives its own job id first, like every job-layer task.
        await control.enqueue_at(name, [job_id, analysis_id], now + timedelta(seconds=delay), parent=analysis_id,
                                 job_id=job_id)


async def end_main_job(control: RedisJobControl, job_id: str, *, failed: bool, result: str,
                       cancelled: bool = False) -> None:
    """Mark a main job completed, failed or cancelled, and cancel every child still scheduled or queued."""
    if cancelled:
        await control.registry.transition(job_id, JobState.CANCELLED, JobState.RUNNING)
    else:
        await control.registry.finish(job_id, failed=failed, result=None if failed else result,
                                      error=result if failed else None)
    cancelled = await control.registry.cancel_children(job_id)
    logger.info("job ended job=%s failed=%s children_cancelled=%d", job_id, failed, cancelled)
