"""Helpers the benchmarks share: where the services are, percentiles, writing results."""

from __future__ import annotations

import json
import os
import platform
import statistics
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


def services_env() -> dict[str, str]:
    """Read the URLs `make services` wrote; raises SystemExit when the services are not running."""
    path = Path(os.environ.get("CHARTBOT_SERVICES_ENV", ROOT / ".services" / "env"))
    if not path.exists():
        raise SystemExit(f"{path} is missing: start the services with `make services` (make bench does it)")
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {key.strip(): value.strip() for key, value in pairs}


def percentile(values: list[float], share: float) -> float:
    """Return the `share` (0..1) percentile of `values` by nearest rank."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))
    return ordered[index]


def median(values: list[float]) -> float:
    return statistics.median(values)


def machine() -> dict[str, object]:
    """Describe the machine the numbers were measured on."""
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}


def write_results(name: str, results: dict) -> Path:
    """Write `results` with the machine description to bench/results/NAME.json."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **results}, indent=2) + "\n")
    return path


def verdict(label: str, value: float, goal: str, passed: bool, unit: str = "") -> str:
    """Format one goal line: the value, the goal and PASS or MISS."""
    return f"{label}: {value:.2f}{unit} (goal {goal}) {'PASS' if passed else 'MISS'}"
