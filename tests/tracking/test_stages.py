"""Shopify's open status sets read as shopper stages, and the order-independent resolver."""

from datetime import UTC, datetime, timedelta

import pytest

from tracking.models import Stage
from tracking.stages import (
    STAGE_PROGRESS,
    StageSignal,
    stage_for_fulfillment,
    stage_for_status,
    stage_is_branch,
    stage_label,
    stage_position,
    stage_resolve,
    status_is_known,
)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("status", "stage"),
    [
        # REST shipment_status, lower_snake
        ("label_printed", Stage.SHIPPED),
        ("label_purchased", Stage.SHIPPED),
        ("confirmed", Stage.SHIPPED),
        ("in_transit", Stage.IN_TRANSIT),
        ("out_for_delivery", Stage.OUT_FOR_DELIVERY),
        ("delivered", Stage.DELIVERED),
        ("attempted_delivery", Stage.ATTEMPTED_DELIVERY),
        ("ready_for_pickup", Stage.READY_FOR_PICKUP),
        ("failure", Stage.PROBLEM),
        # GraphQL FulfillmentEventStatus, UPPER_SNAKE, including the newer values
        ("CARRIER_PICKED_UP", Stage.IN_TRANSIT),
        ("IN_TRANSIT", Stage.IN_TRANSIT),
        ("OUT_FOR_DELIVERY", Stage.OUT_FOR_DELIVERY),
        ("DELIVERED", Stage.DELIVERED),
        ("DELAYED", Stage.DELAYED),
        ("ATTEMPTED_DELIVERY", Stage.ATTEMPTED_DELIVERY),
        ("READY_FOR_PICKUP", Stage.READY_FOR_PICKUP),
        ("FAILURE", Stage.PROBLEM),
        ("LABEL_PRINTED", Stage.SHIPPED),
        # Customer API (unstable) and FulfillmentDisplayStatus additions
        ("PICKED_UP", Stage.DELIVERED),
        ("READY_FOR_RECIPIENT_PICKUP", Stage.READY_FOR_PICKUP),
        ("RETURNING_TO_SENDER", Stage.PROBLEM),
        ("BUYER_ACTION_REQUIRED", Stage.PROBLEM),
        ("NOT_DELIVERED", Stage.PROBLEM),
        ("LABEL_VOIDED", Stage.PROBLEM),
        ("CANCELED", Stage.PROBLEM),
        ("SUBMITTED", Stage.ORDERED),
        ("FULFILLED", Stage.SHIPPED),
        ("MARKED_AS_FULFILLED", Stage.SHIPPED),
        # Mixed case and padding
        (" In_Transit ", Stage.IN_TRANSIT),
    ],
)
def test_every_known_status_maps_to_its_stage(status, stage):
    assert stage_for_status(status) == stage
    assert status_is_known(status)


@pytest.mark.parametrize("status", ["TELEPORTED", "drone_dispatched", "42", "in transit?"])
def test_unknown_statuses_map_to_shipped_and_never_raise(status):
    assert stage_for_status(status) == Stage.SHIPPED
    assert not status_is_known(status)


@pytest.mark.parametrize("status", [None, ""])
def test_no_status_means_a_fulfillment_without_carrier_data(status):
    assert stage_for_status(status) == Stage.SHIPPED


@pytest.mark.parametrize("status", ["cancelled", "ERROR", "failure"])
def test_a_failed_fulfillment_is_a_problem_whatever_the_carrier_says(status):
    assert stage_for_fulfillment(status=status, shipment_status="delivered") == Stage.PROBLEM


def test_progress_positions_follow_the_main_line_and_branches_hang_on_their_anchor():
    assert [stage_position(s) for s in STAGE_PROGRESS] == [0, 1, 2, 3, 4]
    assert stage_position(Stage.ATTEMPTED_DELIVERY) == 3
    assert stage_position(Stage.READY_FOR_PICKUP) == 3
    assert stage_position(Stage.DELAYED) == 2
    assert stage_position(Stage.PROBLEM) == 2
    assert stage_position("no-such-stage") == 1
    assert stage_is_branch(Stage.DELAYED)
    assert not stage_is_branch(Stage.DELIVERED)
    assert stage_label(Stage.OUT_FOR_DELIVERY) == "Out for delivery"


def _sig(stage, minutes, order_key=0):
    return StageSignal(stage, T0 + timedelta(minutes=minutes), order_key)


def _resolve(*signals, status="success", shipment_status=None):
    return stage_resolve(
        fulfillment_status=status, shipment_status=shipment_status, events=list(signals)
    )


def test_resolve_is_the_same_in_any_arrival_order():
    signals = [
        _sig(Stage.IN_TRANSIT, 0, 1),
        _sig(Stage.OUT_FOR_DELIVERY, 60, 2),
        _sig(Stage.DELIVERED, 120, 3),
    ]
    assert _resolve(*signals) == Stage.DELIVERED
    assert _resolve(*reversed(signals)) == Stage.DELIVERED


def test_an_older_main_line_scan_never_moves_the_stage_back():
    assert _resolve(_sig(Stage.OUT_FOR_DELIVERY, 60), _sig(Stage.IN_TRANSIT, 0)) == (
        Stage.OUT_FOR_DELIVERY
    )


def test_delivered_is_terminal_even_against_a_newer_in_transit_scan():
    assert _resolve(_sig(Stage.DELIVERED, 0), _sig(Stage.IN_TRANSIT, 60)) == Stage.DELIVERED


def test_a_problem_after_delivery_wins_but_one_before_it_does_not():
    assert _resolve(_sig(Stage.DELIVERED, 0), _sig(Stage.PROBLEM, 60)) == Stage.PROBLEM
    assert _resolve(_sig(Stage.PROBLEM, 0), _sig(Stage.DELIVERED, 60)) == Stage.DELIVERED


def test_the_newest_fact_decides_between_a_branch_and_the_main_line():
    assert _resolve(_sig(Stage.IN_TRANSIT, 0), _sig(Stage.DELAYED, 60)) == Stage.DELAYED
    assert _resolve(_sig(Stage.DELAYED, 0), _sig(Stage.IN_TRANSIT, 60)) == Stage.IN_TRANSIT
    assert (
        _resolve(_sig(Stage.OUT_FOR_DELIVERY, 0), _sig(Stage.ATTEMPTED_DELIVERY, 60))
        == Stage.ATTEMPTED_DELIVERY
    )


def test_without_events_the_fulfillments_shipment_status_speaks():
    assert _resolve(shipment_status="out_for_delivery") == Stage.OUT_FOR_DELIVERY
    assert _resolve(shipment_status="READY_FOR_PICKUP") == Stage.READY_FOR_PICKUP
    assert _resolve() == Stage.SHIPPED
    assert _resolve(_sig(Stage.DELIVERED, 0), status="cancelled") == Stage.PROBLEM
