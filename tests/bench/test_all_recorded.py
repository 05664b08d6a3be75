"""bench/all.py's table built from figures the benches really wrote (tests/bench/recorded/: one
small `bench/all.py --orders 20000 …` run, see its README section), so that a bench renaming
a row or dropping a figure shows here, not as a silently empty goal column."""

import json
from pathlib import Path

import pytest

from bench.all import BENCHES, GOALS, results_markdown

RECORDED = Path(__file__).parent / "recorded"


def _recorded() -> dict[str, dict]:
    return {path.stem: json.loads(path.read_text()) for path in sorted(RECORDED.glob("*.json"))}


def _table_rows(markdown: str) -> list[list[str]]:
    return [
        [cell.strip() for cell in line.strip().strip("|").split("|")]
        for line in markdown.splitlines()
        if line.startswith("| ") and not line.startswith("| bench ")
    ]


def test_every_bench_was_recorded():
    assert sorted(_recorded()) == sorted(BENCHES)


def test_every_goal_names_a_row_its_bench_writes():
    recorded = _recorded()
    for (bench, target, baseline), _goal in GOALS.items():
        names = {row["target"] for row in recorded[bench]["rows"]}
        assert target in names, (bench, target, names)
        assert baseline in names, (bench, baseline, names)


@pytest.mark.parametrize("bench", BENCHES)
def test_every_row_and_figure_of_a_bench_is_in_the_table(bench):
    figures = _recorded()[bench]
    markdown = results_markdown({bench: (figures, 0, 1.0)}, "header")
    rows = _table_rows(markdown)
    names = {row[1] for row in rows}

    for row in figures["rows"]:
        assert row["target"] in names
    for single in figures["figures"]:
        assert single["figure"] in names
    # every target row (not a baseline) is set against each baseline of its bench
    baselines = [row["target"] for row in figures["rows"] if row["baseline"]]
    for row in figures["rows"]:
        if row["baseline"]:
            continue
        against = {r[5] for r in rows if r[1] == row["target"]}
        assert against == (set(baselines) or {""}), (row["target"], against)


def test_issue_12s_figures_each_have_a_row_with_a_goal():
    markdown = results_markdown(
        {name: (figures, 0, 1.0) for name, figures in _recorded().items()}, "header"
    )
    rows = _table_rows(markdown)

    def goal_of(bench: str, figure_start: str) -> list[str]:
        return [
            row[7] for row in rows if row[0] == bench and row[1].startswith(figure_start) and row[7]
        ]

    assert goal_of("webhooks", "webhook intake")
    assert goal_of("tracking", "tracking page")
    assert goal_of("admin", "search")
    assert goal_of("admin", "order page")
    assert goal_of("returns", "lookup")
    assert goal_of("notifications", "shipped emails")
    assert goal_of("notifications", "steady 20 triggers/s: trigger → SMTP p95")
    assert goal_of("notifications", "burst of")
    assert goal_of("notifications", "peak RSS")
    assert goal_of("load", "events lost")
    assert goal_of("scale", "scale dataset: orders")
    assert goal_of("estimates", "estimates: delivered within")
    # 1, 2 and 4 workers, each a row
    assert {row[1].split(":")[0] for row in rows if row[1].endswith(("(burst of 200)",))} >= {
        "1 worker(s)",
        "2 worker(s)",
        "4 worker(s)",
    }
