"""Accuracy, speed and memory of the offline chart reader on the shared chart images.

Run with `python -m bench.bench_reader [--charts DIR] [--out FILE]`. The charts
folder contains `rendered/` (PNG with a JSON truth file each), `real/`
(TradingView screenshots, no truth) and `not-charts/`. Every image is read
`--repeat` times. The first read of each is scored and all reads are timed.
One untimed read before the run loads Tesseract and warms the caches. Peak
RSS is the Python process's (ru_maxrss); Tesseract's own peak is reported
beside it as peak_rss_tesseract_mb.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

from PIL import Image

from bench.common import ROOT, machine, median, percentile, verdict
from workers.chart_reader import ChartReading, ChartUnreadable, read_chart

GOAL_ACCEPTED = 1.0
GOAL_REJECTED = 1.0
GOAL_TREND = 0.9
GOAL_BAR_COUNT = 0.8
GOAL_MEDIAN_MS = 150.0
GOAL_P95_MS = 400.0
GOAL_RSS_MB = 300.0
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp"}


def _images(folder: Path) -> list[Path]:
    return sorted(path for path in folder.iterdir() if path.suffix.lower() in IMAGE_SUFFIXES)


def _read(path: Path, repeat: int, use_ocr: bool) -> tuple[ChartReading | None, list[float], str | None]:
    """Read one image `repeat` times.

    Returns the first reading, every time in ms, and the ChartUnreadable reason if one was raised.
    """
    data = path.read_bytes()
    times, first, reason = [], None, None
    for attempt in range(repeat):
        started = time.perf_counter()
        try:
            reading = read_chart(data, use_ocr=use_ocr)
        except ChartUnreadable as error:
            reading, reason = None, error.reason
        times.append((time.perf_counter() - started) * 1000)
        if attempt == 0:
            first = reading
    return first, times, reason


def _record(path: Path, reading: ChartReading | None, times: list[float], reason: str | None) -> dict:
    with Image.open(path) as image:
        size = list(image.size)
    record = {"file": path.name, "size": size, "ms": [round(t, 1) for t in times], "unreadable": reason}
    if reading is not None:
        record.update(
            is_chart=reading.is_chart,
            confidence=reading.confidence,
            chart_type=reading.chart_type,
            bars=reading.bar_count,
            trend=reading.trend,
            last_bar_direction=reading.last_bar_direction,
            price_axis_read=reading.price_axis_read,
            last_price=reading.last_price,
        )
    return record


def _score_rendered(record: dict, truth: dict) -> None:
    """Add the truth and the agreement flags to a rendered image's record."""
    record["truth"] = {key: truth[key] for key in ("chart_type", "bars", "trend", "last_bar_direction", "last_close")}
    accepted = bool(record.get("is_chart"))
    record["trend_agrees"] = accepted and record.get("trend") == truth["trend"]
    record["type_agrees"] = accepted and record.get("chart_type") == truth["chart_type"]
    record["direction_agrees"] = accepted and record.get("last_bar_direction") == truth["last_bar_direction"]
    if truth["chart_type"] in ("candle", "ohlc"):
        found = record.get("bars", 0) if accepted else 0
        record["bar_count_within_10pct"] = abs(found - truth["bars"]) <= 0.1 * truth["bars"]


def _share(flags: list[bool]) -> float:
    return sum(flags) / len(flags) if flags else 0.0


def _summary(groups: dict[str, list[dict]]) -> dict:
    rendered, real, others = groups["rendered"], groups["real"], groups["not-charts"]
    all_times = [t for records in groups.values() for record in records for t in record["ms"]]
    full_hd = [t for records in groups.values() for r in records if r["size"] == [1920, 1080] for t in r["ms"]]
    usage_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    usage_children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {
        "rendered_accepted": _share([bool(r.get("is_chart")) for r in rendered]),
        "real_accepted": _share([bool(r.get("is_chart")) for r in real]),
        "not_charts_refused": _share([not r.get("is_chart") for r in others]),
        "trend_agreement": _share([r["trend_agrees"] for r in rendered]),
        "bar_count_within_10pct": _share(
            [r["bar_count_within_10pct"] for r in rendered if "bar_count_within_10pct" in r]
        ),
        "chart_type_agreement": _share([r["type_agrees"] for r in rendered]),
        "last_bar_direction_agreement": _share([r["direction_agrees"] for r in rendered]),
        "price_axis_read_rendered": _share([bool(r.get("price_axis_read")) for r in rendered]),
        "median_ms": median(all_times),
        "p95_ms": percentile(all_times, 0.95),
        "median_ms_1920x1080": median(full_hd) if full_hd else None,
        "p95_ms_1920x1080": percentile(full_hd, 0.95) if full_hd else None,
        "images_1920x1080": sum(1 for records in groups.values() for r in records if r["size"] == [1920, 1080]),
        "peak_rss_mb": round(usage_self, 1),
        "peak_rss_tesseract_mb": round(usage_children, 1),
    }


def _goal_lines(summary: dict) -> list[str]:
    """Format one line per goal: the measured value, the goal and PASS or MISS."""
    share_goals = (
        ("rendered charts accepted", "rendered_accepted", GOAL_ACCEPTED, "100%"),
        ("real charts accepted", "real_accepted", GOAL_ACCEPTED, "100%"),
        ("not-charts refused", "not_charts_refused", GOAL_REJECTED, "100%"),
        ("trend agreement", "trend_agreement", GOAL_TREND, ">= 90%"),
        ("bar count within 10% (candle, ohlc)", "bar_count_within_10pct", GOAL_BAR_COUNT, ">= 80%"),
    )
    lines = [
        verdict(label, 100 * summary[key], text, summary[key] >= goal, "%") for label, key, goal, text in share_goals
    ]
    time_goals = (
        ("median time 1920x1080", "median_ms_1920x1080", GOAL_MEDIAN_MS),
        ("p95 time 1920x1080", "p95_ms_1920x1080", GOAL_P95_MS),
    )
    for label, key, goal in time_goals:
        value = summary[key]
        if value is not None:
            lines.append(verdict(label, value, f"<= {goal:.0f} ms", value <= goal, " ms"))
    lines.append(f"median time all images: {summary['median_ms']:.2f} ms, p95 {summary['p95_ms']:.2f} ms")
    rss = summary["peak_rss_mb"]
    lines.append(verdict("peak RSS", rss, f"<= {GOAL_RSS_MB:.0f} MB", rss <= GOAL_RSS_MB, " MB"))
    return lines


def run(charts: Path, *, repeat: int, use_ocr: bool) -> dict:
    """Read every image under `charts` and return the per-image records and the summary."""
    warm_up = _images(charts / "rendered")[0]
    read_chart(warm_up.read_bytes(), use_ocr=use_ocr)
    groups: dict[str, list[dict]] = {}
    for folder in ("rendered", "real", "not-charts"):
        records = []
        for path in _images(charts / folder):
            reading, times, reason = _read(path, repeat, use_ocr)
            record = _record(path, reading, times, reason)
            truth_path = path.with_suffix(".json")
            if folder == "rendered" and truth_path.exists():
                _score_rendered(record, json.loads(truth_path.read_text()))
            records.append(record)
        groups[folder] = records
    return {"images": groups, "summary": _summary(groups)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--charts",
        type=Path,
        default=ROOT.parent / "shared" / "charts",
        help="folder with rendered/, real/ and not-charts/",
    )
    parser.add_argument(
        "--out", type=Path, default=ROOT / "bench" / "results" / "reader.json", help="JSON file for the results"
    )
    parser.add_argument("--repeat", type=int, default=3, help="reads of each image for timing (the first is scored)")
    parser.add_argument("--no-ocr", action="store_true", help="read without Tesseract")
    args = parser.parse_args(argv)

    results = run(args.charts, repeat=max(1, args.repeat), use_ocr=not args.no_ocr)
    results["settings"] = {"charts": str(args.charts), "repeat": args.repeat, "use_ocr": not args.no_ocr}
    results["machine"] = machine()
    for line in _goal_lines(results["summary"]):
        print(line)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"results written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
