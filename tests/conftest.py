"""Fixtures for the real services that `make services` starts, and the fake HTTP servers."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
import pytest_asyncio
from pymongo import AsyncMongoClient
from redis.asyncio import Redis

from tests.fakes.openai_server import FakeOpenAIServer
from tests.fakes.telegram_server import FakeTelegramServer

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("CHARTBOT_SHARED_DIR", ROOT.parent / "shared"))
CHARTS = SHARED / "charts"
BAD_INPUTS = SHARED / "bad-inputs"


def _read_services_env() -> dict[str, str]:
    path = Path(os.environ.get("CHARTBOT_SERVICES_ENV", ROOT / ".services" / "env"))
    if not path.exists():
        pytest.fail(f"{path} is missing: start the test services with `make services` (make test does it)")
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {key.strip(): value.strip() for key, value in pairs}


@pytest.fixture(scope="session")
def services_env() -> dict[str, str]:
    """REDIS_URL and MONGODB_URL of the running test services."""
    return _read_services_env()


@pytest_asyncio.fixture
async def mongo_db(services_env):
    """A fresh database on the test MongoDB server, dropped afterwards."""
    client = AsyncMongoClient(services_env["MONGODB_URL"], tz_aware=True)
    name = f"test_{uuid.uuid4().hex[:12]}"
    yield client[name]
    await client.drop_database(name)
    await client.close()


@pytest_asyncio.fixture
async def redis_client(services_env):
    """A client of the test Redis, emptied before the test."""
    client = Redis.from_url(services_env["REDIS_URL"])
    await client.flushdb()
    yield client
    await client.aclose()


@pytest_asyncio.fixture
async def telegram_server():
    server = FakeTelegramServer()
    await server.start()
    yield server
    await server.stop()


@pytest_asyncio.fixture
async def openai_server():
    server = FakeOpenAIServer()
    await server.start()
    yield server
    await server.stop()
