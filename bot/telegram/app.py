"""The python-telegram-bot Application: built in one place, every handler in one list."""

from __future__ import annotations

import logging

from telegram import BotCommand, Update
from telegram.ext import (
    Application,
    ApplicationBuilder,
    BaseHandler,
    CallbackQueryHandler,
    CommandHandler,
    MessageHandler,
    filters,
)

from adapters.backends import open_backends
from adapters.mongo_billing import build_billing_services, ensure_billing_indexes
from adapters.mongo_journal import open_journal_services
from adapters.redis_albums import RedisAlbumBuffer
from adapters.redis_journal_drafts import RedisGuidedDraftStore
from adapters.taskiq_queue import build_redis_broker
from bot.telegram import album, billing, handlers, history, jobs, journal, messages
from bot.telegram.client import api_urls
from bot.telegram.notifier import once_telegram_notifier
from bot.views.usage import BILLING, UPGRADE
from core.settings import Settings

logger = logging.getLogger(__name__)

HANDLERS: list[BaseHandler] = [
    CommandHandler("start", handlers.start),
    CommandHandler("help", handlers.help_command),
    CommandHandler("usage", handlers.usage_command),
    CallbackQueryHandler(handlers.plan_button, pattern=f"^({UPGRADE}|{BILLING})$"),
    *billing.HANDLERS,
    *journal.HANDLERS,
    *jobs.HANDLERS,
    *history.HANDLERS,
    MessageHandler(album.IN_ALBUM & filters.PHOTO, album.album_photo),
    MessageHandler(album.IN_ALBUM & filters.Document.ALL, album.album_document),
    MessageHandler(filters.PHOTO, handlers.chart_photo),
    MessageHandler(filters.Document.ALL, handlers.chart_document),
    MessageHandler(~filters.COMMAND & ~filters.StatusUpdate.ALL, handlers.other_message),
    MessageHandler(filters.COMMAND, handlers.unknown_command),
]


async def _post_init(application: Application) -> None:
    settings: Settings = application.bot_data["settings"]
    broker = build_redis_broker(settings)
    await broker.startup()
    backends = await open_backends(settings, broker)
    application.bot_data["broker"] = broker
    application.bot_data["backends"] = backends
    journal_services = await open_journal_services(
        backends.mongo[settings.mongodb_database], drafts=RedisGuidedDraftStore(backends.redis)
    )
    application.bot_data["chartbot"] = handlers.BotContext(
        settings=settings, services=backends.services,
        notifier=once_telegram_notifier(application.bot, backends, settings),
        journal=journal_services,
        albums=RedisAlbumBuffer(backends.redis),
    )
    billing_db = backends.mongo[settings.mongodb_database]
    await ensure_billing_indexes(billing_db)
    application.bot_data["billing"] = build_billing_services(settings, billing_db, backends.redis)
    await application.bot.set_my_commands([BotCommand(name, text) for name, text in messages.COMMANDS])
    logger.info("Telegram bot ready username=%s", application.bot.username)


async def _post_shutdown(application: Application) -> None:
    backends = application.bot_data.get("backends")
    if backends is not None:
        await backends.close()
    broker = application.bot_data.get("broker")
    if broker is not None:
        await broker.shutdown()
    logger.info("Telegram bot stopped")


def build_application(settings: Settings) -> Application:
    """Build the Application for the configured token and Bot API server."""
    settings.require("telegram_bot_token")
    assert settings.telegram_bot_token is not None
    base_url, base_file_url = api_urls(settings)
    application = (
        ApplicationBuilder()
        .token(settings.telegram_bot_token.get_secret_value())
        .base_url(base_url)
        .base_file_url(base_file_url)
        .concurrent_updates(16)
        .post_init(_post_init)
        .post_shutdown(_post_shutdown)
        .build()
    )
    application.bot_data["settings"] = settings
    application.add_handlers(HANDLERS)
    application.add_error_handler(handlers.on_error)
    return application


def run_polling(settings: Settings) -> None:
    """Run the bot with getUpdates until SIGINT or SIGTERM."""
    application = build_application(settings)
    logger.info("Telegram bot starting in polling mode api=%s", settings.telegram_api_url)
    application.run_polling(allowed_updates=Update.ALL_TYPES)
