"""`chartbot demo` and `chartbot chat`: ChartBot in the terminal with no account and no server."""

from __future__ import annotations

import asyncio
import json
import sys
from importlib import resources
from pathlib import Path
from typing import TextIO

from bot.console.chat import CONSOLE_HINT, ConsoleChat
from bot.console.notifier import ConsoleNotifier
from bot.console.render import html_to_text
from chartbot.embedded import start_embedded
from core.models import Analysis
from core.settings import Settings


def sample_charts() -> list[Path]:
    """Return the sample charts shipped in the package."""
    folder = resources.files("chartbot.samples")
    return sorted(Path(str(entry)) for entry in folder.iterdir() if entry.name.endswith(".png"))


IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp"}


def expand_images(paths: list[Path]) -> list[Path]:
    """Replace each folder in `paths` by the images in it, sorted by name; files stay as given."""
    expanded: list[Path] = []
    for path in paths:
        if path.is_dir():
            expanded.extend(sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES))
        else:
            expanded.append(path)
    return expanded


def _model_description(settings: Settings) -> str:
    if settings.openai_api_key is not None and settings.openai_api_key.get_secret_value():
        return f"model {settings.openai_model}"
    return "the offline chart reader (OPENAI_API_KEY is not set)"


def _verdict(analysis: Analysis | None) -> dict | None:
    if analysis is None or not analysis.findings:
        return None
    findings = analysis.findings[0]
    return {
        "is_chart": findings.is_chart,
        "confidence": findings.confidence,
        "chart_type": findings.chart_type,
        "bars": findings.bar_count,
        "trend": findings.trend,
        "levels": [level.model_dump() for level in findings.levels],
    }


async def run_demo(paths: list[Path], *, as_json: bool, settings: Settings, out: TextIO = sys.stdout) -> int:
    """Send each image as a chat user would and print the replies, or one JSON object per image."""
    notifier = ConsoleNotifier(out=out, quiet=as_json)
    # The demo's one user may send every image given, whatever the free plan allows a day.
    plans = settings.plan_table()
    room = max(len(paths), plans.free.daily_limit or 0, plans.free.period_limit)
    plans = plans.model_copy(update={"free": plans.free.model_copy(update={"daily_limit": room, "period_limit": room})})
    bot = await start_embedded(settings, notifier, plans=plans)
    chat = ConsoleChat(bot.services, notifier, settle=bot.settle)
    if not as_json:
        print(f"ChartBot demo: {len(paths)} image(s), analysed by {_model_description(settings)}.\n", file=out)
    try:
        for path in paths:
            first_new = len(notifier.messages) + 1
            if not as_json:
                print(f"you> [image] {path.name}", file=out, flush=True)
            analysis = await chat.send_file(path)
            if analysis is not None:
                analysis = await bot.services.analyses.get(analysis.id)
            if as_json:
                replies = [html_to_text(text) for key, text in notifier.messages.items() if int(key) >= first_new]
                record = {"file": str(path), "reader": _verdict(analysis), "reply": "\n\n".join(replies)}
                print(json.dumps(record, ensure_ascii=False), file=out, flush=True)
            else:
                print(file=out)
    finally:
        await bot.close()
    return 0


async def run_chat(settings: Settings, *, out: TextIO = sys.stdout) -> int:
    """Run an interactive chat on the terminal until /quit or end of input."""
    notifier = ConsoleNotifier(out=out)
    bot = await start_embedded(settings, notifier, plans=settings.plan_table())
    chat = ConsoleChat(bot.services, notifier, settle=bot.settle)
    print(f"ChartBot chat, analysed by {_model_description(settings)}. {CONSOLE_HINT}", file=out)
    try:
        while True:
            try:
                line = await asyncio.to_thread(input, "you> ")
            except EOFError:
                break
            if not await chat.handle_line(line):
                break
    finally:
        await bot.close()
    return 0
