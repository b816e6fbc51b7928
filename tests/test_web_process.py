"""`chartbot web` as production runs it: a child process serving on 127.0.0.1 with uvicorn."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from pymongo import AsyncMongoClient

from tests import billing_support as support
from tests.processes import ROOT, ChartBotProcess, free_port, wait_until_serving

TELEGRAM_SECRET = "web-process-secret"





async def test_web_process_serves_both_webhooks(services_env, telegram_server, tmp_path):
    database = f"web_{uuid.uuid4().hex[:10]}"
    port = free_port()
    env = {
        "TELEGRAM_BOT_TOKEN": telegram_server.token,
        "TELEGRAM_API_URL": telegram_server.url,
        "TELEGRAM_WEBHOOK_URL": f"https://127.0.0.1:{port}/telegram/webhook",
        "TELEGRAM_WEBHOOK_SECRET": TELEGRAM_SECRET,
        "MONGODB_URL": services_env["MONGODB_URL"],
        "MONGODB_DATABASE": database,
        "REDIS_URL": services_env["REDIS_URL"].rsplit("/", 1)[0] + "/10",
        "QUEUE_NAME": f"chartbot:test:{database}",
        "STRIPE_SECRET_KEY": support.SECRET_KEY,
        "STRIPE_API_BASE": services_env["STRIPE_API_BASE"],
        "STRIPE_WEBHOOK_SECRET": support.WEBHOOK_SECRET,
        "WEB_HOST": "127.0.0.1",
        "WEB_PORT": str(port),
        "DO_NOT_TRACK": "1",
    }
    process = ChartBotProcess("web", env, tmp_path / "web.log")
    await process.start()
    client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10)
    try:
        await wait_until_serving(client, process, timeout=60)
        assert telegram_server.webhook["url"] == env["TELEGRAM_WEBHOOK_URL"]
        assert telegram_server.webhook["secret_token"] == TELEGRAM_SECRET

        forbidden = await client.post("/telegram/webhook", json={"update_id": 1})
        assert forbidden.status_code == 403

        user = 7001
        update = {"update_id": 2, "message": {
            "message_id": 1, "date": int(time.time()), "text": "/start",
            "chat": {"id": user, "type": "private", "first_name": "Trader"},
            "from": {"id": user, "is_bot": False, "first_name": "Trader"},
            "entities": [{"type": "bot_command", "offset": 0, "length": 6}]}}
        accepted = await client.post("/telegram/webhook", json=update,
                                     headers={"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET})
        assert accepted.status_code == 200
        await telegram_server.wait_for(lambda: telegram_server.chat(user), timeout=20)
        assert telegram_server.chat(user)[0].text.startswith("👋 <b>ChartBot</b> reads your price charts.")

        now = datetime.now(UTC).replace(microsecond=0)
        end = now + timedelta(days=30)
        sub = support.subscription("sub_web", customer="cus_web", user_id=user, tier="elite", period_start=now,
                                   period_end=end)
        data = support.body(support.event("customer.subscription.created", sub, created=now))
        started = time.monotonic()
        response = await client.post("/stripe/webhook", content=data,
                                     headers={"Stripe-Signature": support.sign(data)})
        elapsed = time.monotonic() - started
        assert (response.status_code, response.json()) == (200, {"received": True, "result": "applied"})
        assert elapsed < 1.0
        await telegram_server.wait_for(lambda: len(telegram_server.chat(user)) == 2, timeout=20)
        assert telegram_server.chat(user)[1].text == (
            f"✅ You are now on Elite: 3,000 charts a month, no daily cap, renews on {end:%Y-%m-%d}. "
            "Send /usage to see what you have left."
        )

        metrics = await client.get("/metrics")
        assert 'chartbot_billing_notices_total{kind="plan_changed",result="sent"} 1.0' in metrics.text
    finally:
        await client.aclose()
        status = await process.stop()
        mongo = AsyncMongoClient(services_env["MONGODB_URL"])
        await mongo.drop_database(database)
        await mongo.close()
    assert status == 0, process.log()[-3000:]


@pytest.mark.parametrize("missing", ["MONGODB_URL", "REDIS_URL"])
def test_web_refuses_to_start_without_stores(missing):
    env = {key: value for key, value in os.environ.items() if key not in {"MONGODB_URL", "REDIS_URL"}}
    env.update({"MONGODB_URL": "mongodb://127.0.0.1:1/", "REDIS_URL": "redis://127.0.0.1:1/0"})
    del env[missing]
    result = subprocess.run([sys.executable, "-m", "chartbot.cli", "web"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"chartbot: cannot start web: {missing} is not set: set it in the environment or in .env"
    )
