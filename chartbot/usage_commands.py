"""`chartbot usage show USER` and `chartbot usage grant USER N`: the operator's view of a user's plan."""

from __future__ import annotations

import sys
from typing import TextIO

from adapters.backends import open_usage
from bot.views.usage import usage_view
from core.models import Platform
from core.settings import Settings
from core.usage import UsageService


class InvalidUser(ValueError):
    """A USER argument is not PLATFORM:ID or ID."""


def parse_user(text: str) -> tuple[str, str]:
    """Split "telegram:123" (or a bare "123", taken as Telegram) into platform and user id."""
    platform, _, user_id = text.rpartition(":")
    platform = platform or Platform.TELEGRAM.value
    if platform not in {p.value for p in Platform} or not user_id:
        raise InvalidUser(f"invalid user {text!r}: use PLATFORM:ID, e.g. telegram:123456789")
    return platform, user_id


async def _print_summary(usage: UsageService, platform: str, user_id: str, out: TextIO) -> None:
    view = usage_view(await usage.summary(platform, user_id))
    print(f"User {platform}:{user_id}", file=out)
    for label, value in view.rows:
        print(f"  {label}: {value}", file=out)
    entries = await usage.ledger.entries(f"{platform}:{user_id}", limit=10)
    if not entries and (await usage.subscriptions.get(platform, user_id)) is None:
        print("  No analyses, grants or subscription recorded for this user yet.", file=out)
    if entries:
        print("  Latest ledger entries:", file=out)
        for entry in entries:
            detail = entry.analysis_id or entry.note or ""
            print(f"    {entry.at:%Y-%m-%d %H:%M} {entry.kind:<6} {entry.units:>4}  {detail}", file=out)


async def show_usage(settings: Settings, user: str, *, out: TextIO = sys.stdout) -> int:
    """Print a user's plan, counts and latest ledger entries."""
    platform, user_id = parse_user(user)
    backends, usage = await open_usage(settings)
    try:
        await _print_summary(usage, platform, user_id, out)
    finally:
        await backends.close()
    return 0


async def grant_usage(settings: Settings, user: str, units: int, *, note: str | None,
                      out: TextIO = sys.stdout) -> int:
    """Grant bonus uses for the user's current period, then print their usage."""
    platform, user_id = parse_user(user)
    backends, usage = await open_usage(settings)
    try:
        await usage.grant(platform, user_id, units, note=note)
        print(f"Granted {units} bonus analyses to {platform}:{user_id} for the current period.", file=out)
        await _print_summary(usage, platform, user_id, out)
    finally:
        await backends.close()
    return 0
