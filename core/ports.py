"""Protocols for everything the core needs from outside.

Implementations live in adapters/ (MongoDB, Redis, taskiq), bot/ (chat
notifiers) and workers/ (the vision model); core/memory.py has in-memory
ones for unit tests and the demo.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from core.billing_records import BillingNotice, BillingUser, CheckoutRequest, CheckoutSession, SubscriptionState
from core.models import Analysis, ArchivedChart, ChartFindings, ChartImage, ImageInfo, ModelAnswer
from core.subscriptions import Subscription
from core.usage_records import CounterState, CounterWindow, LedgerEntry, ReserveOutcome

if TYPE_CHECKING:
    from core.albums import AlbumClose, AlbumPart, PartAdded
    from core.events import Progress
    from core.jobs import JobState, QueuedJob


class AnalysisRepository(Protocol):
    """Stores analysis records."""

    async def add(self, analysis: Analysis) -> None:
        """Insert a new record; its id must be unused."""
        ...

    async def get(self, analysis_id: str) -> Analysis | None:
        """Return the record, or None when there is none."""
        ...

    async def update(self, analysis_id: str, changes: dict[str, Any]) -> None:
        """Set the given fields (by Analysis field name) on one record."""
        ...

    async def list_for_user(self, platform: str, user_id: str, *, limit: int, skip: int = 0) -> list[Analysis]:
        """Return a user's records newest first, leaving out the `skip` newest."""
        ...

    async def count_for_user(self, platform: str, user_id: str) -> int:
        """Return how many records a user has."""
        ...

    async def archive_pending(self, *, limit: int) -> list[Analysis]:
        """Return records whose charts still wait to be uploaded to the archive, oldest first."""
        ...


class ImageStore(Protocol):
    """Keeps chart images where the worker can read them."""

    async def put(self, image_id: str, info: ImageInfo, data: bytes) -> None:
        """Store one image under a new id."""
        ...

    async def get(self, image_id: str) -> bytes:
        """Return the image's bytes; raises KeyError when it is missing."""
        ...

    async def delete(self, image_id: str) -> None:
        """Remove an image; removing a missing one is not an error."""
        ...


class ChartArchive(Protocol):
    """Keeps charts for later viewing (Cloudinary), apart from the working image store."""

    async def upload(self, image_id: str, data: bytes, *, folder: str) -> ArchivedChart:
        """Upload one chart under `folder`; raises ArchiveUnavailable when the upload fails."""
        ...


class AlbumBuffer(Protocol):
    """Parts of chat albums, shared by every bot process until each album is closed."""

    async def add(self, part: AlbumPart) -> PartAdded:
        """Append a part and record its arrival time.

        Returns LATE, storing nothing, when the album was closed without the part,
        and DUPLICATE when the album already has it.
        """
        ...

    async def close(self, chat_id: str, media_group_id: str, *, quiet_seconds: float) -> AlbumClose:
        """Close the album when no part arrived for `quiet_seconds`; only the first such call gets its parts."""
        ...


class UsageCounters(Protocol):
    """Per-user use counters that admit or refuse atomically across processes."""

    async def reserve(self, window: CounterWindow, *, units: int, daily_limit: int | None,
                      period_limit: int) -> ReserveOutcome:
        """Count `units` unless that passes the daily limit or the period limit plus bonus.

        Returns loaded=False, counting nothing, when the counters of the
        window's period are not loaded and must be rebuilt first.
        """
        ...

    async def refund(self, window: CounterWindow, *, units: int, refund_key: str) -> bool:
        """Take `units` off the day, period and total once per `refund_key`; False on a repeat."""
        ...

    async def read(self, window: CounterWindow) -> CounterState | None:
        """Return the counts, or None when they are not loaded."""
        ...

    async def load(self, window: CounterWindow, state: CounterState) -> bool:
        """Set the counts unless another process already loaded them; True when this call did."""
        ...

    async def add_bonus(self, window: CounterWindow, *, units: int) -> None:
        """Raise the period's bonus when the counters are loaded; otherwise the next load counts it."""
        ...


class UsageLedger(Protocol):
    """The record of every use, refund and grant."""

    async def record(self, entry: LedgerEntry) -> bool:
        """Insert an entry; False when an entry with its id already exists."""
        ...

    async def totals(self, user_key: str, *, day: str, period: str) -> CounterState:
        """Sum a user's entries into counts for a day, a period and all time."""
        ...

    async def entries(self, user_key: str, *, limit: int) -> list[LedgerEntry]:
        """Return a user's newest entries first."""
        ...


class SubscriptionRepository(Protocol):
    """Subscription records, one per user, written by the billing side."""

    async def get(self, platform: str, user_id: str) -> Subscription | None:
        """Return the user's subscription, or None."""
        ...

    async def put(self, subscription: Subscription) -> None:
        """Insert or replace the user's subscription."""
        ...


class AnalysisQueue(Protocol):
    """Hands analyses to the workers."""

    async def enqueue(self, analysis_id: str) -> None:
        """Queue one analysis for a worker."""
        ...


class JobControl(Protocol):
    """Starts, finds and cancels the background jobs of analyses (the job registry)."""

    async def enqueue_analysis(self, analysis_id: str, *, owner: str) -> None:
        """Record and queue the analysis job; its job id is the analysis id."""
        ...

    async def cancel(self, job_id: str) -> JobState | None:
        """Cancel a scheduled or queued job, or ask a running one to stop; returns the state it was in, or None."""
        ...

    async def queued_analyses(self) -> int:
        """Return how many analysis jobs wait in the queue."""
        ...

    async def in_flight(self, owner: str) -> list[QueuedJob]:
        """Return the owner's scheduled, queued and running jobs, oldest first."""
        ...


class CancellationCheck(Protocol):
    """Tells a running analysis whether it was cancelled, checked at its safe points."""

    async def cancelled(self, job_id: str) -> bool:
        """Return True when the job was cancelled or asked to stop."""
        ...


class Notifier(Protocol):
    """Sends what happens to an analysis to the chat it came from."""

    async def analysis_queued(self, analysis: Analysis, *, position: int | None = None) -> str | None:
        """Acknowledge a new request with its place in the queue; returns the acknowledgement's message id."""
        ...

    async def analysis_progress(self, analysis: Analysis, progress: Progress) -> None:
        """Show how far the analysis is, editing the acknowledgement where possible."""
        ...

    async def analysis_done(self, analysis: Analysis) -> None:
        """Deliver the finished analysis, replacing the acknowledgement where possible."""
        ...

    async def analysis_failed(self, analysis: Analysis) -> None:
        """Tell the user the analysis failed and that the use was refunded."""
        ...

    async def analysis_still_working(self, analysis: Analysis) -> None:
        """Tell the user a slow analysis is still running."""
        ...


class ModelRateLimit(Protocol):
    """The model's requests and tokens per minute, shared by every worker process."""

    async def acquire(self, tokens: int) -> str:
        """Wait until a call of `tokens` fits in the limit; returns a ticket for `settle`."""
        ...

    async def settle(self, ticket: str, tokens: int) -> None:
        """Raise the call's counted tokens when it turned out larger than estimated."""
        ...

    async def pause(self, seconds: float) -> None:
        """Hold every caller for `seconds` after the model returned HTTP 429."""
        ...


class ReplyLocks(Protocol):
    """Short leases, one per analysis, held while its final reply is sent."""

    async def acquire(self, analysis_id: str, *, lease_seconds: float) -> str | None:
        """Take the lock for `lease_seconds`; returns a token, or None when another holder has it."""
        ...

    async def release(self, analysis_id: str, token: str) -> None:
        """Release the lock if `token` still holds it."""
        ...


class ChartReader(Protocol):
    """Measures a chart image offline, before any model call."""

    async def read(self, image: ChartImage) -> ChartFindings:
        """Return what the image shows; raises ChartUnreadableError when it cannot be read at all."""
        ...


class ChartAnalyzer(Protocol):
    """Writes the analysis: the vision model, or the offline reading when no model is configured."""

    prompt_version: str

    async def analyze(
        self, images: Sequence[ChartImage], caption: str | None, findings: Sequence[ChartFindings]
    ) -> ModelAnswer:
        """Analyse the charts; `findings` contains the reader's measurements, one per image, or is empty.

        Raises TransientModelError or PermanentModelError.
        """
        ...


class Clock(Protocol):
    """Source of the current time, injected so tests can move it."""

    def __call__(self) -> datetime:
        """Return the current time in UTC, timezone-aware."""
        ...


class BillingGateway(Protocol):
    """The payment provider's API (Stripe) as the billing rules call it."""

    async def create_checkout_session(self, request: CheckoutRequest) -> CheckoutSession:
        """Create a hosted checkout page for one subscription."""
        ...

    async def create_portal_session(self, *, customer_id: str, return_url: str | None) -> str:
        """Create a Customer Portal session and return its URL."""
        ...

    async def retrieve_subscription(self, subscription_id: str) -> SubscriptionState:
        """Return the subscription's current state from the provider."""
        ...


class BillingCustomers(Protocol):
    """Links from provider customers to the chat users they pay for."""

    async def link(self, customer_id: str, user: BillingUser) -> None:
        """Record that `customer_id` pays for `user`; linking the same pair again changes nothing."""
        ...

    async def user_for(self, customer_id: str) -> BillingUser | None:
        """Return the user a customer pays for, or None."""
        ...

    async def customer_for(self, user: BillingUser) -> str | None:
        """Return the user's customer id, or None when they never checked out."""
        ...


class ProcessedEvents(Protocol):
    """Ids of the webhook events already handled, unique across every process."""

    async def seen(self, event_id: str) -> bool:
        """Return True when the event was already recorded."""
        ...

    async def record(self, event_id: str, *, event_type: str, created: datetime, result: str) -> bool:
        """Record the event; False when another call already recorded it."""
        ...


class BillingLocks(Protocol):
    """Mutual exclusion across processes, so two events for one user never interleave their read and write."""

    def hold(self, key: str) -> AbstractAsyncContextManager[None]:
        """Return a context manager that holds the lock named `key`; raises TimeoutError when it stays taken."""
        ...


class BillingNotifier(Protocol):
    """Tells a user in chat that their plan changed or a payment failed."""

    async def notify(self, notice: BillingNotice) -> None:
        """Send one notice to the user's private chat."""
        ...
