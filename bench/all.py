"""Every benchmark in bench/, one after the other on PostgreSQL, tabled in one Markdown file.

    bench/all.py ─ webhooks.py --json out/webhooks.json ─┐
                 ─ tracking.py --json out/tracking.json ─┤  each alone on the machine, in turn
                 ─ returns.py  --json out/returns.json  ─┤  (their output in out/<name>.log)
                 ─ notifications.py --json …            ─┘
                 ─▶ bench/out/results.md: per bench, each target and baseline with its rate,
                    p50, p99 and its ratios to the bench's baselines; printed too

The sizes below keep the whole run near 7 minutes on 2 cores (the dataset COPY, the devshop's
orders and the notification workers' forks are most of it); each script alone keeps its own,
larger defaults. A bench that fails (exit status, or its figures say so) is marked FAILED in the
table and makes this script exit 1; the others still run.

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
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCHES = ("webhooks", "tracking", "returns", "notifications")


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


def _ratios(row: dict, baselines: list[dict]) -> str:
    """Throughput and p99 of ``row`` over each baseline's, e.g. "0.19× rate, 1.8× p99 vs bare"."""
    parts = []
    for base in baselines:
        if base is row or not base["rate"]:
            continue
        text = f"{row['rate'] / base['rate']:.2f}× rate"
        if row["p99_ms"] is not None and base["p99_ms"]:
            text += f", {row['p99_ms'] / base['p99_ms']:.1f}× p99"
        parts.append(f"{text} vs {base['target']}")
    return "; ".join(parts)


def results_markdown(runs: dict[str, tuple[dict | None, int, float]], header: str) -> str:
    lines = [
        "# Benchmarks",
        "",
        header,
        "",
        "| bench | target | role | rate | p50 ms | p99 ms | failed | ratio |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | --- |",
    ]
    notes = []
    for name, (figures, status, seconds) in runs.items():
        if figures is None:
            lines.append(f"| {name} | FAILED (exit {status}, no figures) | | | | | | |")
            continue
        verdict = "" if figures["ok"] and status == 0 else " (FAILED)"
        baselines = [row for row in figures["rows"] if row["baseline"]]
        for row in figures["rows"]:
            lines.append(
                f"| {name}{verdict} | {row['target']} | "
                f"{'baseline' if row['baseline'] else 'target'} | "
                f"{_number(row['rate'], 1)} {figures['unit']} | {_number(row['p50_ms'], 2)} | "
                f"{_number(row['p99_ms'], 2)} | {row['failed']} | "
                f"{'' if row['baseline'] and len(baselines) == 1 else _ratios(row, baselines)} |"
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
        "Ratios: this row's rate and p99 over each baseline's."
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
