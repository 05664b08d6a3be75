"""Every benchmark in bench/, one after the other on PostgreSQL, tabled in one Markdown file.

    bench/all.py ─ webhooks.py --json out/webhooks.json ─┐
                 ─ tracking.py --json out/tracking.json ─┤  each alone on the machine, in turn
                 ─ returns.py  --json out/returns.json  ─┤  (their output in out/<name>.log)
                 ─ notifications.py --json …            ─┤
                 ─ load.py --json out/load.json         ─┘
                 ─▶ bench/out/results.md: one row per figure: a target against each of its
                    bench's baselines (rate, p50, p99, ratio), issue 12's goal for it and
                    whether it was met; then single figures (drain time, lost, peak RSS…)

The sizes below keep the first four near 7 minutes on 2 cores (the dataset COPY, the devshop's
orders and the notification workers' forks are most of it); each script alone keeps its own,
larger defaults. bench/load.py's 50,000 webhooks take longer, the drain most of it (RQ's
fork-per-job workers: tens of jobs/s): ``--load-count 5000`` for a shorter run. A bench that
fails (exit status, or its figures say so) is marked FAILED in the table and makes this script
exit 1; the others still run.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/wta REDIS_URL=redis://127.0.0.1:6379/10 \\
        .venv/bin/python bench/all.py [--seconds 10] [--only returns] [--out bench/out]

DATABASE_URL is required (PostgreSQL): webhooks and notifications write rows there and delete
them; tracking and returns create and drop their own scratch databases on that server.
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
BENCHES = ("webhooks", "tracking", "returns", "notifications", "load")


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
    ("tracking", "tracking page", "bare view"): Goal(rate=0.5, p99_ms=50),
    ("returns", "lookup", "bare view"): Goal(rate=0.3, p99_ms=100),
    ("returns", "item selection", "bare view"): Goal(rate=0.3, p99_ms=100),
    ("notifications", "shipped emails (trigger to SMTP)", "no-op RQ jobs"): Goal(rate=0.6),
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--seconds", type=float, default=10, help="wrk load per HTTP target")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections")
    parser.add_argument(
        "--scale", type=float, default=1.0, help="tracking/returns dataset (1.0 = 100k orders)"
    )
    # The devshop makes ~7 orders/s: 200 is half a minute, and more than the item pages reach
    # in a 10 s run (each order comes once per cycle).
    parser.add_argument("--sample", type=int, default=200, help="returns: orders on the devshop")
    parser.add_argument(
        "--admin-requests", type=int, default=300, help="returns: 'Admin API alone' pages"
    )
    # The notification workers fork per job (~50 no-op jobs/s, ~10 emails/s on 2 cores).
    parser.add_argument("--orders", type=int, default=400, help="notifications: emails sent")
    parser.add_argument(
        "--load-count", type=int, default=50_000, help="load: webhooks sent, then drained"
    )
    parser.add_argument("--only", choices=BENCHES, action="append", help="run only these")
    parser.add_argument(
        "--out", type=Path, default=REPO / "bench" / "out", help="figures, logs, results.md"
    )
    return parser.parse_args()


def bench_arguments(name: str, args: argparse.Namespace) -> list[str]:
    http = ["--seconds", f"{args.seconds:g}", "--connections", str(args.connections)]
    return {
        "webhooks": http,
        "tracking": [*http, "--scale", f"{args.scale:g}"],
        "returns": [
            *http,
            "--scale",
            f"{args.scale:g}",
            "--sample",
            str(args.sample),
            "--admin-requests",
            str(args.admin_requests),
        ],
        # The burst, then a steady 20 triggers/s and the 1/2/4-worker scaling (their figures
        # are in the bench's notes).
        "notifications": [
            "--orders",
            str(args.orders),
            "--steady-rate",
            "20",
            "--steady-seconds",
            "15",
            "--scaling",
            "1,2,4",
            "--scaling-orders",
            str(max(100, args.orders // 2)),
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
    follow, each with its goal."""
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
            value = single["value"]
            shown = (
                "–"
                if value is None
                else f"{value:,}{' ' + single['unit'] if single['unit'] else ''}"
            )
            lines.append(
                f"| {bench} | {single['figure']} | {shown} | | | | | {single['goal']} | "
                f"{_met(single['met'])} |"
            )
        notes.append(f"- **{name}** ({seconds:.0f} s): {figures['setup']}")
        notes.extend(f"  - {note}" for note in figures["notes"])
    return "\n".join([*lines, "", *notes, ""])


def main() -> int:
    args = parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
        raise SystemExit(
            "bench-all needs PostgreSQL: DATABASE_URL=postgres://postgres@127.0.0.1:5432/<db> "
            "(tracking and returns create and drop <db>_bench_* databases on that server)"
        )
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    runs = {name: bench_run(name, args) for name in args.only or BENCHES}
    header = (
        f"`make bench-all` on {os.cpu_count()} cores, "
        f"{time.strftime('%Y-%m-%d %H:%M %Z')}, {time.perf_counter() - started:.0f} s in all. "
        "Rates are requests/s for HTTP benches (wrk's), messages or jobs/s for notifications; "
        "p50/p99 are wrk's latencies (notifications: trigger to SMTP acceptance). "
        "Ratio: this row's rate and p99 over the baseline's in the same run; goals are "
        "issue 12's."
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
