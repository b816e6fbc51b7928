"""`chartbot` refuses to start a production process without its settings, and names the missing one."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.processes import ROOT

BASE_ENV = {key: value for key, value in os.environ.items()
            if key not in {"MONGODB_URL", "REDIS_URL", "TELEGRAM_BOT_TOKEN", "OPENAI_API_KEY"}}


def _run(command: str, **settings: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "chartbot.cli", command], cwd=ROOT, env={**BASE_ENV, **settings},
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("command", ["telegram", "worker"])
def test_missing_mongodb_url_named(command, tmp_path):
    result = _run(command, REDIS_URL="redis://127.0.0.1:1/0", TELEGRAM_BOT_TOKEN="1:x")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"chartbot: cannot start {command}: MONGODB_URL is not set: set it in the environment or in .env"
    )


@pytest.mark.parametrize("command", ["telegram", "worker"])
def test_missing_redis_url_named(command):
    result = _run(command, MONGODB_URL="mongodb://127.0.0.1:1/", TELEGRAM_BOT_TOKEN="1:x")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"chartbot: cannot start {command}: REDIS_URL is not set: set it in the environment or in .env"
    )


def test_invalid_setting_reported():
    result = _run("telegram", FREE_DAILY_LIMIT="many")
    assert result.returncode == 2
    assert result.stderr.startswith("chartbot: invalid setting:")
    assert "free_daily_limit" in result.stderr
