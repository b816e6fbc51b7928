"""The analysis use cases on the in-memory ports: reserve, queue, run, retry, fail, refund."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from core.analysis import AnalysisServices, request_analysis
from core.analysis_run import AnalysisRunner, RetryPolicy, run_analysis
from core.errors import (
    AnalysisNotFound,
    ModelRateLimited,
    PermanentModelError,
    ReplyNotSent,
    TransientModelError,
    UsageLimitExceeded,
)
from core.images import inspect_image
from datetime import timedelta

from core.memory import (
    InMemoryAnalysisRepository,
    InMemoryImageStore,
    InMemoryReplyLocks,
    InMemorySubscriptionRepository,
    InMemoryUsageCounters,
    InMemoryUsageLedger,
)
from core.plans import load_plans
from core.replies import OnceNotifier, OnceReplies
from core.usage import UsageService
from core.models import Analysis, AnalysisJob, AnalysisStatus, ChartImage, ModelAnswer, Platform, TokenUsage
from tests.conftest import CHARTS

NOW = datetime(2026, 3, 14, 21, 30, tzinfo=UTC)


class RecordingQueue:
    def __init__(self, fail: bool = False) -> None:
        self.ids: list[str] = []
        self.fail = fail

    async def enqueue(self, analysis_id: str) -> None:
        if self.fail:
            raise ConnectionError("queue down")
        self.ids.append(analysis_id)


class RecordingNotifier:
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    async def analysis_queued(self, analysis: Analysis, *, position: int | None = None) -> str | None:
        self.events.append(("queued", analysis.id))
        return "77"

    async def analysis_progress(self, analysis: Analysis, progress) -> None:
        self.events.append((f"progress:{progress.stage.value}", analysis.id))

    async def analysis_done(self, analysis: Analysis) -> None:
        self.events.append(("done", analysis.id))

    async def analysis_failed(self, analysis: Analysis) -> None:
        self.events.append(("failed", analysis.id))


class ScriptedAnalyzer:
    prompt_version = "test-v1"

    def __init__(self, errors: Sequence[Exception] = ()) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def analyze(self, images, caption, findings):
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return ModelAnswer(text=f"analysis of {len(images)} chart(s): {caption}", model="gpt-4o",
                           usage=TokenUsage(input_tokens=10, output_tokens=5))


def _services(queue=None, limit=3) -> AnalysisServices:
    plans = load_plans()
    plans = plans.model_copy(update={"free": plans.free.model_copy(update={"daily_limit": limit})})
    usage = UsageService(counters=InMemoryUsageCounters(), ledger=InMemoryUsageLedger(),
                         subscriptions=InMemorySubscriptionRepository(), plans=plans,
                         past_due_grace=timedelta(days=3), clock=lambda: NOW)
    return AnalysisServices(
        analyses=InMemoryAnalysisRepository(),
        images=InMemoryImageStore(),
        usage=usage,
        queue=queue or RecordingQueue(),
        clock=lambda: NOW,
    )


async def _used_today(services: AnalysisServices) -> int:
    return (await services.usage.summary("telegram", "42")).counts.day


def _job(user_id="42", caption="breakout?") -> AnalysisJob:
    data = (CHARTS / "rendered" / "rendered-00.png").read_bytes()
    info = inspect_image(data, max_bytes=20_000_000, max_pixels=40_000_000, min_side=64)
    return AnalysisJob(platform=Platform.TELEGRAM, user_id=user_id, chat_id="42", message_id="5",
                       images=[ChartImage(info=info, data=data)], caption=caption)


class RecordingSleep:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


async def test_request_reserves_stores_acknowledges_and_queues():
    services, notifier = _services(), RecordingNotifier()
    analysis = await request_analysis(_job(), services, notifier)

    stored = await services.analyses.get(analysis.id)
    assert stored.status is AnalysisStatus.QUEUED
    assert stored.ack_message_id == "77"
    assert stored.reservation.day == "2026-03-14"
    assert stored.reservation.period == "2026-03-01T00:00:00+00:00"
    assert await services.images.get(stored.images[0].image_id) == _job().images[0].data
    assert services.queue.ids == [analysis.id]
    assert notifier.events == [("queued", analysis.id)]
    assert await _used_today(services) == 1


async def test_request_over_daily_limit_refused_with_reset_time():
    services, notifier = _services(limit=2), RecordingNotifier()
    await request_analysis(_job(), services, notifier)
    await request_analysis(_job(), services, notifier)

    with pytest.raises(UsageLimitExceeded) as caught:
        await request_analysis(_job(), services, notifier)
    assert (caught.value.limit, caught.value.used, caught.value.requested) == (2, 2, 1)
    assert caught.value.resets_at == datetime(2026, 3, 15, tzinfo=UTC)
    assert len(services.analyses.records) == 2
    assert len(services.queue.ids) == 2


async def test_queue_failure_refunds_and_marks_failed():
    services, notifier = _services(queue=RecordingQueue(fail=True)), RecordingNotifier()
    with pytest.raises(ConnectionError):
        await request_analysis(_job(), services, notifier)

    [record] = services.analyses.records.values()
    assert record.status is AnalysisStatus.FAILED
    assert record.refunded is True
    assert record.error == "could not queue: queue down"
    assert notifier.events == [("queued", record.id), ("failed", record.id)]
    assert await _used_today(services) == 0


async def test_run_delivers_and_records_tokens():
    services, notifier = _services(), RecordingNotifier()
    analysis = await request_analysis(_job(), services, notifier)
    analyzer = ScriptedAnalyzer()

    done = await run_analysis(analysis.id, AnalysisRunner(services, analyzer, notifier, RetryPolicy()))

    assert done.status is AnalysisStatus.DONE
    assert done.result_text == "analysis of 1 chart(s): breakout?"
    assert done.usage == TokenUsage(input_tokens=10, output_tokens=5)
    assert done.prompt_version == "test-v1"
    assert done.started_at == NOW
    assert done.finished_at == NOW
    assert (await services.analyses.get(analysis.id)).status is AnalysisStatus.DONE
    assert notifier.events[-1] == ("done", analysis.id)


async def test_transient_errors_retried_with_backoff_and_retry_after():
    services, notifier, sleep = _services(), RecordingNotifier(), RecordingSleep()
    analysis = await request_analysis(_job(), services, notifier)
    analyzer = ScriptedAnalyzer([TransientModelError("500"), TransientModelError("429", retry_after=7.5)])

    retry = RetryPolicy(max_attempts=4, base_seconds=2, max_seconds=60, sleep=sleep)
    done = await run_analysis(analysis.id, AnalysisRunner(services, analyzer, notifier, retry))

    assert done.status is AnalysisStatus.DONE
    assert done.attempts == 3
    assert sleep.delays == [2, 7.5]


def _once(services: AnalysisServices, recorder: RecordingNotifier) -> OnceNotifier:
    """The worker's notifier: final replies once per analysis, through a reply lock."""
    return OnceNotifier(recorder, OnceReplies(InMemoryReplyLocks(), services.analyses, services.clock))


async def test_rate_limit_waits_without_attempts():
    services, notifier, sleep = _services(), RecordingNotifier(), RecordingSleep()
    analysis = await request_analysis(_job(), services, notifier)
    analyzer = ScriptedAnalyzer([ModelRateLimited("429", retry_after=3)] * 6 + [TransientModelError("500")])

    retry = RetryPolicy(max_attempts=2, base_seconds=1, max_seconds=60, sleep=sleep)
    done = await run_analysis(analysis.id, AnalysisRunner(services, analyzer, notifier, retry))

    assert done.status is AnalysisStatus.DONE
    assert done.attempts == 2
    assert sleep.delays == [3, 3, 3, 3, 3, 3, 1]
    assert notifier.events == [("queued", analysis.id), ("progress:analysing", analysis.id),
                               ("progress:retrying", analysis.id), ("done", analysis.id)]


async def test_retries_exhausted_fail_and_refund_once():
    services, recorder, sleep = _services(), RecordingNotifier(), RecordingSleep()
    notifier = _once(services, recorder)
    analysis = await request_analysis(_job(), services, notifier)
    analyzer = ScriptedAnalyzer([TransientModelError("500")] * 3)

    retry = RetryPolicy(max_attempts=3, base_seconds=1, max_seconds=3, sleep=sleep)
    failed = await run_analysis(analysis.id, AnalysisRunner(services, analyzer, notifier, retry))

    assert failed.status is AnalysisStatus.FAILED
    assert failed.error == "model unavailable after 3 attempts: 500"
    assert sleep.delays == [1, 2]
    assert analyzer.calls == 3
    assert await _used_today(services) == 0
    # A redelivered job neither runs again nor refunds twice.
    again = await run_analysis(analysis.id, AnalysisRunner(services, analyzer, notifier, RetryPolicy(sleep=sleep)))
    assert again.status is AnalysisStatus.FAILED
    assert analyzer.calls == 3
    assert await _used_today(services) == 0
    assert recorder.events.count(("failed", analysis.id)) == 1


async def test_permanent_error_fails_without_retry():
    services, notifier, sleep = _services(), RecordingNotifier(), RecordingSleep()
    analysis = await request_analysis(_job(), services, notifier)
    analyzer = ScriptedAnalyzer([PermanentModelError("HTTP 400 from the model")])

    failed = await run_analysis(analysis.id, AnalysisRunner(services, analyzer, notifier, RetryPolicy(sleep=sleep)))

    assert failed.status is AnalysisStatus.FAILED
    assert failed.error == "model error: HTTP 400 from the model"
    assert analyzer.calls == 1
    assert sleep.delays == []


async def test_finished_analysis_not_run_twice():
    services, recorder = _services(), RecordingNotifier()
    notifier = _once(services, recorder)
    analysis = await request_analysis(_job(), services, notifier)
    analyzer = ScriptedAnalyzer()
    await run_analysis(analysis.id, AnalysisRunner(services, analyzer, notifier, RetryPolicy()))
    await run_analysis(analysis.id, AnalysisRunner(services, analyzer, notifier, RetryPolicy()))
    assert analyzer.calls == 1
    assert recorder.events.count(("done", analysis.id)) == 1
    assert (await services.analyses.get(analysis.id)).replied_at == NOW


async def test_redelivery_sends_missing_reply_once():
    """A worker died after storing the result and before replying: the next delivery replies, once."""
    services, recorder = _services(), RecordingNotifier()
    notifier = _once(services, recorder)
    analysis = await request_analysis(_job(), services, notifier)
    await services.analyses.update(analysis.id, {"status": AnalysisStatus.DONE, "result_text": "stored before the crash"})
    analyzer = ScriptedAnalyzer()

    for _ in range(3):
        again = await run_analysis(analysis.id, AnalysisRunner(services, analyzer, notifier, RetryPolicy()))

    assert analyzer.calls == 0
    assert again.result_text == "stored before the crash"
    assert recorder.events == [("queued", analysis.id), ("done", analysis.id)]
    assert await _used_today(services) == 1


async def test_redelivery_refunds_and_tells_failure_once():
    services, recorder = _services(), RecordingNotifier()
    notifier = _once(services, recorder)
    analysis = await request_analysis(_job(), services, notifier)
    await services.analyses.update(analysis.id, {"status": AnalysisStatus.FAILED, "error": "model error"})

    for _ in range(2):
        await run_analysis(analysis.id, AnalysisRunner(services, ScriptedAnalyzer(), notifier, RetryPolicy()))

    assert recorder.events == [("queued", analysis.id), ("failed", analysis.id)]
    assert await _used_today(services) == 0


async def test_concurrent_deliveries_reply_once():
    services, recorder = _services(), RecordingNotifier()
    notifier = _once(services, recorder)
    analysis = await request_analysis(_job(), services, notifier)
    analyzer = ScriptedAnalyzer()

    results = await asyncio.gather(*(run_analysis(analysis.id, AnalysisRunner(services, analyzer, notifier,
                                                                            RetryPolicy())) for _ in range(2)))

    assert [r.status for r in results] == [AnalysisStatus.DONE, AnalysisStatus.DONE]
    assert recorder.events.count(("done", analysis.id)) == 1


async def test_unknown_analysis_raises_not_found():
    services = _services()
    with pytest.raises(AnalysisNotFound):
        await run_analysis("missing", AnalysisRunner(services, ScriptedAnalyzer(), RecordingNotifier(), RetryPolicy()))


def test_retry_delay_capped():
    policy = RetryPolicy(base_seconds=2, max_seconds=10)
    assert [policy.delay(n, None) for n in (1, 2, 3, 4)] == [2, 4, 8, 10]
    assert policy.delay(1, 120) == 10
    assert policy.delay(1, 0) == 0


class UnreadableRecords(InMemoryAnalysisRepository):
    """An analysis store whose reads fail, like a database that stopped responding."""

    def __init__(self, inner: InMemoryAnalysisRepository) -> None:
        super().__init__()
        self.inner = inner

    async def get(self, analysis_id: str):
        raise ConnectionError("database unavailable")


async def test_reply_bookkeeping_failure_raises_for_redelivery():
    services, recorder = _services(), RecordingNotifier()
    analysis = await request_analysis(_job(), services, recorder)
    broken = OnceNotifier(recorder, OnceReplies(InMemoryReplyLocks(), UnreadableRecords(services.analyses),
                                                services.clock))
    runner = AnalysisRunner(services, ScriptedAnalyzer(), broken, RetryPolicy())

    with pytest.raises(ReplyNotSent):
        await run_analysis(analysis.id, runner)

    assert ("done", analysis.id) not in recorder.events
    # The next delivery finds the result stored and sends the reply once.
    again = await run_analysis(analysis.id, AnalysisRunner(services, ScriptedAnalyzer(), _once(services, recorder),
                                                           RetryPolicy()))
    assert again.status is AnalysisStatus.DONE
    assert recorder.events.count(("done", analysis.id)) == 1


async def test_chat_delivery_failure_is_logged_not_raised():
    services, recorder = _services(), RecordingNotifier()
    analysis = await request_analysis(_job(), services, recorder)

    async def chat_down(_analysis):
        raise ConnectionError("chat API unavailable")

    replies = OnceReplies(InMemoryReplyLocks(), services.analyses, services.clock)
    assert await replies.send(analysis, chat_down) is False
    assert (await services.analyses.get(analysis.id)).replied_at is None
