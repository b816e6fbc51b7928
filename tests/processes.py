"""Start `chartbot` processes (bot, worker) as production runs them, with logs kept for failures."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

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
