"""Start `chartbot` processes (bot, worker) as production runs them, with logs kept for failures."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


class ChartBotProcess:
    """One `python -m chartbot.cli COMMAND` child process."""

    def __init__(self, command: str, env: dict[str, str], log_path: Path) -> None:
        self.command = command
        self.env = env
        self.log_path = log_path
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        log = self.log_path.open("ab")
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "chartbot.cli", self.command,
            cwd=ROOT, env={**os.environ, **self.env, "PYTHONUNBUFFERED": "1"},
            stdout=log, stderr=asyncio.subprocess.STDOUT,
        )
        log.close()

    async def stop(self, timeout: float = 30.0) -> int | None:
        if self.process is None or self.process.returncode is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(self.process.wait(), timeout)
        except TimeoutError:
            self.process.kill()
            return await self.process.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def stack_env(services_env: dict[str, str], *, telegram_url: str, telegram_token: str, openai_url: str,
              database: str, **overrides: str) -> dict[str, str]:
    """Return the settings every `chartbot` process of an end-to-end stack shares, plus `overrides`.

    Each stack gets its own database and queue, so stacks of different test modules never share jobs.
    """
    return {
        "TELEGRAM_BOT_TOKEN": telegram_token,
        "TELEGRAM_API_URL": telegram_url,
        "OPENAI_API_KEY": "test-openai-key",
        "OPENAI_BASE_URL": openai_url,
        "MONGODB_URL": services_env["MONGODB_URL"],
        "MONGODB_DATABASE": database,
        "REDIS_URL": services_env["REDIS_URL"],
        "QUEUE_NAME": f"chartbot:test:{database}",
        "DO_NOT_TRACK": "1",
        **overrides,
    }


async def start_polling_bot(telegram, env: dict[str, str], log_path: Path) -> ChartBotProcess:
    """Start `chartbot telegram` against the fake Bot API server `telegram` and wait until it polls.

    Raises AssertionError with the bot's log when it does not poll within 60 seconds.
    """
    bot = ChartBotProcess("telegram", env, log_path)
    await bot.start()
    try:
        await telegram.wait_for(lambda: telegram.calls_to("getUpdates"), timeout=60)
    except AssertionError:
        await bot.stop()
        raise AssertionError(f"the bot did not start polling; its log:\n{bot.log()}") from None
    return bot


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def wait_until_serving(client: httpx.AsyncClient, process: ChartBotProcess, *, timeout: float = 90) -> None:
    """Wait until the `chartbot web` process behind `client` serves GET /healthz with status 200."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if (await client.get("/healthz")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.2)
    raise AssertionError(f"chartbot web did not answer /healthz; its log:\n{process.log()[-3000:]}")
