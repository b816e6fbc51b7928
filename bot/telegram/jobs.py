"""/status and /cancel: a trader's analyses in progress, and cancelling one with its refund."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.constants import ParseMode
from telegram.ext import BaseHandler, CommandHandler, ContextTypes

from core.jobs import (
    ANALYZE_TASK_NAME,
    CancelOutcome,
    JobState,
    NothingToCancel,
    QueuedJob,
    cancel_latest_analysis,
    user_jobs,
)
from core.models import Platform

logger = logging.getLogger(__name__)

NO_JOBS = "You have no analyses in progress. Send a chart to start one."
NOTHING_TO_CANCEL = "There is nothing to cancel."
STATUS_TITLE = "<b>Your analyses in progress</b>"


def status_line(job: QueuedJob) -> str:
    """Describe one job in flight for /status."""
    label = "Analysis" if job.record.name == ANALYZE_TASK_NAME else "Job"
    if job.record.state is JobState.RUNNING:
        if job.record.cancel_requested:
            return f"• {label}: stopping after a cancel"
        return f"• {label}: running now"
    if job.record.state is JobState.QUEUED and job.position is not None:
        return f"• {label}: queued, number {job.position} in the queue"
    return f"• {label}: {job.record.state.value}"


def status_text(jobs: list[QueuedJob]) -> str:
    """Render /status as Telegram HTML."""
    if not jobs:
        return NO_JOBS
    return STATUS_TITLE + "\n\n" + "\n".join(status_line(job) for job in jobs)


def cancel_text(outcome: CancelOutcome) -> str:
    """Render the /cancel reply, with the refund."""
    was = "running" if outcome.previous is JobState.RUNNING else "queued"
    if outcome.refunded_units == 0:
        return f"Your {was} analysis was cancelled. It had already been refunded."
    uses = "use" if outcome.refunded_units == 1 else "uses"
    return f"Your {was} analysis was cancelled and {outcome.refunded_units} {uses} refunded."


async def status_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/status: a trader requests their analyses in progress and their queue positions."""
    services = context.application.bot_data["chartbot"].services
    jobs = await user_jobs(services, Platform.TELEGRAM.value, str(update.effective_user.id))
    await update.effective_message.reply_text(status_text(jobs), parse_mode=ParseMode.HTML, do_quote=True)


async def cancel_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/cancel: a trader cancels their newest queued or running analysis."""
    bot_context = context.application.bot_data["chartbot"]
    user_id = str(update.effective_user.id)
    try:
        outcome = await cancel_latest_analysis(bot_context.services, bot_context.notifier,
                                               Platform.TELEGRAM.value, user_id)
    except NothingToCancel:
        text = NOTHING_TO_CANCEL
    else:
        text = cancel_text(outcome)
    await update.effective_message.reply_text(text, parse_mode=ParseMode.HTML, do_quote=True)


# /cancel has no handler here: the journal's guided entry takes every /cancel first, stops an open
# journal entry when there is one, and otherwise calls cancel_command.
HANDLERS: list[BaseHandler] = [
    CommandHandler("status", status_command),
]
