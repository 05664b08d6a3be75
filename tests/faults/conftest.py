"""The fault suite's stack (tests/faults/stack.py), started once for the package, and the day
run without faults that every scenario is compared with."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.faults.day import install
from tests.faults.stack import Stack

FIGURES = Path(os.environ.get("FAULTS_FIGURES", "")) if os.environ.get("FAULTS_FIGURES") else None


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    root = tmp_path_factory.mktemp("faults")
    root.chmod(0o755)
    stack = Stack(root)
    try:
        stack.start()
        # Webhook retries a second apart (Shopify's are minutes apart; same schedule shape).
        stack.devshop.client.knobs_set(
            webhook_retry_base_seconds=0.5,
            webhook_max_retries=12,
            webhook_delivery_paused=False,
            webhook_chaos_duplicate=0.0,
            webhook_chaos_reorder=False,
            webhook_chaos_delay_seconds=0.0,
        )
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="session")
def orderly(stack):
    """The day with nothing going wrong: what every faulty day must end as."""
    day = install(stack, "orderly")
    day.run()
    day.settle()
    day.outcome()  # checked against the store's record
    figures = day.figures()
    assert figures["events_lost"] == 0, figures
    assert figures["messages_twice"] == 0, figures
    assert figures["emails"] > 0, "the orderly day sent no email: nothing to compare"
    report("orderly", figures)
    return day


def report(scenario: str, figures: dict) -> None:
    """Print the scenario's figures (the closing note's table), and keep them when asked."""
    print(f"\nfaults: {scenario}: {json.dumps(figures, sort_keys=True)}")
    if FIGURES is not None:
        with FIGURES.open("a") as out:
            out.write(json.dumps({"scenario": scenario, **figures}, sort_keys=True) + "\n")
