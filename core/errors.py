"""Exceptions the core raises; the chat adapters turn each into a message."""

from __future__ import annotations

from datetime import datetime
from enum import Enum


class ChartBotError(Exception):
    """Base class of the errors the core raises on purpose."""


class MissingSetting(ChartBotError):
    """A process was started without a setting it needs."""

    def __init__(self, name: str) -> None:
        super().__init__(f"{name} is not set: set it in the environment or in .env")
        self.name = name


class ImageProblem(str, Enum):
    """Reason an uploaded file cannot be analysed."""

    EMPTY = "empty"
    NOT_AN_IMAGE = "not_an_image"
    UNSUPPORTED_FORMAT = "unsupported_format"
    ANIMATED = "animated"
    TOO_LARGE = "too_large"
    TOO_MANY_PIXELS = "too_many_pixels"
    TOO_SMALL = "too_small"
    CORRUPT = "corrupt"


class InvalidChartImage(ChartBotError):
    """An uploaded file is not an image the bot can analyse."""

    def __init__(self, problem: ImageProblem, detail: str) -> None:
        super().__init__(f"{problem.value}: {detail}")
        self.problem = problem
        self.detail = detail


class InvalidChartInRequest(ChartBotError):
    """One chart of a multi-chart request is not an image the bot can analyse, so the whole request is rejected."""

    def __init__(self, *, position: int, count: int, error: InvalidChartImage) -> None:
        super().__init__(f"chart {position} of {count}: {error}")
        self.position = position
        self.count = count
        self.error = error


class CaptionTooLong(ChartBotError):
    """A caption is longer than the model prompt takes."""

    def __init__(self, *, length: int, limit: int) -> None:
        super().__init__(f"caption of {length} characters, limit {limit}")
        self.length = length
        self.limit = limit


class UsageLimitExceeded(ChartBotError):
    """A request would take the user past their limit."""

    def __init__(self, *, limit: int, used: int, requested: int, resets_at: datetime, limit_kind: str = "daily",
                 plan_name: str = "Free", is_subscriber: bool = False) -> None:
        super().__init__(f"{limit_kind} limit of {limit} reached on {plan_name} ({used} used, {requested} requested)")
        self.limit = limit
        self.used = used
        self.requested = requested
        self.resets_at = resets_at
        self.limit_kind = limit_kind
        self.plan_name = plan_name
        self.is_subscriber = is_subscriber


class AnalysisNotFound(ChartBotError):
    """No analysis has the given id."""

    def __init__(self, analysis_id: str) -> None:
        super().__init__(f"analysis {analysis_id} not found")
        self.analysis_id = analysis_id


class ModelError(ChartBotError):
    """The vision model did not return an analysis."""


class TransientModelError(ModelError):
    """A model failure worth retrying: rate limit, server error, timeout."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ModelRateLimited(TransientModelError):
    """The model refused the call for its rate limit (HTTP 429); worth waiting for, never a failure."""


class PermanentModelError(ModelError):
    """A model failure that a retry would not fix: bad request, authentication, refusal."""


class InvalidModelReply(ModelError):
    """The model's structured response is invalid: broken JSON, a missing field, or prices that contradict
    each other. It is requested once more, then the analysis fails with a refund."""


class TooManyCharts(ChartBotError):
    """A request carries more charts than one analysis takes."""

    def __init__(self, count: int, limit: int) -> None:
        super().__init__(f"{count} charts in one request; the limit is {limit}")
        self.count = count
        self.limit = limit


class ChartUnreadableError(ChartBotError):
    """The chart reader could not read an image at all."""


class ArchiveUnavailable(ChartBotError):
    """A chart could not be uploaded to the archive; the maintenance job tries again."""


class ArchiveRejected(ArchiveUnavailable):
    """The archive rejected the chart file itself, such as a file over the plan's size limit.

    A retry would fail the same way, so the chart stays in the image store only.
    """


class ReplyNotSent(ChartBotError):
    """The final reply was not sent because its reply lock or record could not be read; deliver the job again."""
