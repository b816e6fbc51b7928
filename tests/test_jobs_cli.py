"""`chartbot jobs` as an operator runs it, against the test Redis and MongoDB."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

from tests.processes import ROOT


def _chartbot(services_env: dict[str, str], *arguments: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "REDIS_URL": services_env["REDIS_URL"], "MONGODB_URL": services_env["MONGODB_URL"],
           "MONGODB_DATABASE": f"cli_{uuid.uuid4().hex[:8]}"}
    return subprocess.run([sys.executable, "-m", "chartbot.cli", "jobs", *arguments], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


async def test_jobs_add_recurring_twice_keeps_one(services_env, redis_client):
    first = _chartbot(services_env, "add-recurring", "cleanup", "*/5 * * * *", "chartbot.jobs.maintenance")
    assert first.returncode == 0, first.stderr
    assert first.stdout == "schedule cleanup added: */5 * * * * chartbot.jobs.maintenance\n"
    again = _chartbot(services_env, "add-recurring", "cleanup", "*/2 * * * *", "chartbot.jobs.maintenance")
    assert again.stdout == "schedule cleanup replaced: */2 * * * * chartbot.jobs.maintenance\n"
    listing = _chartbot(services_env, "schedules")
    assert listing.stdout == "cleanup  */2 * * * *  chartbot.jobs.maintenance  owner=-\n"


async def test_jobs_invalid_input_rejected(services_env, redis_client):
    bad_state = _chartbot(services_env, "list", "--state", "paused")
    assert bad_state.returncode == 2
    assert bad_state.stderr == (
        "chartbot: invalid state 'paused': use one of scheduled, queued, running, completed, failed, cancelled\n"
    )
    bad_task = _chartbot(services_env, "add-recurring", "x", "* * * * *", "chartbot.analyze_chart")
    assert bad_task.returncode == 2
    assert bad_task.stderr == (
        "chartbot: task 'chartbot.analyze_chart' cannot be scheduled: use one of chartbot.jobs.maintenance\n"
    )
    missing = _chartbot(services_env, "show", "nope")
    assert missing.returncode == 1
    assert missing.stderr == "chartbot: job nope not found\n"
    empty = _chartbot(services_env, "list")
    assert empty.stdout == "no jobs match\n"
