"""The `chartbot` command: start a process of the bot."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path

from pydantic import ValidationError

from bot.telegram.client import quiet_http_loggers
from core.errors import MissingSetting
from core.settings import Settings

logger = logging.getLogger("chartbot")


LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# The worker's processes log the same way, with the process's name, since one worker runs several.
WORKER_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(processName)s]: %(message)s"


def _configure_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format=LOG_FORMAT)
    quiet_http_loggers()


def _run_telegram(settings: Settings, _: argparse.Namespace) -> int:
    settings.require("mongodb_url", "redis_url", "telegram_bot_token")
    from bot.telegram.app import run_polling

    run_polling(settings)
    return 0


def _run_web(settings: Settings, _: argparse.Namespace) -> int:
    settings.require("mongodb_url", "redis_url")
    from bot.web.server import serve

    asyncio.run(serve(settings))
    return 0


def _run_worker(settings: Settings, _: argparse.Namespace) -> int:
    settings.require("mongodb_url", "redis_url", "telegram_bot_token")
    command = [
        sys.executable, "-m", "taskiq", "worker", "workers.app:broker",
        "--workers", str(settings.worker_processes),
        # Take a job only when one of the concurrency slots is free to start it.
        "--max-async-tasks", str(settings.worker_concurrency),
        "--max-prefetch", "0",
        # After a stop signal, running jobs get the grace period; unfinished ones are handed back.
        "--wait-tasks-timeout", str(settings.worker_stop_grace_seconds),
        "--ack-type", "when_executed",
        "--log-level", settings.log_level.upper(),
        "--log-format", WORKER_LOG_FORMAT,
    ]
    logger.info("starting taskiq worker processes=%d concurrency=%d",
                settings.worker_processes, settings.worker_concurrency)
    os.execv(sys.executable, command)
    return 0


def _run_demo(settings: Settings, arguments: argparse.Namespace) -> int:
    from chartbot.demo import expand_images, run_demo, sample_charts

    paths = expand_images([Path(p) for p in arguments.images]) or sample_charts()
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        print(f"chartbot: no such file: {', '.join(missing)}", file=sys.stderr)
        return 2
    return asyncio.run(run_demo(paths, as_json=arguments.json, settings=settings))


def _run_chat(settings: Settings, _: argparse.Namespace) -> int:
    from chartbot.demo import run_chat

    return asyncio.run(run_chat(settings))


def _run_usage(settings: Settings, arguments: argparse.Namespace) -> int:
    from chartbot.usage_commands import InvalidUser, grant_usage, show_usage

    settings.require("mongodb_url", "redis_url")
    try:
        if arguments.usage_command == "show":
            return asyncio.run(show_usage(settings, arguments.user))
        if arguments.units < 1:
            print(f"chartbot: invalid number of uses {arguments.units}: grant at least 1", file=sys.stderr)
            return 2
        return asyncio.run(grant_usage(settings, arguments.user, arguments.units, note=arguments.note))
    except InvalidUser as error:
        print(f"chartbot: {error}", file=sys.stderr)
        return 2


def _run_scheduler(settings: Settings, _: argparse.Namespace) -> int:
    settings.require("mongodb_url", "redis_url")
    from chartbot.job_commands import run_scheduler

    return asyncio.run(run_scheduler(settings))


def _run_jobs(settings: Settings, arguments: argparse.Namespace) -> int:
    from chartbot import job_commands

    settings.require("mongodb_url", "redis_url")
    command = arguments.jobs_command
    if command == "list":
        return asyncio.run(job_commands.list_jobs(settings, name=arguments.name, state=arguments.state,
                                                  owner=arguments.owner))
    if command == "show":
        return asyncio.run(job_commands.show_job(settings, arguments.job_id))
    if command == "cancel":
        settings.require("telegram_bot_token")
        return asyncio.run(job_commands.cancel_job(settings, arguments.job_id))
    if command == "schedules":
        return asyncio.run(job_commands.list_schedules(settings))
    return asyncio.run(job_commands.add_recurring(settings, arguments.key, arguments.cron, arguments.task))


def _add_jobs_parser(commands) -> None:
    jobs = commands.add_parser("jobs", help="find, show and cancel background jobs; manage recurring schedules")
    jobs.set_defaults(run=_run_jobs, quiet=True)
    jobs_commands = jobs.add_subparsers(dest="jobs_command", required=True)
    listing = jobs_commands.add_parser("list", help="print jobs, newest first")
    listing.add_argument("--name", help="task name, e.g. chartbot.analyze_chart")
    listing.add_argument("--state", help="scheduled, queued, running, completed, failed or cancelled")
    listing.add_argument("--owner", help="PLATFORM:ID, e.g. telegram:123456789")
    jobs_commands.add_parser("show", help="print one job's record").add_argument("job_id")
    jobs_commands.add_parser("cancel", help="cancel a job; a cancelled analysis is refunded").add_argument("job_id")
    jobs_commands.add_parser("schedules", help="print the recurring schedules")
    recurring = jobs_commands.add_parser("add-recurring", help="add or replace a recurring maintenance job")
    recurring.add_argument("key", help="stable schedule key; adding it again replaces the schedule")
    recurring.add_argument("cron", help="five-field cron expression in UTC, e.g. '*/10 * * * *'")
    recurring.add_argument("task", help="task name, e.g. chartbot.jobs.maintenance")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chartbot", description="ChartBot: chart analysis for traders in chat.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("telegram", help="run the Telegram bot (polling)").set_defaults(run=_run_telegram)
    commands.add_parser("worker", help="run the taskiq worker that analyses charts").set_defaults(run=_run_worker)
    commands.add_parser(
        "scheduler", help="queue delayed jobs when due and fire recurring schedules"
    ).set_defaults(run=_run_scheduler)
    _add_jobs_parser(commands)
    commands.add_parser(
        "web", help="serve the Stripe webhook, the Telegram webhook (with TELEGRAM_WEBHOOK_URL), /healthz and /metrics"
    ).set_defaults(run=_run_web)
    demo = commands.add_parser("demo", help="analyse images in one process with no server or account")
    demo.add_argument("images", nargs="*", help="chart images to send (default: the shipped samples)")
    demo.add_argument("--json", action="store_true", help="print one JSON object per image instead of the chat")
    demo.set_defaults(run=_run_demo, quiet=True)
    commands.add_parser("chat", help="chat with the bot in the terminal").set_defaults(run=_run_chat, quiet=True)
    usage = commands.add_parser("usage", help="show a user's usage or grant bonus uses")
    usage.set_defaults(run=_run_usage, quiet=True)
    usage_commands = usage.add_subparsers(dest="usage_command", required=True)
    show = usage_commands.add_parser("show", help="print a user's plan, counts and latest ledger entries")
    show.add_argument("user", help="PLATFORM:ID, e.g. telegram:123456789")
    grant = usage_commands.add_parser("grant", help="add bonus uses to a user's current period")
    grant.add_argument("user", help="PLATFORM:ID, e.g. telegram:123456789")
    grant.add_argument("units", type=int, help="number of bonus analyses")
    grant.add_argument("--note", help="why, kept in the ledger")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the chosen process; returns the exit status."""
    arguments = _parser().parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as error:
        print(f"chartbot: invalid setting: {error}", file=sys.stderr)
        return 2
    # The terminal commands show the chat, so their logs stay at ERROR unless LOG_LEVEL is set.
    quiet = getattr(arguments, "quiet", False) and "LOG_LEVEL" not in os.environ
    _configure_logging("ERROR" if quiet else settings.log_level)
    try:
        return arguments.run(settings, arguments)
    except MissingSetting as error:
        print(f"chartbot: cannot start {arguments.command}: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
