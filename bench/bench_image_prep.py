"""Vision tokens per chart before and after preparation, and the time preparation takes.

Run with `python -m bench.bench_image_prep [--charts DIR] [--repeat N]`. Every
chart in `rendered/` and `real/` of the charts folder is read once with the
offline reader, for its chart area as the worker gets it, then prepared at
detail "high" `--repeat` times. Only the preparation is timed. "Before" is
the image as the user sent it at detail "high". The prepared image is read
again to check that the reader still reads its price axis. Peak RSS is the
Python process's (ru_maxrss), reader included.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

from bench.common import ROOT, machine, median, percentile, verdict
from workers.chart_reader import read_chart
from workers.image_prep import prepare_chart

GOAL_RATIO = 0.6
MAX_PIXELS = 40_000_000
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp"}


def _images(folder: Path) -> list[Path]:
    return sorted(path for path in folder.iterdir() if path.suffix.lower() in IMAGE_SUFFIXES)


def _price_read(path: Path, data: bytes) -> bool | None:
    """Tell whether the reader finds the true last close (within 2% of the range); None without a truth file."""
    truth_path = path.with_suffix(".json")
    if not truth_path.exists():
        return None
    truth = json.loads(truth_path.read_text())
    price = read_chart(data).last_price
    return price is not None and abs(price - truth["last_close"]) <= 0.02 * (truth["max_high"] - truth["min_low"])


def _measure(path: Path, folder: str, repeat: int) -> dict:
    """Read one chart, prepare it `repeat` times and return its record."""
    data = path.read_bytes()
    reading = read_chart(data)
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        prepared = prepare_chart(data, chart_area=reading.chart_area, detail="high", max_pixels=MAX_PIXELS)
        times.append((time.perf_counter() - started) * 1000)
    record = prepared.record
    return {
        "file": f"{folder}/{path.name}",
        "size": [record.original_width, record.original_height],
        "sent_size": [record.width, record.height],
        "cropped": record.cropped,
        "tokens_before": record.tokens_original,
        "tokens_after": record.tokens_sent,
        "ratio": round(record.tokens_sent / record.tokens_original, 3),
        "price_read_before": _price_read(path, data),
        "price_read_after": _price_read(path, prepared.data),
        "ms": [round(t, 1) for t in times],
    }


def _summary(records: list[dict]) -> dict:
    times = [t for record in records for t in record["ms"]]
    before = sum(record["tokens_before"] for record in records)
    after = sum(record["tokens_after"] for record in records)
    truths = [record for record in records if record["price_read_before"] is not None]
    return {
        "charts": len(records),
        "tokens_before": before,
        "tokens_after": after,
        "ratio_total": round(after / before, 3),
        "ratio_median": median([record["ratio"] for record in records]),
        "prices_read_before": sum(bool(record["price_read_before"]) for record in truths),
        "prices_read_after": sum(bool(record["price_read_after"]) for record in truths),
        "charts_with_truth": len(truths),
        "median_ms": round(median(times), 1),
        "p95_ms": round(percentile(times, 0.95), 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def _table(records: list[dict]) -> list[str]:
    lines = [f"{'chart':32} {'size':>10} {'sent':>10} {'crop':>5} {'before':>6} {'after':>6} {'ratio':>6} {'ms':>6}"]
    for record in records:
        size = "x".join(str(side) for side in record["size"])
        sent = "x".join(str(side) for side in record["sent_size"])
        lines.append(
            f"{record['file']:32} {size:>10} {sent:>10} {'yes' if record['cropped'] else 'no':>5} "
            f"{record['tokens_before']:>6} {record['tokens_after']:>6} {record['ratio']:>6.2f} {median(record['ms']):>6.1f}"
        )
    return lines


def _goal_lines(summary: dict) -> list[str]:
    ratio = summary["ratio_total"]
    return [
        f"vision tokens at detail high: {summary['tokens_before']} before, {summary['tokens_after']} after",
        verdict("total after / before", 100 * ratio, f"<= {100 * GOAL_RATIO:.0f}%", ratio <= GOAL_RATIO, "%"),
        f"median ratio per chart: {100 * summary['ratio_median']:.1f}%",
        f"rendered charts whose last close the reader reads: {summary['prices_read_before']} of "
        f"{summary['charts_with_truth']} before, {summary['prices_read_after']} after",
        f"preparation time: median {summary['median_ms']:.1f} ms, p95 {summary['p95_ms']:.1f} ms",
        f"peak RSS: {summary['peak_rss_mb']:.1f} MB",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--charts", type=Path, default=ROOT.parent / "shared" / "charts", help="folder with rendered/ and real/"
    )
    parser.add_argument(
        "--out", type=Path, default=ROOT / "bench" / "results" / "image_prep.json", help="JSON file for the results"
    )
    parser.add_argument("--repeat", type=int, default=5, help="preparations of each chart for timing")
    args = parser.parse_args(argv)

    records = [
        _measure(path, folder, max(1, args.repeat))
        for folder in ("rendered", "real")
        for path in _images(args.charts / folder)
    ]
    summary = _summary(records)
    for line in _table(records) + _goal_lines(summary):
        print(line)
    results = {
        "machine": machine(),
        "settings": {"charts": str(args.charts), "repeat": args.repeat, "detail": "high"},
        "charts": records,
        "summary": summary,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"results written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
