"""Each benchmark's figures as one JSON document, for ``make bench-all`` (bench/all.py) to table.

    bench/<name>.py --json out.json  ─▶  {"bench": "returns", "unit": "req/s", "ok": true,
                                          "setup": "what ran, on what, how long",
                                          "rows": [{"target": "bare view", "baseline": true,
                                                    "rate": 1394.0, "p50_ms": 10.65,
                                                    "p99_ms": 35.6, "failed": 0}, …],
                                          "notes": ["rate limits lifted: …"],
                                          "figures": [{"figure": "events lost", "value": 0,
                                                       "unit": "", "goal": "= 0",
                                                       "met": true}, …]}

A row marked ``baseline`` is what the others are measured against (a bare view, a floor, RQ
with nothing to do); bench/all.py gives every other row its ratios to each baseline of its
benchmark. ``p50_ms``/``p99_ms`` are None where the bench has no latency for a row.
``figures`` (optional, may be absent) are single values that are not a rate: a count, a time,
a peak RSS, each with its goal and whether it was met (None: no goal), and where it has one
the same measure of a baseline in the same run (``against``, ``baseline``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench.wrk import WrkResult


def figures_row(
    target: str,
    *,
    rate: float,
    p50_ms: float | None,
    p99_ms: float | None,
    failed: int = 0,
    baseline: bool = False,
) -> dict:
    def rounded(value: float | None, digits: int) -> float | None:
        return None if value is None or math.isnan(value) else round(value, digits)

    return {
        "target": target,
        "baseline": baseline,
        "rate": rounded(rate, 1),
        "p50_ms": rounded(p50_ms, 2),
        "p99_ms": rounded(p99_ms, 2),
        "failed": failed,
    }


def wrk_row(target: str, result: WrkResult, *, baseline: bool = False) -> dict:
    return figures_row(
        target,
        rate=result.rps,
        p50_ms=result.p50_ms,
        p99_ms=result.p99_ms,
        failed=result.failed,
        baseline=baseline,
    )


def figure(
    name: str,
    value: float | None,
    unit: str,
    *,
    goal: str = "",
    met: bool | None = None,
    digits: int = 1,
    against: str = "",
    baseline: float | None = None,
) -> dict:
    """One value that is not a rate, e.g. figure("events lost", 0, "", goal="= 0", met=True);
    a float is kept to ``digits`` decimals. ``baseline``: the same measure of ``against`` in
    the same run (e.g. the small shop's page time), for the table's ratio."""

    def kept(number: float | None) -> float | None:
        if number is None or (isinstance(number, float) and math.isnan(number)):
            return None
        return round(number, digits) if isinstance(number, float) else number

    document = {"figure": name, "value": kept(value), "unit": unit, "goal": goal, "met": met}
    if against:
        document["against"] = against
        document["baseline"] = kept(baseline)
    return document


def figures_write(
    path: Path | None,
    *,
    bench: str,
    unit: str,
    setup: str,
    rows: list[dict],
    ok: bool,
    notes: list[str] | None = None,
    figures: list[dict] | None = None,
) -> None:
    """Write the figures to ``path`` (nothing when None: the bench ran alone)."""
    if path is None:
        return
    document = {
        "bench": bench,
        "unit": unit,
        "setup": setup,
        "ok": ok,
        "rows": rows,
        "notes": notes or [],
        "figures": figures or [],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n")
