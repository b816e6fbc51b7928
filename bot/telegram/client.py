"""The python-telegram-bot Bot, pointed at TELEGRAM_API_URL, for the bot and the workers."""

from __future__ import annotations

import logging

from telegram import Bot

from core.settings import Settings


def quiet_http_loggers() -> None:
    """Raise the HTTP client loggers to WARNING: their request lines contain the bot token."""
    for name in ("httpx", "httpx2", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)


def api_urls(settings: Settings) -> tuple[str, str]:
    """Return python-telegram-bot's base_url and base_file_url for the configured Bot API server."""
    root = settings.telegram_api_url.rstrip("/")
    return f"{root}/bot", f"{root}/file/bot"


def build_bot(settings: Settings) -> Bot:
    """Create a Bot for the configured token and API server; the caller initializes and shuts it down."""
    settings.require("telegram_bot_token")
    assert settings.telegram_bot_token is not None
    base_url, base_file_url = api_urls(settings)
    return Bot(settings.telegram_bot_token.get_secret_value(), base_url=base_url, base_file_url=base_file_url)
