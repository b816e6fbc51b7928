"""The one configuration object, read from the environment and an optional .env file."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.errors import MissingSetting
from core.images import ImageLimits
from core.plans import PlanTable, load_plans

logger = logging.getLogger(__name__)

# Plan warnings this process has logged, by warning and plans file.
_LOGGED_PLAN_WARNINGS: set[tuple[str, Path | None]] = set()

TELEGRAM_MAX_DOWNLOAD_BYTES = 20 * 1024 * 1024


class ModelPrice(BaseModel):
    """A model's price in USD per million tokens."""

    input_per_million: float = Field(ge=0)
    output_per_million: float = Field(ge=0)


# OpenAI's list prices (USD per million tokens) when this table was written; MODEL_PRICES overrides them.
DEFAULT_MODEL_PRICES = {
    "gpt-4o-mini": ModelPrice(input_per_million=0.15, output_per_million=0.60),
    "gpt-4o": ModelPrice(input_per_million=2.50, output_per_million=10.00),
}


class Settings(BaseSettings):
    """ChartBot settings; each field is read from the environment variable of the same name in upper case."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    telegram_bot_token: SecretStr | None = None
    telegram_api_url: str = "https://api.telegram.org"

    openai_api_key: SecretStr | None = None
    openai_base_url: str | None = None
    openai_model: str = "gpt-4o"
    openai_timeout_seconds: float = Field(default=60.0, gt=0)
    model_max_attempts: int = Field(default=4, ge=1, description="model calls per analysis before it fails")
    model_retry_base_seconds: float = Field(default=2.0, ge=0, description="first backoff; doubles per retry")
    model_retry_max_seconds: float = Field(default=60.0, ge=0, description="cap on one backoff, Retry-After included")

    openai_image_detail: Literal["low", "high"] = Field(
        default="high", description="vision detail level the charts are prepared for and sent at")
    model_prices: dict[str, ModelPrice] = Field(
        default_factory=lambda: dict(DEFAULT_MODEL_PRICES),
        description="USD per million input and output tokens, by model name prefix (JSON)")
    media_group_quiet_seconds: float = Field(
        default=1.5, gt=0, description="an album is complete once no photo of it arrived for this long")
    max_charts_per_request: int = Field(default=4, ge=1, le=10, description="charts one analysis takes")

    cloudinary_url: SecretStr | None = Field(
        default=None, description="cloudinary://KEY:SECRET@CLOUD; charts stay in MongoDB only when unset")
    cloudinary_upload_prefix: str | None = Field(
        default=None, description="Cloudinary API base URL; the SDK's default when unset")
    cloudinary_folder: str = Field(default="chartbot", description="top folder; each user's charts go in a subfolder")

    mongodb_url: str | None = None
    mongodb_database: str = "chartbot"
    redis_url: str | None = None
    queue_name: str = "chartbot:analyses"

    worker_processes: int = Field(default=1, ge=1, description="worker child processes per `chartbot worker`")
    worker_stop_grace_seconds: float = Field(
        default=20, gt=0, description="seconds a stopping worker has to finish its jobs before it exits anyway"
    )
    worker_concurrency: int = Field(default=4, ge=1, description="analyses one worker process runs at once")
    worker_reclaim_seconds: float = Field(
        default=60, ge=1, description="seconds after which a job of a dead worker is taken by another worker")
    model_requests_per_minute: int = Field(
        default=500, ge=1, description="model calls per minute across every worker process")
    model_tokens_per_minute: int = Field(
        default=30_000, ge=1, description="model tokens (input and output) per minute across every worker process")
    model_rate_window_seconds: float = Field(
        default=60, gt=0, description="window the model limits count over; one minute except in tests")
    chat_edit_interval_seconds: float = Field(
        default=1.0, ge=0, description="minimum seconds between two edits in one private chat")
    group_chat_edit_interval_seconds: float = Field(
        default=3.0, ge=0, description="minimum seconds between two edits in one group chat")

    job_completed_retention_seconds: float = Field(
        default=3600, ge=0, description="how long a completed or cancelled job record is kept")
    job_failed_retention_seconds: float = Field(
        default=7 * 24 * 3600, ge=0, description="how long a failed job record is kept")
    analysis_notice_delay_seconds: float = Field(
        default=45, gt=0, description="seconds after its start that a running analysis sends a still-working notice")
    analysis_timeout_seconds: float = Field(
        default=600, gt=0, description="seconds after its start that the watchdog fails and refunds an analysis")
    scheduler_interval_seconds: float = Field(
        default=1.0, gt=0, description="how often the scheduler looks for due jobs and schedules")
    maintenance_cron: str = Field(default="*/10 * * * *", description="cron of the job that removes expired records")

    plans_file: Path | None = Field(default=None, description="TOML plans file; the shipped defaults when unset")
    free_daily_limit: int | None = Field(default=None, ge=0, description="overrides the free plan's daily limit")
    past_due_grace_days: float = Field(default=3, ge=0, description="days a past_due subscription keeps its tier")

    stripe_secret_key: SecretStr | None = None
    stripe_webhook_secret: SecretStr | None = None
    stripe_api_base: str = "https://api.stripe.com"
    stripe_timeout_seconds: float = Field(default=10.0, gt=0, description="timeout of one Stripe API call")
    stripe_webhook_tolerance_seconds: int = Field(
        default=300, ge=1, description="oldest Stripe-Signature timestamp accepted, in seconds")
    checkout_success_url: str | None = Field(default=None, description="after payment; the bot's t.me link when unset")
    checkout_cancel_url: str | None = Field(default=None, description="after a cancelled checkout; as above")
    billing_portal_return_url: str | None = Field(
        default=None, description="where the Customer Portal links back to; Stripe's portal default when unset")

    web_host: str = "127.0.0.1"
    web_port: int = Field(default=8080, ge=0, le=65535)
    telegram_webhook_url: str | None = Field(
        default=None, description="public HTTPS URL of POST /telegram/webhook; `chartbot web` registers it")
    telegram_webhook_secret: SecretStr | None = None

    max_image_bytes: int = Field(default=TELEGRAM_MAX_DOWNLOAD_BYTES, gt=0)
    max_image_pixels: int = Field(default=40_000_000, gt=0, description="width x height accepted before decoding")
    min_image_side: int = Field(default=64, gt=0, description="smallest width or height in pixels")

    log_level: str = "INFO"

    def plan_table(self) -> PlanTable:
        """Load the plans file, with FREE_DAILY_LIMIT applied to the free plan when it is set."""
        table = load_plans(self.plans_file)
        if self.free_daily_limit is not None:
            table = table.model_copy(update={"free": table.free.model_copy(update={"daily_limit": self.free_daily_limit})})
        for warning in table.limit_warnings():
            # A process loads the plans for more than one service; the operator needs each warning once.
            if (warning, self.plans_file) in _LOGGED_PLAN_WARNINGS:
                continue
            _LOGGED_PLAN_WARNINGS.add((warning, self.plans_file))
            logger.warning("plan limits do not fit together: %s (plans file %s, FREE_DAILY_LIMIT %s)", warning,
                           self.plans_file or "core/plans.toml", self.free_daily_limit)
        return table

    def image_limits(self) -> ImageLimits:
        """Return the upload limits these settings choose."""
        return ImageLimits(max_bytes=self.max_image_bytes, max_pixels=self.max_image_pixels,
                           min_side=self.min_image_side)

    def model_cost(self, model: str, input_tokens: int, output_tokens: int) -> float | None:
        """USD cost of one analysis's tokens by the price table (longest matching name prefix), or None."""
        names = [name for name in self.model_prices if model.startswith(name)]
        if not names:
            return None
        price = self.model_prices[max(names, key=len)]
        cost = input_tokens * price.input_per_million / 1e6 + output_tokens * price.output_per_million / 1e6
        return round(cost, 6)

    def require(self, *names: str) -> None:
        """Raise MissingSetting for the first of `names` (field names) that is not set."""
        for name in names:
            value = getattr(self, name)
            if value is None or (isinstance(value, SecretStr) and not value.get_secret_value()) or value == "":
                raise MissingSetting(name.upper())
