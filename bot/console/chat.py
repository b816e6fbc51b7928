"""A chat in the terminal: the Telegram commands, and a chart sent by typing its path."""

from __future__ import annotations

import logging
import shlex
from collections.abc import Awaitable, Callable
from pathlib import Path

from bot.console.notifier import ConsoleNotifier
from bot.telegram import messages
from core.analysis import AnalysisServices, Upload, submit_upload
from core.errors import CaptionTooLong, InvalidChartImage, UsageLimitExceeded
from bot.views.usage import usage_view
from core.models import Analysis, Platform

logger = logging.getLogger(__name__)

CONSOLE_USER = "console-user"
QUIT_COMMANDS = {"/quit", "/exit"}
CONSOLE_HINT = "Type the path of a chart image, optionally followed by your question; /help for help, /quit to leave."
TELEGRAM_ONLY = "{command} works in the Telegram bot. Here you can send charts, and use /help, /usage and /quit."
TELEGRAM_ONLY_COMMANDS = {"/subscribe", "/billing", "/journal", "/cancel", "/status", "/history"}


def _looks_like_command(word: str) -> bool:
    """Tell a command (/usage) from an absolute path (/home/me/chart.png): a path has a second / or a dot."""
    return word.startswith("/") and "/" not in word[1:] and "." not in word and not Path(word).exists()


class ConsoleChat:
    """One user's chat with the bot on the terminal."""

    def __init__(
        self,
        services: AnalysisServices,
        notifier: ConsoleNotifier,
        *,
        settle: Callable[[], Awaitable[None]],
        user_id: str = CONSOLE_USER,
    ) -> None:
        self._services = services
        self._notifier = notifier
        self._settle = settle
        self._user_id = user_id
        self._message_ids = 0

    async def send_file(self, path: Path, caption: str | None = None) -> Analysis | None:
        """Send a chart file as the user; returns the analysis, or None when it was refused."""
        limit = self._services.image_limits.max_bytes
        with path.open("rb") as file:
            # One byte past the limit is enough to refuse a file as too large.
            data = file.read(limit + 1)
        self._message_ids += 1
        upload = Upload(platform=Platform.CONSOLE, user_id=self._user_id, chat_id=self._user_id,
                        message_id=str(self._message_ids), data=data, caption=caption)
        try:
            analysis = await submit_upload(upload, self._services, self._notifier)
        except (CaptionTooLong, InvalidChartImage, UsageLimitExceeded) as error:
            logger.info("upload rejected user=%s file=%s reason=%s", self._user_id, path.name, error)
            text, _ = messages.refusal(error, limits=self._services.image_limits, now=self._services.clock())
            self._notifier.say(text)
            return None
        await self._settle()
        return analysis

    async def handle_line(self, line: str) -> bool:
        """Act on one typed line; returns False when the user leaves."""
        text = line.strip()
        if not text:
            return True
        command = text.split()[0].lower()
        if command in QUIT_COMMANDS:
            return False
        if command == "/start":
            self._notifier.say(messages.WELCOME)
        elif command == "/help":
            self._notifier.say(messages.help_text(self._services.usage.plans))
            self._notifier.say(CONSOLE_HINT)
        elif command == "/usage":
            view = usage_view(await self._services.usage.summary(Platform.CONSOLE.value, self._user_id))
            self._notifier.say(messages.usage_html(view))
        elif command in TELEGRAM_ONLY_COMMANDS:
            self._notifier.say(TELEGRAM_ONLY.format(command=command))
        elif _looks_like_command(text.split()[0]):
            self._notifier.say(f"Unknown command {command}. {CONSOLE_HINT}")
        else:
            # An absolute path starts with / too, so anything that names a file is a chart.
            await self._send_typed_path(text)
        return True

    async def _send_typed_path(self, text: str) -> None:
        try:
            words = shlex.split(text)
        except ValueError:
            words = text.split()
        path = Path(words[0]).expanduser()
        if not path.is_file():
            self._notifier.say(f"No file at {path}. {CONSOLE_HINT}")
            return
        caption = " ".join(words[1:]) or None
        await self.send_file(path, caption)
