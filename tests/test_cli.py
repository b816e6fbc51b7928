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


async def test_usage_grant_then_show(services_env, redis_client):
    import uuid
    from datetime import UTC, datetime

    database = f"cli_{uuid.uuid4().hex[:10]}"
    env = {"MONGODB_URL": services_env["MONGODB_URL"], "REDIS_URL": services_env["REDIS_URL"],
           "MONGODB_DATABASE": database}
    granted = subprocess.run([sys.executable, "-m", "chartbot.cli", "usage", "grant", "telegram:555", "5",
                              "--note", "beta tester"], cwd=ROOT, env={**BASE_ENV, **env},
                             capture_output=True, text=True, timeout=60)
    assert granted.returncode == 0, granted.stderr
    now = datetime.now(UTC)
    next_month = datetime(now.year + (now.month == 12), now.month % 12 + 1, 1).date().isoformat()
    lines = granted.stdout.splitlines()
    assert lines[:6] == [
        "Granted 5 bonus analyses to telegram:555 for the current period.",
        "User telegram:555",
        "  Plan: Free",
        "  Today: 0 of 3 (resets at 00:00 UTC)",
        f"  This month: 0 of 20, including 5 bonus (resets on {next_month})",
        "  All time: 0 charts analysed",
    ]
    assert lines[6] == "  Latest ledger entries:"
    assert lines[7].endswith("grant     5  beta tester")

    shown = subprocess.run([sys.executable, "-m", "chartbot.cli", "usage", "show", "telegram:555"], cwd=ROOT,
                           env={**BASE_ENV, **env}, capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines()[3] == f"  This month: 0 of 20, including 5 bonus (resets on {next_month})"

    from pymongo import MongoClient
    MongoClient(services_env["MONGODB_URL"]).drop_database(database)


def test_usage_invalid_user_named():
    result = _run_args("usage", "show", "slack:1", MONGODB_URL="mongodb://127.0.0.1:1/", REDIS_URL="redis://127.0.0.1:1/0")
    assert result.returncode == 2
    assert result.stderr.strip() == "chartbot: invalid user 'slack:1': use PLATFORM:ID, e.g. telegram:123456789"


def _run_args(*arguments: str, **settings: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "chartbot.cli", *arguments], cwd=ROOT, env={**BASE_ENV, **settings},
                          capture_output=True, text=True, timeout=60)
