"""Records and requests, validated with pydantic at the boundary."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from core.analysis_result import AnalysisResult
from core.usage_records import Reservation

CAPTION_MAX_CHARS = 1000

ImageMime = Literal["image/png", "image/jpeg", "image/webp"]


class Platform(str, Enum):
    """Chat platform a request came from."""

    TELEGRAM = "telegram"
    DISCORD = "discord"
    CONSOLE = "console"


class AnalysisStatus(str, Enum):
    """Lifecycle of an analysis."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class FailureKind(str, Enum):
    """Why an analysis failed; the chat message depends on it."""

    MODEL = "model"
    INVALID_REPLY = "invalid_reply"
    NOT_A_CHART = "not_a_chart"
    QUEUE = "queue"
    IMAGE_MISSING = "image_missing"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"


class ImageInfo(BaseModel):
    """Metadata of an uploaded image, kept without its bytes."""

    model_config = ConfigDict(frozen=True)

    mime_type: ImageMime
    width: int = Field(gt=0)
    height: int = Field(gt=0)
    size_bytes: int = Field(gt=0)
    sha256: str = Field(min_length=64, max_length=64)


class ChartImage(BaseModel):
    """One uploaded chart: its checked metadata and its bytes."""

    info: ImageInfo
    data: bytes = Field(repr=False)


class AnalysisJob(BaseModel):
    """A trader's request to analyse one or more charts, as the chat adapter received it."""

    platform: Platform
    user_id: str = Field(min_length=1, max_length=64)
    chat_id: str = Field(min_length=1, max_length=64)
    message_id: str | None = Field(default=None, max_length=64)
    images: list[ChartImage] = Field(min_length=1)
    caption: str | None = Field(default=None, max_length=CAPTION_MAX_CHARS)
    media_group_id: str | None = Field(default=None, max_length=64, description="the Telegram album of the charts")


class StoredImage(BaseModel):
    """An image kept in the image store for the worker."""

    image_id: str
    info: ImageInfo


class TokenUsage(BaseModel):
    """Tokens the model billed for one analysis."""

    input_tokens: int = Field(default=0, ge=0)
    output_tokens: int = Field(default=0, ge=0)


class SwingPoint(BaseModel):
    """A swing high or low the chart reader found."""

    index: int = Field(ge=0, description="bar index from the left")
    fraction: float = Field(description="height on the price axis: 0 is the bottom of the plot, 1 the top")
    price: float | None = None


class PriceLevel(BaseModel):
    """A price level where the chart turned more than once."""

    fraction: float
    price: float | None = None
    touches: int = Field(ge=1)
    kind: Literal["support", "resistance"]


class ChartFindings(BaseModel):
    """Measurements of the offline chart reader on one image."""

    is_chart: bool
    confidence: float = Field(ge=0, le=1)
    chart_type: Literal["candle", "ohlc", "line"] | None = None
    bar_count: int = Field(default=0, ge=0)
    trend: Literal["up", "down", "sideways"] | None = None
    change_fraction: float | None = Field(default=None, description="last minus first close, in plot heights")
    swing_highs: list[SwingPoint] = Field(default_factory=list)
    swing_lows: list[SwingPoint] = Field(default_factory=list)
    levels: list[PriceLevel] = Field(default_factory=list)
    last_bar_direction: Literal["up", "down", "flat"] | None = None
    last_bar_patterns: list[str] = Field(default_factory=list)
    last_price: float | None = None
    price_axis_read: bool = False
    ocr_available: bool = False
    notes: list[str] = Field(default_factory=list)
    chart_area: tuple[int, int, int, int] | None = Field(
        default=None,
        description="(x0, y0, x1, y1) in pixels of the upright image: the plot with its price and time axis labels",
    )


class PreparedImage(BaseModel):
    """The record of one chart's preparation for the model, and of the vision tokens it saved."""

    original_width: int = Field(gt=0)
    original_height: int = Field(gt=0)
    width: int = Field(gt=0, description="as sent to the model")
    height: int = Field(gt=0, description="as sent to the model")
    cropped: bool = False
    detail: Literal["low", "high"] = "high"
    tokens_original: int = Field(ge=0, description="image tokens of the file as the user sent it, at `detail`")
    tokens_sent: int = Field(ge=0, description="image tokens of the prepared image, at `detail`")


class ArchivedChart(BaseModel):
    """A chart kept in the image archive (Cloudinary), for /history."""

    image_id: str
    public_id: str
    secure_url: str


class ChartAgreement(BaseModel):
    """Whether the model's reading of one chart matched what the offline reader measured."""

    chart: int = Field(ge=1)
    reader_trend: Literal["up", "down", "sideways"] | None = None
    model_trend: Literal["up", "down", "sideways"] | None = None
    trend_agrees: bool | None = Field(default=None, description="None when either side has no trend")


class ModelAnswer(BaseModel):
    """The vision model's output for an analysis.

    `text` is what the offline analyzer writes. The vision model returns
    `result` (structured outputs) and leaves `text` empty.
    """

    text: str = ""
    result: AnalysisResult | None = None
    model: str
    usage: TokenUsage
    prompt_version: str | None = Field(default=None, description="the prompt this answer was made with")
    prepared: list[PreparedImage] = Field(default_factory=list, description="one per chart, as sent to the model")


class Analysis(BaseModel):
    """The stored record of one analysis request and its outcome."""

    id: str
    platform: Platform
    user_id: str
    chat_id: str
    message_id: str | None = None
    ack_message_id: str | None = None
    caption: str | None = None
    images: list[StoredImage]
    status: AnalysisStatus = AnalysisStatus.QUEUED
    units: int = Field(ge=1, description="uses reserved for this analysis")
    reservation: Reservation
    refunded: bool = False
    refunded_charts: list[int] = Field(
        default_factory=list,
        description="charts of a finished album refunded: the reader found them not to be charts, or the model "
                    "could not read them")
    model: str | None = None
    prompt_version: str | None = None
    usage: TokenUsage | None = None
    result_text: str | None = Field(default=None, description="the offline analyzer's text")
    result: AnalysisResult | None = Field(default=None, description="the model's structured analysis")
    cost_usd: float | None = Field(default=None, ge=0, description="model cost from the MODEL_PRICES table")
    prepared: list[PreparedImage] = Field(default_factory=list)
    agreement: list[ChartAgreement] = Field(default_factory=list)
    archived: list[ArchivedChart] = Field(default_factory=list)
    archive_pending: bool = Field(default=False, description="an upload to the archive failed and waits for a retry")
    media_group_id: str | None = Field(default=None, description="the Telegram album the charts came in")
    error: str | None = None
    failure: FailureKind | None = None
    findings: list[ChartFindings] = Field(default_factory=list)
    attempts: int = 0
    model_seconds: float | None = Field(default=None, description="time inside the model calls, retries included")
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    replied_at: datetime | None = Field(default=None, description="when the final reply reached the chat")

