"""bench/all.py's table: one row per figure, a target against each baseline with its goal,
baselines never compared with each other, single figures with their goals."""

import json

from bench.all import (
    bench_arguments,
    earlier_figures_kept,
    parse_args,
    results_markdown,
    selected,
    sizes_note,
)
from bench.report import figure, figures_row


def _webhooks(intake_rate: float, intake_p99: float) -> dict:
    return {
        "bench": "webhooks",
        "unit": "req/s",
        "setup": "test",
        "ok": True,
        "rows": [
            figures_row("bare view", rate=3000.0, p50_ms=5.0, p99_ms=10.0, baseline=True),
            figures_row("one INSERT", rate=1000.0, p50_ms=14.0, p99_ms=30.0, baseline=True),
            figures_row("webhook intake", rate=intake_rate, p50_ms=18.0, p99_ms=intake_p99),
        ],
        "notes": [],
        "figures": [figure("peak RSS, gunicorn worker 1", 96.04, "MB", goal="≤ 120", met=True)],
    }


def _rows(markdown: str, figure_name: str) -> list[list[str]]:
    rows = [
        [cell.strip() for cell in line.strip().strip("|").split("|")]
        for line in markdown.splitlines()
        if line.startswith("| ")
    ]
    return [row for row in rows if row[1] == figure_name]


def test_target_gets_one_row_per_baseline_with_ratio_goal_and_verdict():
    markdown = results_markdown({"webhooks": (_webhooks(900.0, 25.0), 0, 30.0)}, "header")

    intake = _rows(markdown, "webhook intake")
    assert len(intake) == 2
    by_baseline = {row[5]: row for row in intake}
    # 900/3000 = 0.30× < 0.35×: not met, although its p99 (2.5× bare's) is within 3×.
    assert by_baseline["bare view"][6] == "0.30× rate, 2.5× p99"
    assert by_baseline["bare view"][7] == "≥ 0.35× rate, p99 ≤ 3×"
    assert by_baseline["bare view"][8] == "**no**"
    # 900/1000 = 0.90× ≥ 0.8×.
    assert by_baseline["one INSERT"][6] == "0.90× rate, 0.8× p99"
    assert by_baseline["one INSERT"][8] == "yes"


def test_p99_goal_alone_can_fail_a_target():
    markdown = results_markdown({"webhooks": (_webhooks(1200.0, 31.0), 0, 30.0)}, "header")

    bare = next(row for row in _rows(markdown, "webhook intake") if row[5] == "bare view")
    assert bare[6] == "0.40× rate, 3.1× p99"
    assert bare[8] == "**no**"


def test_baselines_are_rows_of_their_own_without_ratios():
    markdown = results_markdown({"webhooks": (_webhooks(900.0, 25.0), 0, 30.0)}, "header")

    for name in ("bare view", "one INSERT"):
        (row,) = _rows(markdown, name)
        assert row[5] == "(baseline)"
        assert row[6] == row[7] == ""
    assert "vs" not in markdown


def test_single_figures_and_failed_benches():
    load = {
        "bench": "load",
        "unit": "req/s",
        "setup": "test",
        "ok": False,
        "rows": [figures_row("webhook flood (intake)", rate=500.0, p50_ms=20.0, p99_ms=80.0)],
        "notes": [],
        "figures": [figure("events lost", 3, "", goal="= 0", met=False)],
    }
    markdown = results_markdown(
        {
            "webhooks": (_webhooks(900.0, 25.0), 0, 30.0),
            "load": (load, 1, 60.0),
            "tracking": (None, 2, 1.0),
        },
        "header",
    )

    (rss,) = _rows(markdown, "peak RSS, gunicorn worker 1")
    assert rss[2] == "96.0 MB"
    assert rss[8] == "yes"
    (lost,) = _rows(markdown, "events lost")
    assert lost[0] == "load (FAILED)"
    assert (lost[2], lost[7], lost[8]) == ("3", "= 0", "**no**")
    (flood,) = _rows(markdown, "webhook flood (intake)")
    assert flood[2] == "500.0 req/s"
    assert "| tracking | FAILED (exit 2, no figures) |" in markdown


def test_figures_of_a_bench_that_writes_none_still_table():
    # A bench written before "figures" existed: the key is absent, not empty.
    old = _webhooks(900.0, 25.0)
    del old["figures"]

    markdown = results_markdown({"webhooks": (old, 0, 30.0)}, "header")

    assert len(_rows(markdown, "webhook intake")) == 2


def test_a_single_figure_with_a_baseline_shows_it_and_the_ratio():
    estimates = {
        "bench": "estimates",
        "unit": "",
        "setup": "test",
        "ok": True,
        "rows": [],
        "notes": [],
        "figures": [
            figure(
                "estimates: mean absolute error of the likely day",
                0.674,
                "days",
                digits=2,
                against="the shop's overall median",
                baseline=1.071,
                goal="< baseline",
                met=True,
            ),
            figure("estimates: one prediction", 41.0, "µs", digits=0, against="pk read"),
        ],
    }

    markdown = results_markdown({"estimates": (estimates, 0, 5.0)}, "header")

    (mae,) = _rows(markdown, "estimates: mean absolute error of the likely day")
    assert mae[2] == "0.67 days"
    assert mae[5] == "the shop's overall median: 1.07 days"
    assert mae[6] == "0.63×"
    assert (mae[7], mae[8]) == ("< baseline", "yes")
    # A baseline that was not measured: named, no ratio.
    (prediction,) = _rows(markdown, "estimates: one prediction")
    assert (prediction[5], prediction[6], prediction[8]) == ("pk read", "", "–")


def test_knobs_share_one_scale_build_and_say_when_the_run_is_small():
    args = parse_args(["--orders", "20000", "--burst", "1000"])

    assert args.shops == 200
    assert args.insights_orders == 22_000
    # tracking and admin name the same build (bench/scale.py derives its name from these)
    tracking, admin = bench_arguments("tracking", args), bench_arguments("admin", args)
    for flag in ("--orders", "--shops", "--skew"):
        assert tracking[tracking.index(flag) + 1] == admin[admin.index(flag) + 1]
    note = sizes_note(args)
    assert "scale dataset orders 20,000 (issue 12: 1,000,000)" in note
    assert "notification burst 1,000 (issue 12: 10,000)" in note
    assert "load" not in note
    assert sizes_note(parse_args([])) == ""
    assert parse_args([]).insights_orders == 1_100_000


def test_only_and_skip_pick_the_benches():
    assert selected(parse_args(["--only", "scale", "--only", "admin"])) == ["scale", "admin"]
    everything_but = selected(parse_args(["--skip", "load", "--skip", "returns"]))
    assert "load" not in everything_but
    assert "returns" not in everything_but
    assert everything_but[:3] == ["webhooks", "scale", "tracking"]


def test_keep_others_tables_an_earlier_runs_figures_for_the_benches_not_run(tmp_path):
    (tmp_path / "webhooks.json").write_text(json.dumps(_webhooks(900.0, 25.0)))
    fresh = {"load": ({**_webhooks(1.0, 1.0), "bench": "load"}, 0, 9.0)}

    runs = earlier_figures_kept(fresh, tmp_path)

    # in the benches' order; the earlier figures say where they come from
    assert list(runs) == ["webhooks", "load"]
    assert runs["webhooks"][0]["setup"].startswith("(figures of an earlier run)")
    assert runs["load"] == fresh["load"]
