"""`chartbot web`: open the backends, start the Telegram bot in webhook mode when configured, serve with uvicorn."""

from __future__ import annotations

import logging
import signal
from contextlib import AsyncExitStack

import uvicorn
from redis.asyncio import Redis
from telegram import Bot, Update
from telegram.ext import Application

from adapters.mongo import connect
from adapters.mongo_billing import build_billing_services, ensure_billing_indexes
from adapters.mongo_usage import ensure_usage_indexes
from bot.telegram.app import build_application
from bot.telegram.billing_notifier import TelegramBillingNotifier
from bot.telegram.client import build_bot
from bot.web.app import WebContext, build_web_app
from core.settings import Settings

logger = logging.getLogger(__name__)


async def start_telegram_webhook(settings: Settings) -> Application:
    """Start the bot's Application without polling and register TELEGRAM_WEBHOOK_URL with its secret token.

    Updates then arrive through POST /telegram/webhook and go to `update_queue`.
    """
    settings.require("telegram_bot_token", "telegram_webhook_url", "telegram_webhook_secret")
    assert settings.telegram_webhook_url is not None and settings.telegram_webhook_secret is not None
    application = build_application(settings)
    await application.initialize()
    # run_polling and run_webhook call post_init; starting the Application by hand does not.
    if application.post_init is not None:
        await application.post_init(application)
    await application.start()
    await application.bot.set_webhook(url=settings.telegram_webhook_url, allowed_updates=Update.ALL_TYPES,
                                      secret_token=settings.telegram_webhook_secret.get_secret_value())
    logger.info("Telegram bot started in webhook mode url=%s", settings.telegram_webhook_url)
    return application


async def stop_telegram_webhook(application: Application) -> None:
    """Stop the Application; the webhook stays registered for the other web processes."""
    await application.stop()
    await application.shutdown()
    if application.post_shutdown is not None:
        await application.post_shutdown(application)


async def serve(settings: Settings) -> None:
    """Run the web app on WEB_HOST:WEB_PORT until SIGINT or SIGTERM, then close every client."""
    settings.require("mongodb_url", "redis_url")
    assert settings.mongodb_url is not None and settings.redis_url is not None
    async with AsyncExitStack() as stack:
        mongo = connect(settings.mongodb_url)
        stack.push_async_callback(mongo.close)
        db = mongo[settings.mongodb_database]
        await ensure_usage_indexes(db)
        await ensure_billing_indexes(db)
        redis = Redis.from_url(settings.redis_url)
        stack.push_async_callback(redis.aclose)
        await redis.ping()

        telegram: Application | None = None
        bot: Bot | None = None
        if settings.telegram_webhook_url:
            telegram = await start_telegram_webhook(settings)
            stack.push_async_callback(stop_telegram_webhook, telegram)
            bot = telegram.bot
        elif settings.telegram_bot_token is not None:
            bot = build_bot(settings)
            await bot.initialize()
            stack.push_async_callback(bot.shutdown)
        else:
            logger.warning("TELEGRAM_BOT_TOKEN is not set: plan changes are stored but no message is sent to users")
        if settings.stripe_webhook_secret is None:
            logger.warning("STRIPE_WEBHOOK_SECRET is not set: POST /stripe/webhook responds with 503")

        web = WebContext(
            billing=build_billing_services(settings, db, redis),
            notifier=TelegramBillingNotifier(bot) if bot is not None else None,
            stripe_webhook_secret=(settings.stripe_webhook_secret.get_secret_value()
                                   if settings.stripe_webhook_secret else None),
            stripe_tolerance_seconds=settings.stripe_webhook_tolerance_seconds,
            telegram=telegram,
            telegram_secret=(settings.telegram_webhook_secret.get_secret_value()
                             if settings.telegram_webhook_secret else None),
            health_checks={"mongodb": lambda: db.command("ping"), "redis": redis.ping},
        )
        config = uvicorn.Config(build_web_app(web), host=settings.web_host, port=settings.web_port,
                                lifespan="off", log_level=settings.log_level.lower(), access_log=False)
        logger.info("web server starting host=%s port=%d telegram_webhook=%s", settings.web_host,
                    settings.web_port, telegram is not None)
        await _serve_until_signal(uvicorn.Server(config))
    logger.info("web server stopped")


async def _serve_until_signal(server: uvicorn.Server) -> None:
    """Run uvicorn until SIGINT or SIGTERM, and return so the caller can close its clients.

    uvicorn (0.29 and later) raises the signal again after its shutdown, so
    that the process ends with the default action. A no-op handler set here
    takes that second signal instead, and the previous handlers come back afterwards.
    """
    def already_stopping(signum: int, _frame: object) -> None:
        logger.info("signal %d received while stopping", signum)

    previous = {signum: signal.signal(signum, already_stopping) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        await server.serve()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
