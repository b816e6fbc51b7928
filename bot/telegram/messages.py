"""Every text the Telegram bot sends, as Telegram HTML."""

from __future__ import annotations

from datetime import datetime

from bot.telegram.analysis_html import analysis_blocks
from bot.telegram.formatting import escape, pack_html_blocks, render_markdown_messages
from bot.views.usage import Button, UsageView, limit_refusal, plans_overview
from core.errors import (
    CaptionTooLong,
    ImageProblem,
    InvalidChartImage,
    InvalidChartInRequest,
    TooManyCharts,
    UsageLimitExceeded,
)
from core.images import ImageLimits
from core.plans import PlanTable
from core.events import Progress, Stage
from core.models import CAPTION_MAX_CHARS, Analysis, FailureKind

COMMANDS = [
    ("start", "What ChartBot does"),
    ("help", "How to send a chart, and the commands"),
    ("usage", "Your plan and the analyses you have left"),
    ("subscribe", "Pay for a plan with more analyses"),
    ("billing", "Manage your subscription and payment method"),
    ("journal", "Your trade journal: add, list, close, stats, export"),
    ("status", "Your analyses in progress and their place in the queue"),
    ("cancel", "Cancel your queued or running analysis"),
    ("history", "Your past analyses, with their charts"),
]

WELCOME = (
    "👋 <b>ChartBot</b> reads your price charts.\n\n"
    "Send a screenshot of a candlestick, bar or line chart and you get a technical analysis back "
    "in this chat: trend, key support and resistance levels, visible patterns and the scenarios to watch.\n\n"
    "Add a caption to ask something specific, for example <i>Is this breakout holding?</i>\n\n"
    "Send /help for the details."
)

HELP = (
    "<b>How to use ChartBot</b>\n\n"
    "1. Take a screenshot of your chart (TradingView, your exchange, any charting app).\n"
    "2. Send it here as a photo, or as a PNG, JPEG or WebP file for full resolution.\n"
    "3. Optionally add a caption with your question (up to {caption_limit} characters).\n\n"
    "{album_line}"
    "The bot answers at once that the chart is queued, then replaces that message with the analysis.\n\n"
    "<b>Limits</b>\n"
    "Each chart analysed is one use. The free plan gives {daily_limit} a day (reset at 00:00 UTC) and "
    "{period_limit} a month; paid plans give more. A chart that fails or is not a chart costs nothing. "
    "Files up to 20 MB are accepted.\n\n"
    "<b>Commands</b>\n"
    "/start: what ChartBot does\n"
    "/help: this message\n"
    "/usage: your plan and the analyses you have left\n"
    "/subscribe: pay for a plan with more analyses\n"
    "/billing: manage your subscription, payment method and invoices\n"
    "/journal: your trade journal with P&amp;L, R multiples and stats (/journal help lists its commands)\n"
    "/status: your analyses in progress and their place in the queue\n"
    "/cancel: cancel your newest queued or running analysis, with the use refunded\n"
    "/history: your past analyses, newest first; choose one to see its chart and analysis again"
)

HELP_ALBUMS = (
    "Send up to {max_charts} charts as one album for a multi-timeframe analysis, "
    "for example the daily, 4-hour and 1-hour chart of one market. "
    "The album gets one analysis, the caption on any of its photos is the question, and each chart is one use.\n\n"
)

UNKNOWN_COMMAND = "There is no {command} command. Send /help for the list of commands."

SEND_A_CHART = "Send me a chart screenshot as a photo or as an image file, and I will analyse it. /help explains more."

QUEUED = "⏳ Chart received. Your analysis is queued and will appear in this message shortly."
ANALYSING = "🔎 Analysing your chart. The analysis will appear in this message."
ANALYSING_CHARTS = "🔎 Analysing your {charts} charts together. The analysis will appear in this message."


def queued_text(position: int | None, *, charts: int = 1) -> str:
    """Return the acknowledgement of `charts` charts, with the place in the queue when it is known."""
    received = "Chart received" if charts == 1 else f"{charts} charts received"
    if position is None:
        return QUEUED.replace("Chart received", received)
    if position <= 1:
        return f"⏳ {received}. You are next in the queue; the analysis will appear in this message."
    return f"⏳ {received}. You are number {position} in the queue; the analysis will appear in this message."


def progress_text(progress: Progress, *, charts: int = 1) -> str:
    """Return the acknowledgement text for a progress event of an analysis of `charts` charts."""
    if progress.stage is Stage.QUEUED:
        return queued_text(progress.position, charts=charts)
    if progress.stage is Stage.RETRYING:
        return (f"🔁 The chart model did not answer; trying again (attempt {progress.attempt} of "
                f"{progress.max_attempts}). The analysis will appear in this message.")
    return ANALYSING if charts == 1 else ANALYSING_CHARTS.format(charts=charts)

FAILED = (
    "❌ The analysis failed because the chart model did not answer. "
    "Your use was refunded, so you can send the chart again in a few minutes."
)

NOT_A_CHART = (
    "🤔 This does not look like a price chart; send a screenshot of a candlestick, bar or line chart. "
    "Your use was refunded."
)

NOT_CHARTS = (
    "🤔 None of these images looks like a price chart; send screenshots of candlestick, bar "
    "or line charts. Your use was refunded."
)

NOT_QUEUED = (
    "❌ The chart could not be queued because of a problem on our side. "
    "Your use was refunded; please send it again in a minute."
)

INVALID_REPLY = (
    "❌ The analysis failed because the chart model's answer could not be read, twice. "
    "Your use was refunded, so you can send the chart again."
)

IMAGE_LOST = (
    "❌ The analysis failed because the stored chart could not be read. "
    "Your use was refunded; please send the chart again."
)

CANCELLED = "🚫 The analysis was cancelled. Your use was refunded."

TIMED_OUT = (
    "❌ The analysis took too long and was stopped. "
    "Your use was refunded, so you can send the chart again."
)

STILL_WORKING = "⏳ Still working on your chart. The analysis is taking longer than usual."

CAPTION_TOO_LONG = (
    "Your caption is {length} characters long and the limit is {limit}. "
    "Shorten your question and send the chart again."
)

FILE_TOO_LARGE = (
    "That file is too large ({size}). Telegram lets bots download files up to 20 MB: "
    "send a smaller screenshot, or send it as a photo."
)

ALBUM_TOO_MANY_CHARTS = (
    "You sent {count} charts in one album, and one analysis takes at most {limit}. "
    "Send the album again with {limit} charts or fewer. Nothing was counted against your limit."
)

ALBUM_CHART_REJECTED = "The album was not analysed because of chart {position} of {count}. {reason}"

ALBUM_PART_LATE = (
    "This chart arrived after the rest of its album had been sent for analysis, so it is not part of that "
    "analysis. Send it again on its own or in a new album. Nothing was counted against your limit."
)

ANALYSIS_HEADER = "📊 <b>Chart analysis</b>"
DISCLAIMER = "<i>Not financial advice.</i>"


def format_megabytes(size_bytes: int) -> str:
    """Return a size in megabytes for a message, e.g. "25.3 MB"."""
    return f"{size_bytes / 1_000_000:.1f} MB"


def invalid_image(error: InvalidChartImage, *, min_side: int, max_pixels: int) -> str:
    """Explain in plain words why an uploaded file cannot be analysed."""
    detail = escape(error.detail)
    texts = {
        ImageProblem.EMPTY: "That file is empty. Send the chart screenshot again.",
        ImageProblem.NOT_AN_IMAGE: (
            "That file is not an image. Send a chart screenshot as a photo, or as a PNG, JPEG or WebP file."
        ),
        ImageProblem.UNSUPPORTED_FORMAT: (
            f"That image format is not supported ({detail}). "
            "Send the chart as a photo, or as a PNG, JPEG or WebP file."
        ),
        ImageProblem.ANIMATED: "Animated images cannot be analysed. Send a still screenshot of the chart.",
        ImageProblem.TOO_LARGE: FILE_TOO_LARGE.format(size=detail),
        ImageProblem.TOO_MANY_PIXELS: (
            f"That image is too large to read ({detail}). The limit is {max_pixels / 1_000_000:g} megapixels: "
            "send an ordinary screenshot."
        ),
        ImageProblem.TOO_SMALL: (
            f"That image is too small to read a chart ({detail}). "
            f"Send a screenshot at least {min_side} pixels on each side."
        ),
        ImageProblem.CORRUPT: (
            "That image could not be read: the file is damaged or incomplete. "
            "Take the screenshot again and resend it."
        ),
    }
    return texts[error.problem] + " Nothing was counted against your limit."


def help_text(plans: PlanTable, *, max_charts: int | None = None) -> str:
    """Return /help with the free plan's limits filled in; with `max_charts` it explains albums too."""
    daily = "no limit" if plans.free.daily_limit is None else plans.free.daily_limit
    album_line = "" if max_charts is None else HELP_ALBUMS.format(max_charts=max_charts)
    return HELP.format(caption_limit=CAPTION_MAX_CHARS, daily_limit=daily, period_limit=plans.free.period_limit,
                       album_line=album_line)


def usage_html(view: UsageView) -> str:
    """Render the /usage view as Telegram HTML."""
    rows = "\n".join(f"<b>{escape(label)}:</b> {escape(value)}" for label, value in view.rows)
    return f"<b>{escape(view.title)}</b>\n\n{rows}"


def upgrade_text(plans: PlanTable, *, payments_enabled: bool = False) -> str:
    """List the paid plans for /subscribe and the Upgrade button; the plan buttons go under it when payments work."""
    lines = "\n".join(f"• {escape(line)}" for line in plans_overview(plans))
    if payments_enabled:
        ending = "Choose a plan to pay on Stripe's secure checkout page. It starts as soon as the payment goes through."
    else:
        ending = "Payments are not set up on this bot yet: ask its operator to upgrade your plan."
    return f"<b>⭐ ChartBot plans</b>\n\n{lines}\n\n{ending}"


BILLING_NOT_SET_UP = "Payments are not set up on this bot yet: ask its operator about your subscription."


def refusal(error: CaptionTooLong | InvalidChartImage | InvalidChartInRequest | TooManyCharts | UsageLimitExceeded,
            *, limits: ImageLimits, now: datetime) -> tuple[str, Button | None]:
    """Explain a request the core refused before queueing it; a limit refusal comes with a button."""
    if isinstance(error, CaptionTooLong):
        return CAPTION_TOO_LONG.format(length=error.length, limit=error.limit), None
    if isinstance(error, InvalidChartImage):
        return invalid_image(error, min_side=limits.min_side, max_pixels=limits.max_pixels), None
    if isinstance(error, InvalidChartInRequest):
        reason = invalid_image(error.error, min_side=limits.min_side, max_pixels=limits.max_pixels)
        return ALBUM_CHART_REJECTED.format(position=error.position, count=error.count, reason=reason), None
    if isinstance(error, TooManyCharts):
        return ALBUM_TOO_MANY_CHARTS.format(count=error.count, limit=error.limit), None
    text, button = limit_refusal(error, now=now)
    return escape(text), button


def failure_message(analysis: Analysis) -> str:
    """Explain why an analysis failed; every failure was refunded."""
    charts = len(analysis.images)
    texts = {
        FailureKind.NOT_A_CHART: NOT_A_CHART if charts == 1 else NOT_CHARTS,
        FailureKind.QUEUE: NOT_QUEUED,
        FailureKind.IMAGE_MISSING: IMAGE_LOST,
        FailureKind.CANCELLED: CANCELLED,
        FailureKind.TIMED_OUT: TIMED_OUT,
        FailureKind.INVALID_REPLY: INVALID_REPLY,
    }
    text = texts.get(analysis.failure, FAILED)
    if charts > 1:
        # One use per chart was reserved, and all of them were refunded.
        text = text.replace("Your use was refunded", f"Your {charts} uses were refunded")
        text = text.replace("the chart again", "the charts again")
    return text


def unreadable_charts_refunded(charts: list[int]) -> str:
    """Tell the trader which charts of an album were not read as charts, and that they cost nothing."""
    if len(charts) == 1:
        return f"↩️ Chart {charts[0]} could not be read as a price chart, so its use was refunded."
    numbers = ", ".join(str(chart) for chart in charts[:-1]) + f" and {charts[-1]}"
    return f"↩️ Charts {numbers} could not be read as price charts, so their {len(charts)} uses were refunded."


def analysis_messages(analysis: Analysis) -> list[str]:
    """Render a finished analysis as one or more Telegram HTML messages.

    A structured result (the vision model's) is rendered field by field; the
    offline reader's text is light Markdown.
    """
    charts = len(analysis.images)
    header = ANALYSIS_HEADER if charts == 1 else f"📊 <b>Analysis of {charts} charts</b>"
    if analysis.caption:
        header += f"\n<i>Your question: {escape(analysis.caption)}</i>"
    if analysis.result is not None:
        # A refunded chart missing from the model's report is one the reader found not to be a chart.
        reported = {chart.chart for chart in analysis.result.report.charts}
        left_out = [number for number in analysis.refunded_charts if number not in reported]
        blocks = analysis_blocks(analysis.result, charts_sent=charts, left_out=left_out)
        if analysis.refunded_charts:
            blocks.append(unreadable_charts_refunded(analysis.refunded_charts))
        return pack_html_blocks(blocks, header=header, footer=DISCLAIMER)
    return render_markdown_messages(analysis.result_text or "", header=header, footer=DISCLAIMER)
