"""The Starlette app: POST /stripe/webhook, POST /telegram/webhook, GET /healthz and GET /metrics.

Each request reads and writes shared stores only (MongoDB, Redis), so any
number of these processes can run behind a load balancer. Slow work (the
chat messages about a plan change, a subscription fetched from Stripe)
runs after the response has been sent.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from telegram import Update
from telegram.ext import Application

from adapters.stripe_billing import InvalidWebhook, verify_event
from bot.web.metrics import WebMetrics
from core.billing import BillingServices, handle_event, refresh_subscription
from core.billing_records import BillingEvent, EventOutcome
from core.ports import BillingNotifier

logger = logging.getLogger(__name__)

TELEGRAM_SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
HEALTH_CHECK_SECONDS = 2.0


@dataclass
class WebContext:
    """Dependencies of the routes, built once when the process starts."""

    billing: BillingServices
    notifier: BillingNotifier | None
    stripe_webhook_secret: str | None
    stripe_tolerance_seconds: int = 300
    telegram: Application | None = None
    telegram_secret: str | None = None
    health_checks: dict[str, Callable[[], Awaitable[object]]] = field(default_factory=dict)
    metrics: WebMetrics = field(default_factory=WebMetrics)


def _context(request: Request) -> WebContext:
    return request.app.state.web


async def stripe_webhook(request: Request) -> Response:
    """Stripe posts an event: verify its signature, apply it, and respond before any slow work."""
    web = _context(request)
    started = time.perf_counter()
    try:
        response = await _stripe_response(web, request)
    finally:
        web.metrics.stripe_seconds.observe(time.perf_counter() - started)
    return response


async def _stripe_response(web: WebContext, request: Request) -> Response:
    if not web.stripe_webhook_secret:
        logger.error("Stripe webhook request rejected: STRIPE_WEBHOOK_SECRET is not set")
        web.metrics.stripe_events.labels("not_configured").inc()
        return JSONResponse({"error": "STRIPE_WEBHOOK_SECRET is not set on this server"}, status_code=503)

    payload = await request.body()
    try:
        event = verify_event(payload, request.headers.get("stripe-signature"), secret=web.stripe_webhook_secret,
                             tolerance_seconds=web.stripe_tolerance_seconds)
    except InvalidWebhook as error:
        logger.warning("Stripe webhook rejected: %s", error)
        web.metrics.stripe_events.labels("invalid").inc()
        return JSONResponse({"error": str(error)}, status_code=400)

    try:
        outcome = await handle_event(web.billing, event)
    except Exception:
        # Stripe retries a failed delivery, and the event was not recorded, so the retry applies it.
        logger.exception("Stripe event failed event=%s type=%s", event.id, event.type)
        web.metrics.stripe_events.labels("failed").inc()
        return JSONResponse({"error": "the event could not be stored; retry later"}, status_code=500)

    web.metrics.stripe_events.labels(outcome.result).inc()
    background = None
    if outcome.notices or outcome.refresh_subscription_id:
        background = BackgroundTask(follow_up, web, event, outcome)
    return JSONResponse({"received": True, "result": outcome.result}, background=background)


async def follow_up(web: WebContext, event: BillingEvent, outcome: EventOutcome) -> None:
    """Fetch a tied subscription from Stripe, then send the notices; runs after the webhook response.

    Errors are logged and not retried, because Stripe already has its 200.
    """
    # NOTE: this runs in the web process after the response. A process that stops in between loses
    # these messages and the refresh, although the record is written; a durable outbox would keep them.
    notices = list(outcome.notices)
    if outcome.refresh_subscription_id and outcome.user is not None:
        try:
            notices += await refresh_subscription(web.billing, outcome.user, outcome.refresh_subscription_id,
                                                  created=event.created, event_id=event.id)
        except Exception:
            logger.exception("subscription refresh failed event=%s subscription=%s", event.id,
                             outcome.refresh_subscription_id)
    for notice in notices:
        if web.notifier is None:
            logger.warning("billing notice not sent, no bot configured event=%s kind=%s user=%s",
                           notice.event_id, notice.kind.value, notice.user.user_id)
            web.metrics.billing_notices.labels(notice.kind.value, "no_bot").inc()
            continue
        try:
            await web.notifier.notify(notice)
        except Exception:
            logger.exception("billing notice failed event=%s kind=%s user=%s", notice.event_id,
                             notice.kind.value, notice.user.user_id)
            web.metrics.billing_notices.labels(notice.kind.value, "failed").inc()
        else:
            web.metrics.billing_notices.labels(notice.kind.value, "sent").inc()


async def telegram_webhook(request: Request) -> Response:
    """Telegram posts an update: check the secret token, then queue the update for the bot's handlers."""
    web = _context(request)
    if web.telegram is None or not web.telegram_secret:
        return JSONResponse({"error": "Telegram webhook mode is not enabled"}, status_code=404)
    token = request.headers.get(TELEGRAM_SECRET_HEADER, "")
    if not hmac.compare_digest(token.encode(), web.telegram_secret.encode()):
        logger.warning("Telegram webhook request rejected: missing or wrong %s header", TELEGRAM_SECRET_HEADER)
        web.metrics.telegram_updates.labels("forbidden").inc()
        return JSONResponse({"error": f"missing or invalid {TELEGRAM_SECRET_HEADER}"}, status_code=403)
    try:
        update = Update.de_json(await request.json(), web.telegram.bot)
    except (ValueError, TypeError, KeyError) as error:
        logger.warning("Telegram webhook body is not an update: %s", error)
        web.metrics.telegram_updates.labels("invalid").inc()
        return JSONResponse({"error": "invalid update"}, status_code=400)
    await web.telegram.update_queue.put(update)
    web.metrics.telegram_updates.labels("accepted").inc()
    return Response(status_code=200)


async def healthz(request: Request) -> Response:
    """A load balancer checks this process: MongoDB and Redis must respond within 2 seconds."""
    web = _context(request)
    failed = []
    for name, check in web.health_checks.items():
        try:
            await asyncio.wait_for(check(), HEALTH_CHECK_SECONDS)
        except Exception as error:
            logger.warning("health check failed service=%s error=%r", name, error)
            failed.append(name)
    if failed:
        return JSONResponse({"status": "unavailable", "failed": failed}, status_code=503)
    return JSONResponse({"status": "ok"})


async def metrics(request: Request) -> Response:
    """Prometheus scrapes the counters and timings."""
    return Response(generate_latest(_context(request).metrics.registry), media_type=CONTENT_TYPE_LATEST)


def build_web_app(web: WebContext) -> Starlette:
    """Create the app on `web`; the caller opens and closes what `web` holds."""
    app = Starlette(routes=[
        Route("/stripe/webhook", stripe_webhook, methods=["POST"]),
        Route("/telegram/webhook", telegram_webhook, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ])
    app.state.web = web
    return app
