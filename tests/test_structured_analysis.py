"""Structured model responses: the real openai SDK against the fake server, the real chart reader, the core's
run with a refund on every failure, and the result rendered as the chat shows it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from adapters.mongo import MongoAnalysisRepository, MongoImageStore, ensure_indexes
from adapters.mongo_usage import MongoSubscriptionRepository, MongoUsageLedger, ensure_usage_indexes
from adapters.redis_usage import RedisUsageCounters
from bot.telegram import messages
from bot.views.usage import limit_refusal
from bot.telegram.analysis_html import analysis_blocks, format_price
from core.analysis import AnalysisServices, request_analysis
from core.analysis_result import AnalysisResult, ModelReport
from core.analysis_run import AnalysisRunner, RetryPolicy, run_analysis
from core.errors import UsageLimitExceeded
from core.images import inspect_image
from core.events import Progress, Stage
from core.plans import load_plans
from core.usage import UsageService
from core.models import AnalysisJob, AnalysisStatus, ChartAgreement, ChartImage, FailureKind, Platform
from tests.conftest import CHARTS
from tests.fakes.openai_server import DEFAULT_REPORT_HTML, FakeOpenAIServer, chart_report, default_report
from tests.test_analysis_core import NOW, RecordingNotifier, RecordingQueue, _services, _used_today
from workers.openai_analyzer import OpenAIChartAnalyzer, build_openai_client
from workers.prompt import MULTI_CHART_PROMPT, SINGLE_CHART_PROMPT, load_prompt, reader_facts
from workers.reading import OfflineChartReader

RENDERED = [CHARTS / "rendered" / f"rendered-0{n}.png" for n in (0, 1, 2)]
DISCLAIMER = "\n\n<i>Not financial advice.</i>"


def _runner(services, server: FakeOpenAIServer, notifier) -> AnalysisRunner:
    client = build_openai_client(api_key="test-openai-key", base_url=server.url, timeout_seconds=10)
    analyzer = OpenAIChartAnalyzer(client, model="gpt-4o", prompt=load_prompt(SINGLE_CHART_PROMPT),
                                   multi_prompt=load_prompt(MULTI_CHART_PROMPT))
    return AnalysisRunner(services=services, analyzer=analyzer, notifier=notifier,
                          retry=RetryPolicy(max_attempts=2, base_seconds=0),
                          reader=OfflineChartReader(max_pixels=40_000_000),
                          pricing=lambda model, tokens_in, tokens_out: round(tokens_in * 2.5e-6 + tokens_out * 1e-5, 6))


def _job(paths, caption=None) -> AnalysisJob:
    images = []
    for path in paths:
        data = path.read_bytes()
        images.append(ChartImage(info=inspect_image(data, max_bytes=20_000_000, max_pixels=40_000_000, min_side=64),
                                 data=data))
    return AnalysisJob(platform=Platform.TELEGRAM, user_id="42", chat_id="42", message_id="5", images=images,
                       caption=caption)


async def _run(services, server, paths, caption=None):
    notifier = RecordingNotifier()
    analysis = await request_analysis(_job(paths, caption), services, notifier)
    return await run_analysis(analysis.id, _runner(services, server, notifier)), notifier


def _text_part(request: dict) -> str:
    return next(part["text"] for part in request["messages"][1]["content"] if part["type"] == "text")


async def test_album_uses_multi_chart_prompt(openai_server):
    services = _services(limit=5)
    done, _ = await _run(services, openai_server, RENDERED, caption="Which timeframe leads?")

    assert done.status is AnalysisStatus.DONE
    assert await _used_today(services) == 3
    [request] = openai_server.requests
    multi = load_prompt(MULTI_CHART_PROMPT)
    assert request["messages"][0]["content"] == multi.system
    findings = services.analyses.records[done.id].findings
    assert len(findings) == 3
    assert _text_part(request) == (
        "Analyse these 3 charts together. The trader's question or context: Which timeframe leads?\n\n"
        + multi.facts.format(facts=reader_facts(findings)))
    assert [p["image_url"]["detail"] for p in request["messages"][1]["content"] if p["type"] == "image_url"] == [
        "high"] * 3
    assert done.prompt_version == "multi-chart-analysis-v1"
    assert done.result == AnalysisResult.from_report(ModelReport.model_validate(default_report(3)))
    assert done.cost_usd == 0.006295
    assert done.agreement == [
        ChartAgreement(chart=n, reader_trend=f.trend, model_trend="up", trend_agrees=f.trend == "up")
        for n, f in enumerate(findings, start=1)]
    # The rendered charts trend up (their ground truth), and the reader measured that.
    assert [row.trend_agrees for row in done.agreement] == [
        json.loads(path.with_suffix(".json").read_text())["trend"] == "up" for path in RENDERED]

    chart_block = ("<b>Chart {n}</b> · BTCUSDT · 1D\nUptrend (strong)\nResistance: 45,000 · 46,200\n"
                   "Support: 41,000 · 39,500\nPatterns: ascending triangle\n"
                   "Indicators: RSI 64 &amp; rising &lt;above 50&gt;")
    assert messages.analysis_messages(done) == [
        "📊 <b>Analysis of 3 charts</b>\n<i>Your question: Which timeframe leads?</i>\n\n"
        "🟢 <b>Bullish</b> · medium confidence\n\n"
        + "\n\n".join(chart_block.format(n=n) for n in (1, 2, 3))
        + "\n\n<b>Confluence</b>\nEvery timeframe trends up; the 4h pullback holds the daily support.\n\n"
        "<b>Trade idea: long</b>\nEntry: 41,200 – 41,800\nStop: 40,400\n"
        "Targets: 45,000 (R:R 3.18) · 46,200 (R:R 4.27)\nInvalidation: a daily close below 40,400\n\n"
        "<b>Summary</b>\nBTC is in an uptrend on the daily chart, making higher highs; &lt;i&gt; tags stay "
        "literal &amp; escaped." + DISCLAIMER
    ]


async def test_single_chart_rendered_from_the_structured_answer(openai_server):
    services = _services()
    done, notifier = await _run(services, openai_server, RENDERED[:1])

    assert notifier.events[-1] == ("done", done.id)
    assert done.prompt_version == "chart-analysis-v2"
    assert _text_part(openai_server.requests[0]).startswith("Analyse this chart.\n\nMeasured facts")
    assert messages.analysis_messages(done) == ["📊 <b>Chart analysis</b>\n\n" + DEFAULT_REPORT_HTML + DISCLAIMER]


async def test_invalid_answer_asked_again_once(openai_server):
    services = _services()
    openai_server.answers = ['{"readable_chart": true, "bias": "bullish"']
    done, _ = await _run(services, openai_server, RENDERED[:1])

    assert done.status is AnalysisStatus.DONE
    assert len(openai_server.requests) == 2
    assert done.attempts == 1
    assert await _used_today(services) == 1


async def test_invalid_answer_twice_fails_with_refund(openai_server):
    services = _services()
    stop_above_entry = default_report(1)
    stop_above_entry["trade_idea"]["stop"] = 42000
    openai_server.answers = [stop_above_entry, "not JSON at all"]
    failed, notifier = await _run(services, openai_server, RENDERED[:1])

    assert failed.status is AnalysisStatus.FAILED
    assert failed.failure is FailureKind.INVALID_REPLY
    assert failed.refunded is True
    assert len(openai_server.requests) == 2
    assert await _used_today(services) == 0
    assert notifier.events[-1] == ("failed", failed.id)
    assert messages.failure_message(failed) == (
        "❌ The analysis failed because the chart model's answer could not be read, twice. "
        "Your use was refunded, so you can send the chart again.")


async def test_answer_missing_a_chart_is_invalid(openai_server):
    services = _services(limit=5)
    openai_server.answers = [default_report(1), default_report(1)]
    failed, _ = await _run(services, openai_server, RENDERED[:2])

    assert failed.failure is FailureKind.INVALID_REPLY
    assert "the response covers 1 of 2 charts" in failed.error
    assert await _used_today(services) == 0


async def test_model_finding_no_readable_chart_refunds(openai_server):
    services = _services()
    unreadable = default_report(1) | {"readable_chart": False, "charts": [], "trade_idea": None,
                                      "summary": "The image is a blurred photo of a screen; no prices can be read."}
    openai_server.answers = [unreadable]
    failed, _ = await _run(services, openai_server, RENDERED[:1])

    assert failed.status is AnalysisStatus.FAILED
    assert failed.failure is FailureKind.NOT_A_CHART
    assert failed.refunded is True
    assert failed.result.report.readable_chart is False
    assert failed.usage.input_tokens == 1234
    assert await _used_today(services) == 0
    assert messages.failure_message(failed) == messages.NOT_A_CHART


def test_short_idea_and_unreadable_chart_rendered():
    report = default_report(2)
    report["bias"], report["confidence"] = "bearish", "low"
    report["charts"][1] = chart_report(2) | {"readable": False, "symbol": None, "timeframe": None}
    report["charts"][0] |= {"symbol": None, "timeframe": "4h", "support": [], "resistance": [1.0901, 1.092],
                            "patterns": [], "indicators": []}
    report["trade_idea"] = {"direction": "short", "entry_low": 1.0852, "entry_high": 1.0852, "stop": 1.0901,
                            "targets": [1.0755], "invalidation": "a 4h close above 1.0901"}
    result = AnalysisResult.from_report(ModelReport.model_validate(report))
    assert result.risk_reward == [1.98]

    blocks = "\n\n".join(analysis_blocks(result, charts_sent=2))
    # With one of the two charts read, the model's confluence is not shown.
    assert blocks == (
        "🔴 <b>Bearish</b> · low confidence\n\n"
        "<b>Chart 1</b> · 4h\nUptrend (strong)\nResistance: 1.0901 · 1.0920\n\n"
        "<b>Chart 2</b>\nNot readable as a price chart.\n\n"
        "<b>Trade idea: short</b>\nEntry: 1.0852\nStop: 1.0901\nTargets: 1.0755 (R:R 1.98)\n"
        "Invalidation: a 4h close above 1.0901\n\n"
        "<b>Summary</b>\nBTC is in an uptrend on the daily chart, making higher highs; &lt;i&gt; tags stay "
        "literal &amp; escaped.")


@pytest.mark.parametrize(("price", "text"), [
    (41000.0, "41,000"), (46200.5, "46,200.5"), (1.0852, "1.0852"), (0.00001234, "0.00001234"),
    (2.5, "2.5"), (123456789.0, "123,456,789"), (0.1 + 0.2, "0.3"),
])
def test_prices_written_as_the_chart_shows_them(price, text):
    assert format_price(price) == text


@pytest.mark.parametrize("change", [
    {"stop": 41500},                       # a long's stop inside the entry zone
    {"targets": [41000]},                  # a long's target below the entry
    {"targets": []},                       # no target
    {"entry_low": -5},                     # a negative price
    {"invalidation": "  "},                # no invalidation
])
def test_trade_ideas_that_contradict_themselves_do_not_validate(change):
    report = default_report(1)
    report["trade_idea"] |= change
    with pytest.raises(ValueError):
        ModelReport.model_validate(report)


def test_reversed_entry_zone_reordered():
    report = default_report(1)
    report["trade_idea"] |= {"entry_low": 41800, "entry_high": 41200}
    idea = ModelReport.model_validate(report).trade_idea
    assert (idea.entry_low, idea.entry_high) == (41200, 41800)


async def test_services_keep_the_plan_limit_for_three_charts(openai_server):
    services = _services(limit=2)
    with pytest.raises(UsageLimitExceeded) as refused:
        await request_analysis(_job(RENDERED), services, RecordingNotifier())
    assert refused.value.requested == 3
    assert await _used_today(services) == 0
    assert openai_server.requests == []


def test_chat_texts_count_the_charts_of_an_album():
    assert messages.queued_text(1, charts=3) == (
        "⏳ 3 charts received. You are next in the queue; the analysis will appear in this message.")
    assert messages.queued_text(None, charts=2) == (
        "⏳ 2 charts received. Your analysis is queued and will appear in this message shortly.")
    assert messages.progress_text(Progress(Stage.ANALYSING), charts=3) == (
        "🔎 Analysing your 3 charts together. The analysis will appear in this message.")
    assert messages.progress_text(Progress(Stage.ANALYSING)) == messages.ANALYSING


async def test_album_failures_say_every_use_was_refunded(openai_server):
    services = _services(limit=5)
    openai_server.answers = ["{", "{"]
    failed, _ = await _run(services, openai_server, RENDERED)
    assert messages.failure_message(failed) == (
        "❌ The analysis failed because the chart model's answer could not be read, twice. "
        "Your 3 uses were refunded, so you can send the charts again.")
    assert messages.failure_message(failed.model_copy(update={"failure": FailureKind.NOT_A_CHART})) == (
        "🤔 None of these images looks like a price chart; send screenshots of candlestick, "
        "bar or line charts. Your 3 uses were refunded.")
    assert await _used_today(services) == 0


@pytest.mark.parametrize(("used", "sentence"), [
    (1, " This request needs 3 and 2 are left: send at most 2 charts now."),
    (2, " This request needs 3 and 1 is left: send at most 1 chart now."),
])
def test_album_limit_refusal_says_what_fits(used, sentence):
    error = UsageLimitExceeded(limit=3, used=used, requested=3, resets_at=datetime(2026, 3, 15, tzinfo=UTC))
    text, _ = limit_refusal(error, now=datetime(2026, 3, 14, 22, 30, tzinfo=UTC))
    assert text == (f"🚫 You have used {used} of your 3 chart analyses for today on the Free plan.{sentence}"
                    " The limit resets at 00:00 UTC on 2026-03-15 (in 1 h 30 min). This request was not counted.")


async def _stored_services(mongo_db, redis_client) -> AnalysisServices:
    """Services on the real stores: analyses and images in MongoDB, usage in Redis and the MongoDB ledger."""
    await ensure_indexes(mongo_db)
    await ensure_usage_indexes(mongo_db)
    plans = load_plans()
    plans = plans.model_copy(update={"free": plans.free.model_copy(update={"daily_limit": 5})})
    usage = UsageService(counters=RedisUsageCounters(redis_client), ledger=MongoUsageLedger(mongo_db),
                         subscriptions=MongoSubscriptionRepository(mongo_db), plans=plans,
                         past_due_grace=timedelta(days=3), clock=lambda: NOW)
    return AnalysisServices(analyses=MongoAnalysisRepository(mongo_db), images=MongoImageStore(mongo_db),
                            usage=usage, queue=RecordingQueue(), clock=lambda: NOW)


async def test_album_unreadable_chart_refunded(openai_server, mongo_db, redis_client):
    services = await _stored_services(mongo_db, redis_client)
    report = default_report(3)
    report["charts"][1] = chart_report(2) | {"readable": False, "symbol": None, "timeframe": None}
    openai_server.answers = [report]
    notifier = RecordingNotifier()
    analysis = await request_analysis(_job(RENDERED), services, notifier)
    runner = _runner(services, openai_server, notifier)
    done = await run_analysis(analysis.id, runner)

    assert done.status is AnalysisStatus.DONE
    assert done.refunded is False
    assert done.refunded_charts == [2]
    assert (await services.analyses.get(done.id)).refunded_charts == [2]
    assert await _used_today(services) == 2
    ledger = {entry.id: (entry.kind, entry.units, entry.note)
              for entry in await services.usage.ledger.entries("telegram:42", limit=10)}
    assert ledger == {f"use:{done.id}": ("use", 3, None),
                      f"refund:{done.id}:charts": ("refund", 1, "refunded charts: 2")}
    [text] = messages.analysis_messages(done)
    assert "<b>Chart 2</b>\nNot readable as a price chart." in text
    assert text.endswith("\n\n↩️ Chart 2 could not be read as a price chart, so its use was refunded." + DISCLAIMER)

    # A job delivered again after the reply neither refunds nor replies twice.
    await services.analyses.update(done.id, {"replied_at": NOW})
    await run_analysis(done.id, runner)
    # Nor does one delivered again before the reply was recorded: the refund is keyed by the analysis.
    await services.analyses.update(done.id, {"replied_at": None})
    await run_analysis(done.id, runner)
    assert await _used_today(services) == 2
    assert len(await services.usage.ledger.entries("telegram:42", limit=10)) == 2
    assert len(openai_server.requests) == 1
    assert [event for event in notifier.events if event[0] == "done"] == [("done", done.id)] * 2

    # After Redis loses its counters, the rebuild from the ledger counts this refund too.
    await redis_client.flushdb()
    assert await _used_today(services) == 2


async def test_album_of_unreadable_charts_refunded_in_full(openai_server):
    services = _services(limit=5)
    report = default_report(2)
    report["charts"] = [chart_report(n) | {"readable": False} for n in (1, 2)]
    openai_server.answers = [report]
    failed, _ = await _run(services, openai_server, RENDERED[:2])

    assert failed.failure is FailureKind.NOT_A_CHART
    assert failed.refunded_charts == []
    assert await _used_today(services) == 0


def test_unreadable_charts_named_in_the_reply():
    assert messages.unreadable_charts_refunded([1, 3]) == (
        "↩️ Charts 1 and 3 could not be read as price charts, so their 2 uses were refunded.")
    assert messages.unreadable_charts_refunded([1, 2, 4]) == (
        "↩️ Charts 1, 2 and 4 could not be read as price charts, so their 3 uses were refunded.")


NOT_A_CHART_IMAGE = CHARTS / "not-charts" / "spreadsheet.png"


async def test_album_non_chart_refunded(openai_server, mongo_db, redis_client):
    services = await _stored_services(mongo_db, redis_client)
    notifier = RecordingNotifier()
    analysis = await request_analysis(_job([RENDERED[0], NOT_A_CHART_IMAGE, RENDERED[1]]), services, notifier)
    done = await run_analysis(analysis.id, _runner(services, openai_server, notifier))

    assert done.status is AnalysisStatus.DONE
    assert done.refunded_charts == [2]
    assert await _used_today(services) == 2
    findings = await services.analyses.findings(done.id)
    assert [finding.is_chart for finding in findings] == [True, False, True]
    # The model saw the two charts and the facts of those two only.
    [request] = openai_server.requests
    content = request["messages"][1]["content"]
    assert len([part for part in content if part["type"] == "image_url"]) == 2
    assert _text_part(request) == (
        "Analyse these 2 charts together.\n\n"
        + load_prompt(MULTI_CHART_PROMPT).facts.format(facts=reader_facts([findings[0], findings[2]])))
    # Its charts 1 and 2 are the album's charts 1 and 3.
    assert [chart.chart for chart in done.result.report.charts] == [1, 3]
    assert [(row.chart, row.reader_trend) for row in done.agreement] == [
        (1, findings[0].trend), (3, findings[2].trend)]
    [text] = messages.analysis_messages(done)
    # The trader's three charts keep their places, and the one left out is marked as not a price chart.
    assert text.startswith("📊 <b>Analysis of 3 charts</b>\n\n🟢 <b>Bullish</b> · medium confidence\n\n"
                           "<b>Chart 1</b> · BTCUSDT · 1D\n")
    assert ("\n\n<b>Chart 2</b>\nNot a price chart, so it was left out of the analysis.\n\n"
            "<b>Chart 3</b> · BTCUSDT · 1D\n") in text
    assert "\n\n<b>Confluence</b>\n" in text
    assert text.endswith("\n\n↩️ Chart 2 could not be read as a price chart, so its use was refunded." + DISCLAIMER)


async def test_album_with_one_chart_left_single(openai_server):
    services = _services(limit=5)
    done, _ = await _run(services, openai_server, [NOT_A_CHART_IMAGE, RENDERED[0]])

    assert done.refunded_charts == [1]
    assert await _used_today(services) == 1
    assert done.prompt_version == "chart-analysis-v2"
    assert [chart.chart for chart in done.result.report.charts] == [2]
    chart_block = ("<b>Chart 2</b> · BTCUSDT · 1D\nUptrend (strong)\nResistance: 45,000 · 46,200\n"
                   "Support: 41,000 · 39,500\nPatterns: ascending triangle\n"
                   "Indicators: RSI 64 &amp; rising &lt;above 50&gt;")
    # With one chart read there is no confluence to show.
    assert messages.analysis_messages(done) == [
        "📊 <b>Analysis of 2 charts</b>\n\n🟢 <b>Bullish</b> · medium confidence\n\n"
        "<b>Chart 1</b>\nNot a price chart, so it was left out of the analysis.\n\n" + chart_block + "\n\n"
        "<b>Trade idea: long</b>\nEntry: 41,200 – 41,800\nStop: 40,400\n"
        "Targets: 45,000 (R:R 3.18) · 46,200 (R:R 4.27)\nInvalidation: a daily close below 40,400\n\n"
        "<b>Summary</b>\nBTC is in an uptrend on the daily chart, making higher highs; &lt;i&gt; tags stay "
        "literal &amp; escaped.\n\n↩️ Chart 1 could not be read as a price chart, so its use was refunded."
        + DISCLAIMER]


async def test_album_of_non_charts_fails(openai_server):
    services = _services(limit=5)
    failed, _ = await _run(services, openai_server, [NOT_A_CHART_IMAGE, CHARTS / "not-charts" / "pie-chart.png"])

    assert failed.failure is FailureKind.NOT_A_CHART
    assert failed.error == "image 1 is not a price chart (chart confidence 0.00)"
    assert openai_server.requests == []
    assert await _used_today(services) == 0
    assert messages.failure_message(failed) == (
        "🤔 None of these images looks like a price chart; send screenshots of candlestick, "
        "bar or line charts. Your 2 uses were refunded.")
