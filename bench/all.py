"""Every benchmark in bench/, one after the other on PostgreSQL, tabled in one Markdown file:
every figure of issue 12, plus the admin's insights and the delivery estimates.

    bench/all.py ─ webhooks.py      intake vs a bare view and a one-INSERT view, web RSS
                 ─ scale.py         the scale dataset (--orders, default 1,000,000): reused when
                                    a build with the same parameters is there, else built
                 ─ tracking.py      the tracking page on it vs a bare view
                 ─ admin.py         order search and an order's timeline on it (p99)
                 ─ returns.py       the returns portal (its own 100k-order dataset: --scale)
                 ─ insights.py      the admin's home for a big shop vs a small one (its own
                                    skewed build, --insights-orders)
                 ─ estimates.py     delivery estimates' accuracy on a generated history
                 ─ notifications.py no-op ceiling, a --burst of triggers drained, steady
                                    20 triggers/s p50/p95, 1/2/4 workers, worker RSS
                 ─ load.py          --load-count signed webhooks, then the drain, RSS
                 ─▶ bench/out/results.md: one row per figure: its value, the baseline it is
                    measured against in the same run, the ratio, issue 12's goal, met or not
                    (each bench alone on the machine, in turn; its output in out/<name>.log)

The scale dataset: 1,000,000 orders take ~23 minutes to build on 2 cores, so it is built once
per DATABASE_URL and parameters (``<db>_scale``) and reused by every later run (tracking and
admin read the same build: both get --orders, --shops, --skew). ``--orders 20000`` makes a
small copy (``<db>_scale_<digest>``, under a minute) for a quick run; it never replaces the
big one. Insights needs a shop holding most orders, so it has a build of its own
(--insights-orders, 1,100,000 by default, or 1.1 × --orders when that is smaller).

A full run is long: the dataset (unless reused), the devshop's orders for returns, the
notification burst (10,000) and load's 50,000 webhooks and their drain. A quick one:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/wta REDIS_URL=redis://127.0.0.1:6379/10 \\
        .venv/bin/python bench/all.py --orders 20000 --scale 0.1 --sample 100 --burst 1000 \\
        --steady-seconds 15 --scaling-orders 300 --load-count 2000 --parcels 5000

A bench that fails (exit status, or its figures say so) is marked FAILED in the table and
makes this script exit 1; the others still run. ``--only``/``--skip`` pick benches.

DATABASE_URL is required (PostgreSQL): webhooks and notifications write rows there and delete
them; the others create their own databases on that server (``<db>_bench_*``, ``<db>_scale*``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCHES = (
    "webhooks",
    "scale",
    "tracking",
    "admin",
    "returns",
    "insights",
    "estimates",
    "notifications",
    "load",
)
FULL_ORDERS = 1_000_000
FULL_INSIGHTS_ORDERS = 1_100_000


@dataclass(frozen=True)
class Goal:
    """A target's goal against one baseline (issue 12): rate at least ``rate`` × the
    baseline's, p99 at most ``p99`` × the baseline's, p99 at most ``p99_ms``."""

    rate: float | None = None
    p99: float | None = None
    p99_ms: float | None = None

    def text(self) -> str:
        parts = []
        if self.rate is not None:
            parts.append(f"≥ {self.rate:g}× rate")
        if self.p99 is not None:
            parts.append(f"p99 ≤ {self.p99:g}×")
        if self.p99_ms is not None:
            parts.append(f"p99 ≤ {self.p99_ms:g} ms")
        return ", ".join(parts)

    def met(self, row: dict, base: dict) -> bool | None:
        checks = []
        if self.rate is not None and base["rate"]:
            checks.append(row["rate"] >= self.rate * base["rate"])
        if self.p99 is not None and row["p99_ms"] is not None and base["p99_ms"]:
            checks.append(row["p99_ms"] <= self.p99 * base["p99_ms"])
        if self.p99_ms is not None and row["p99_ms"] is not None:
            checks.append(row["p99_ms"] <= self.p99_ms)
        return all(checks) if checks else None


# (bench, target row, baseline row) → goal, as issue 12 sets them. A row a bench renames
# simply shows no goal.
GOALS = {
    ("webhooks", "webhook intake", "one INSERT"): Goal(rate=0.8),
    ("webhooks", "webhook intake", "bare view"): Goal(rate=0.35, p99=3),
    ("tracking", "tracking page (cached)", "bare view"): Goal(rate=0.5, p99_ms=50),
    ("tracking", "tracking page (rendered)", "bare view"): Goal(rate=0.5, p99_ms=50),
    ("admin", "search, across shops", "bare view"): Goal(p99_ms=100),
    ("admin", "order page, across shops", "bare view"): Goal(p99_ms=100),
    ("admin", "search, big shop", "bare view"): Goal(p99_ms=100),
    ("admin", "order page, big shop", "bare view"): Goal(p99_ms=100),
    ("returns", "lookup", "bare view"): Goal(rate=0.3, p99_ms=100),
    ("returns", "item selection", "bare view"): Goal(rate=0.3, p99_ms=100),
    ("notifications", "shipped emails (trigger to SMTP)", "no-op RQ jobs"): Goal(rate=0.6),
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--seconds", type=float, default=10, help="wrk load per HTTP target")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections")
    parser.add_argument(
        "--orders",
        type=int,
        default=FULL_ORDERS,
        help="scale dataset (tracking, admin): orders; reused when built with the same "
        "parameters, else built (~23 min at 1,000,000 on 2 cores)",
    )
    parser.add_argument(
        "--shops", type=int, default=None, help="scale dataset: shops (500, fewer when small)"
    )
    parser.add_argument(
        "--skew", type=float, default=0.0, help="scale dataset: the first shop's share"
    )
    parser.add_argument(
        "--insights-orders",
        type=int,
        default=None,
        help="insights' own skewed build (1,100,000; 1.1 × --orders when that is smaller)",
    )
    parser.add_argument(
        "--scale", type=float, default=1.0, help="returns: its dataset (1.0 = 100k orders)"
    )
    # The devshop makes ~7 orders/s: 200 is half a minute, and more than the item pages reach
    # in a 10 s run (each order comes once per cycle).
    parser.add_argument("--sample", type=int, default=200, help="returns: orders on the devshop")
    parser.add_argument(
        "--admin-requests", type=int, default=300, help="returns: 'Admin API alone' pages"
    )
    parser.add_argument("--parcels", type=int, default=20_000, help="estimates: history")
    parser.add_argument(
        "--burst", type=int, default=10_000, help="notifications: triggers at once, drained"
    )
    parser.add_argument(
        "--steady-seconds", type=float, default=30, help="notifications: 20 triggers/s for this"
    )
    parser.add_argument(
        "--scaling-orders", type=int, default=1000, help="notifications: burst per worker count"
    )
    parser.add_argument(
        "--load-count", type=int, default=50_000, help="load: webhooks sent, then drained"
    )
    parser.add_argument("--only", choices=BENCHES, action="append", help="run only these")
    parser.add_argument("--skip", choices=BENCHES, action="append", help="run all but these")
    parser.add_argument(
        "--keep-others",
        action="store_true",
        help="table the benches not run this time from their figures in --out (an earlier run)",
    )
    parser.add_argument(
        "--out", type=Path, default=REPO / "bench" / "out", help="figures, logs, results.md"
    )
    args = parser.parse_args(argv)
    if args.shops is None:
        # bench/admin.py's rule: 500 shops, or one per 100 orders in a smaller copy.
        args.shops = min(500, max(1, args.orders // 100))
    if args.insights_orders is None:
        args.insights_orders = min(FULL_INSIGHTS_ORDERS, round(args.orders * 1.1))
    return args


def bench_arguments(name: str, args: argparse.Namespace) -> list[str]:
    http = ["--seconds", f"{args.seconds:g}", "--connections", str(args.connections)]
    # One build for tracking and admin (bench/scale.py names it by these parameters).
    dataset = ["--orders", str(args.orders), "--shops", str(args.shops)]
    return {
        "webhooks": http,
        "scale": [*dataset, "--skew", repr(args.skew)],
        "tracking": [*http, *dataset, "--skew", repr(args.skew)],
        "admin": [*http, *dataset, "--skew", repr(args.skew)],
        "returns": [
            *http,
            "--scale",
            f"{args.scale:g}",
            "--sample",
            str(args.sample),
            "--admin-requests",
            str(args.admin_requests),
        ],
        "insights": [
            "--orders",
            str(args.insights_orders),
            # bench/insights.py's shape (a shop with ~91% of the orders), at this size.
            "--shops",
            str(min(50, max(2, args.insights_orders // 400))),
        ],
        "estimates": ["--parcels", str(args.parcels)],
        # The burst, then a steady 20 triggers/s and the 1/2/4-worker scaling.
        "notifications": [
            "--orders",
            str(args.burst),
            "--steady-rate",
            "20",
            "--steady-seconds",
            f"{args.steady_seconds:g}",
            "--scaling",
            "1,2,4",
            "--scaling-orders",
            str(args.scaling_orders),
        ],
        "load": ["--count", str(args.load_count), "--connections", str(args.connections)],
    }[name]


def bench_run(name: str, args: argparse.Namespace) -> tuple[dict | None, int, float]:
    """(its figures, or None; its exit status; seconds): the bench's output goes to the
    terminal and to <out>/<name>.log."""
    figures_path = args.out / f"{name}.json"
    figures_path.unlink(missing_ok=True)
    command = [
        sys.executable,
        str(REPO / "bench" / f"{name}.py"),
        *bench_arguments(name, args),
        "--json",
        str(figures_path),
    ]
    print(f"\n== bench/{name}.py {' '.join(command[2:])}", flush=True)
    started = time.perf_counter()
    with open(args.out / f"{name}.log", "wb") as log:
        process = subprocess.Popen(
            command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        assert process.stdout is not None
        for line in process.stdout:
            log.write(line)
            sys.stdout.buffer.write(line)
            sys.stdout.flush()
        status = process.wait()
    seconds = time.perf_counter() - started
    figures = json.loads(figures_path.read_text()) if figures_path.exists() else None
    return figures, status, seconds


def _number(value: float | None, digits: int) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def _ratio(row: dict, base: dict) -> str:
    """``row``'s rate and p99 over ``base``'s, e.g. "0.19× rate, 1.8× p99"."""
    if not base["rate"]:
        return "–"
    text = f"{row['rate'] / base['rate']:.2f}× rate"
    if row["p99_ms"] is not None and base["p99_ms"]:
        text += f", {row['p99_ms'] / base['p99_ms']:.1f}× p99"
    return text


def _met(met: bool | None) -> str:
    return "–" if met is None else ("yes" if met else "**no**")


def results_markdown(runs: dict[str, tuple[dict | None, int, float]], header: str) -> str:
    """One row per figure. A baseline is a row of its own (its ratio column empty: baselines
    are not compared with each other); a target gets one row per baseline of its bench, with
    the ratio to it and issue 12's goal; a bench's single figures (counts, times, peak RSS)
    follow, each with its goal, and with the baseline it was measured against in the same run
    and the ratio to it where it has one."""
    lines = [
        "# Benchmarks",
        "",
        header,
        "",
        "| bench | figure | rate or value | p50 ms | p99 ms | against | ratio | goal | met |",
        "| --- | --- | ---: | ---: | ---: | --- | --- | --- | --- |",
    ]
    notes = []
    for name, (figures, status, seconds) in runs.items():
        if figures is None:
            lines.append(f"| {name} | FAILED (exit {status}, no figures) | | | | | | | |")
            continue
        bench = name if figures["ok"] and status == 0 else f"{name} (FAILED)"
        unit = figures["unit"]
        baselines = [row for row in figures["rows"] if row["baseline"]]
        for row in figures["rows"]:
            measured = (
                f"| {bench} | {row['target']} | {_number(row['rate'], 1)} {unit} | "
                f"{_number(row['p50_ms'], 2)} | {_number(row['p99_ms'], 2)} |"
            )
            if row["baseline"]:
                lines.append(f"{measured} (baseline) | | | |")
                continue
            for base in baselines or [None]:
                if base is None:
                    lines.append(f"{measured} | | | |")
                    continue
                goal = GOALS.get((name, row["target"], base["target"]))
                lines.append(
                    f"{measured} {base['target']} | {_ratio(row, base)} | "
                    f"{goal.text() if goal else ''} | "
                    f"{_met(goal.met(row, base)) if goal else '–'} |"
                )
        for single in figures.get("figures", []):
            unit = f" {single['unit']}" if single["unit"] else ""
            value = single["value"]
            shown = "–" if value is None else f"{value:,}{unit}"
            against = ratio = ""
            if single.get("against"):
                baseline = single.get("baseline")
                against = single["against"] + (
                    f": {baseline:,}{unit}" if baseline is not None else ""
                )
                if value is not None and baseline:
                    ratio = f"{value / baseline:.2f}×"
            lines.append(
                f"| {bench} | {single['figure']} | {shown} | | | {against} | {ratio} | "
                f"{single['goal']} | {_met(single['met'])} |"
            )
        notes.append(f"- **{name}** ({seconds:.0f} s): {figures['setup']}")
        notes.extend(f"  - {note}" for note in figures["notes"])
    return "\n".join([*lines, "", *notes, ""])


def selected(args: argparse.Namespace) -> list[str]:
    return [name for name in (args.only or BENCHES) if name not in (args.skip or [])]


def sizes_note(args: argparse.Namespace) -> str:
    """Where this run is smaller than issue 12's figures (whose goals then say little)."""
    smaller = [
        f"{label} {value:,} (issue 12: {full:,})"
        for label, value, full in (
            ("scale dataset orders", args.orders, FULL_ORDERS),
            ("notification burst", args.burst, 10_000),
            ("load webhooks", args.load_count, 50_000),
        )
        if value < full
    ]
    return ("Smaller than issue 12's run: " + "; ".join(smaller) + ".") if smaller else ""


def earlier_figures_kept(runs: dict, out: Path) -> dict:
    """``runs`` with, for each bench not run this time, the figures an earlier run left in
    ``out`` (its setup says so), in the benches' order."""
    kept = {}
    for name in BENCHES:
        if name in runs:
            kept[name] = runs[name]
            continue
        path = out / f"{name}.json"
        if path.exists():
            figures = json.loads(path.read_text())
            figures["setup"] = f"(figures of an earlier run) {figures['setup']}"
            kept[name] = (figures, 0, 0.0)
    return kept


def main() -> int:
    args = parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
        raise SystemExit(
            "bench-all needs PostgreSQL: DATABASE_URL=postgres://postgres@127.0.0.1:5432/<db> "
            "(tracking and returns create and drop <db>_bench_* databases on that server)"
        )
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    runs = {}
    loads = []
    for name in selected(args):
        runs[name] = bench_run(name, args)
        loads.append(f"{name} {os.getloadavg()[0]:.1f}")
    if args.keep_others:
        runs = earlier_figures_kept(runs, args.out)
    header = (
        f"`make bench-all` on {os.cpu_count()} cores, "
        f"{time.strftime('%Y-%m-%d %H:%M %Z')}, {time.perf_counter() - started:.0f} s in all. "
        f"Load average (1 min) as each bench ended: {', '.join(loads)}. "
        f"{sizes_note(args)} "
        "Rates are requests/s for HTTP benches (wrk's), messages or jobs/s for notifications; "
        "p50/p99 are wrk's latencies (notifications: trigger to SMTP acceptance). "
        "Ratio: this row's rate and p99 (or its value) over the baseline's in the same run; "
        "goals are issue 12's (insights and estimates: the benches' own)."
    )
    markdown = results_markdown(runs, header)
    (args.out / "results.md").write_text(markdown)
    print("\n" + markdown)
    print(f"written to {args.out / 'results.md'}")
    failed = [
        name
        for name, (figures, status, _) in runs.items()
        if status != 0 or figures is None or not figures["ok"]
    ]
    if failed:
        print(f"FAIL: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
