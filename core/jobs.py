"""Background job records as the core uses them, and the trader's /cancel and /status use cases."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from core.analysis import AnalysisServices, fail_analysis
from core.models import Analysis, AnalysisStatus, FailureKind
from core.ports import Notifier
from core.usage import user_key

logger = logging.getLogger(__name__)

ANALYZE_TASK_NAME = "chartbot.analyze_chart"


class JobState(str, Enum):
    """Lifecycle of a job in the registry."""

    SCHEDULED = "scheduled"
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


IN_FLIGHT = (JobState.SCHEDULED, JobState.QUEUED, JobState.RUNNING)


class JobKind(str, Enum):
    """Start mode of a job: now, at a set time, or by a recurring schedule."""

    IMMEDIATE = "immediate"
    DELAYED = "delayed"
    RECURRING = "recurring"


@dataclass(frozen=True)
class JobRecord:
    """One job's registry record; times are UTC."""

    id: str
    name: str
    kind: JobKind
    state: JobState
    created_at: datetime
    owner: str | None = None
    parent: str | None = None
    run_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    progress: str | None = None
    result: str | None = None
    error: str | None = None
    cancel_requested: bool = False


@dataclass(frozen=True)
class QueuedJob:
    """A trader's job in flight, with its place in the queue (1 is next) while it waits."""

    record: JobRecord
    position: int | None


@dataclass(frozen=True)
class CancelOutcome:
    """Result of /cancel: the state the analysis was in, and the uses refunded (0 when none)."""

    analysis_id: str
    previous: JobState
    refunded_units: int


class NothingToCancel(Exception):
    """The trader has no queued or running analysis."""

    def __init__(self, owner: str) -> None:
        super().__init__(f"no queued or running analysis for {owner}")
        self.owner = owner


async def user_jobs(services: AnalysisServices, platform: str, user_id: str) -> list[QueuedJob]:
    """Return the user's jobs in flight, oldest first, with queue positions for the queued ones."""
    if services.jobs is None:
        return []
    return await services.jobs.in_flight(user_key(platform, user_id))


async def cancel_latest_analysis(
    services: AnalysisServices, notifier: Notifier, platform: str, user_id: str
) -> CancelOutcome:
    """Cancel the user's newest queued or running analysis and refund its reservation once.

    A queued analysis never runs. A running one is marked so its worker stops at
    the next safe point. Raises NothingToCancel when there is no such analysis.
    """
    owner = user_key(platform, user_id)
    jobs = [] if services.jobs is None else await services.jobs.in_flight(owner)
    analyses = [job.record for job in jobs if job.record.name == ANALYZE_TASK_NAME and not job.record.cancel_requested]
    for record in reversed(analyses):
        previous = await services.jobs.cancel(record.id)
        if previous not in IN_FLIGHT:
            continue
        analysis = await services.analyses.get(record.id)
        if analysis is None:
            continue
        refunded = await cancel_analysis_record(analysis, services, notifier)
        logger.info("analysis cancelled by its owner analysis=%s user=%s previous=%s",
                    record.id, owner, previous.value)
        return CancelOutcome(analysis_id=record.id, previous=previous,
                             refunded_units=analysis.units if refunded else 0)
    raise NothingToCancel(owner)


async def cancel_analysis_record(analysis: Analysis, services: AnalysisServices, notifier: Notifier) -> bool:
    """Mark an unfinished analysis cancelled and refund it; False when it had already finished."""
    current = await services.analyses.get(analysis.id) or analysis
    if current.status in (AnalysisStatus.DONE, AnalysisStatus.FAILED):
        return False
    await fail_analysis(current, services, notifier, failure=FailureKind.CANCELLED, error="cancelled by the user")
    return True
