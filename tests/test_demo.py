"""`chartbot demo` and `chartbot chat` as a newcomer runs them: a subprocess, no services, no keys."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import CHARTS
from tests.processes import ROOT

NOT_A_CHART = (
    "🤔 This does not look like a price chart; send a screenshot of a candlestick, bar or line chart. "
    "Your use was refunded."
)
QUEUED = "⏳ Chart received. Your analysis is queued and will appear in this message shortly."
OFFLINE_LABEL = "Measured from the image by ChartBot's chart reader, not written by an AI model."
ENV = {key: value for key, value in os.environ.items()
       if key not in {"OPENAI_API_KEY", "MONGODB_URL", "REDIS_URL", "TELEGRAM_BOT_TOKEN", "LOG_LEVEL"}}


def _chartbot(*arguments: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "chartbot.cli", *arguments], cwd=ROOT, env=ENV, input=stdin,
                          capture_output=True, text=True, timeout=180)


def _truth(name: str) -> dict:
    return json.loads((CHARTS / "rendered" / f"{name}.json").read_text())


def test_demo_prints_queued_then_offline_analysis_or_refusal():
    up_chart = CHARTS / "rendered" / "rendered-03.png"
    down_chart = CHARTS / "rendered" / "rendered-01.png"
    non_chart = CHARTS / "not-charts" / "pie-chart.png"
    result = _chartbot("demo", str(up_chart), str(down_chart), str(non_chart))
    assert result.returncode == 0, result.stderr

    output = result.stdout
    assert output.startswith(
        "ChartBot demo: 3 image(s), analysed by the offline chart reader (OPENAI_API_KEY is not set).\n")
    blocks = output.split("you> [image] ")[1:]
    assert [b.split("\n", 1)[0] for b in blocks] == ["rendered-03.png", "rendered-01.png", "pie-chart.png"]
    for block in blocks[:2]:
        lines = block.split("\n")
        assert lines[1] == f"bot> {QUEUED}"
        assert lines[2] == "bot (edited)> 📊 Chart analysis"
        assert OFFLINE_LABEL in block
        assert block.rstrip().endswith("Not financial advice.")
    assert "Trend\n              Up over the " in blocks[0]
    assert "Trend\n              Down over the " in blocks[1]
    assert blocks[2].split("\n")[1:3] == [f"bot> {QUEUED}", f"bot (edited)> {NOT_A_CHART}"]


def test_demo_json_gives_verdict_and_reply_per_image():
    files = [CHARTS / "rendered" / "rendered-06.png", CHARTS / "not-charts" / "spreadsheet.png",
             ROOT.parent / "shared" / "bad-inputs" / "truncated.png"]
    result = _chartbot("demo", "--json", *map(str, files))
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["file"] for r in records] == [str(f) for f in files]

    chart, sheet, broken = records
    truth = _truth("rendered-06")
    assert chart["reader"]["is_chart"] is True
    assert chart["reader"]["chart_type"] == truth["chart_type"]
    assert chart["reader"]["trend"] == truth["trend"]
    assert abs(chart["reader"]["bars"] - truth["bars"]) <= truth["bars"] * 0.1
    assert chart["reply"].startswith("📊 Chart analysis\n\nOffline reading\n" + OFFLINE_LABEL)

    assert sheet["reader"]["is_chart"] is False
    assert sheet["reply"] == f"{QUEUED}\n\n{NOT_A_CHART}".replace(QUEUED + "\n\n", "")

    assert broken["reader"] is None
    assert broken["reply"] == (
        "That image could not be read: the file is damaged or incomplete. Take the screenshot again and resend it. "
        "Nothing was counted against your limit."
    )


def test_demo_without_arguments_uses_shipped_samples():
    result = _chartbot("demo", "--json")
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [os.path.basename(r["file"]) for r in records] == [
        "btcusd-monthly-line.png", "goog-daily-candles-dark.png", "goog-daily-ohlc.png"]
    assert all(r["reader"]["is_chart"] for r in records)


def test_demo_takes_a_folder_of_charts():
    result = _chartbot("demo", "--json", str(ROOT / "chartbot" / "samples"))
    assert result.returncode == 0, result.stderr
    names = [os.path.basename(json.loads(line)["file"]) for line in result.stdout.splitlines()]
    assert names == ["btcusd-monthly-line.png", "goog-daily-candles-dark.png", "goog-daily-ohlc.png"]
    assert result.stderr == ""


def test_demo_missing_file_named():
    result = _chartbot("demo", "no-such-chart.png")
    assert result.returncode == 2
    assert result.stderr.strip() == "chartbot: no such file: no-such-chart.png"


def test_chat_commands_and_a_chart_by_path():
    chart = CHARTS / "rendered" / "rendered-12.png"
    script = f"/help\n{chart} is this trend holding?\n/usage\n/journal\n/nope\n/tmp/missing/chart.png\n/quit\n"
    result = _chartbot("chat", stdin=script)
    assert result.returncode == 0, result.stderr
    output = result.stdout
    assert "How to use ChartBot" in output
    assert f"bot> {QUEUED}" in output
    assert "bot (edited)> 📊 Chart analysis\n              Your question: is this trend holding?" in output
    assert "The offline reading describes the chart only and does not answer questions." in output
    assert "Today: 1 of 3 (resets at 00:00 UTC)" in output
    assert "All time: 1 chart analysed" in output
    assert "bot> /journal works in the Telegram bot. Here you can send charts, and use /help, /usage and /quit." in output
    assert "bot> Unknown command /nope. Type the path of a chart image" in output
    assert "bot> No file at /tmp/missing/chart.png. Type the path of a chart image" in output
