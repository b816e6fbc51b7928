"""The Notifier port on a terminal: each message the bot sends or edits is printed in turn."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import TextIO

from bot.console.render import html_to_text, indent_reply
from bot.telegram import messages
from core.events import Progress
from core.models import Analysis


@dataclass
class ConsoleNotifier:
    """Prints replies to `out` (unless `quiet`) and keeps each chat message's latest text."""

    out: TextIO
    quiet: bool = False
    messages: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._ids = itertools.count(1)

    def say(self, html_text: str, *, edited: bool = False) -> str:
        """Show one bot message; returns its id."""
        message_id = str(next(self._ids))
        self.messages[message_id] = html_text
        self._print(html_text, edited=edited)
        return message_id

    def _print(self, html_text: str, *, edited: bool) -> None:
        if self.quiet:
            return
        prefix = "bot (edited)> " if edited else "bot> "
        print(indent_reply(html_to_text(html_text), prefix), file=self.out, flush=True)

    def _replace(self, analysis: Analysis, html_text: str) -> None:
        if analysis.ack_message_id in self.messages:
            self.messages[analysis.ack_message_id] = html_text
            self._print(html_text, edited=True)
        else:
            self.say(html_text)

    async def analysis_queued(self, analysis: Analysis, *, position: int | None = None) -> str | None:
        return self.say(messages.queued_text(position, charts=len(analysis.images)))

    async def analysis_progress(self, analysis: Analysis, progress: Progress) -> None:
        """Kept on the acknowledgement without printing: in a terminal each edit is a new line, and the
        offline reading follows within a second."""
        if analysis.ack_message_id in self.messages:
            self.messages[analysis.ack_message_id] = messages.progress_text(progress, charts=len(analysis.images))

    async def analysis_done(self, analysis: Analysis) -> None:
        parts = messages.analysis_messages(analysis)
        self._replace(analysis, parts[0])
        for part in parts[1:]:
            self.say(part)

    async def analysis_failed(self, analysis: Analysis) -> None:
        self._replace(analysis, messages.failure_message(analysis))

    async def analysis_still_working(self, analysis: Analysis) -> None:
        self.say(messages.STILL_WORKING)
