"""Shopify's shipment statuses read as the few stages a shopper understands.

Shopify's status vocabularies are open sets that grow with API versions: REST
``Fulfillment.shipment_status`` (lower_snake), GraphQL ``FulfillmentEventStatus`` (UPPER_SNAKE;
``DELAYED`` arrived by 2025-01, ``CARRIER_PICKED_UP`` by 2025-10), the Customer API's unstable
additions and ``FulfillmentDisplayStatus``
(https://shopify.dev/docs/api/admin-graphql/latest/enums/FulfillmentEventStatus). We store the
strings as they come and only *read* them here, so a status we have never seen maps to a safe
stage instead of raising.

    ordered ─ shipped ─ in_transit ─ out_for_delivery ─ delivered      (the main line)
                           │               ├─ attempted_delivery      (branches, each hung
                           ├─ delayed      └─ ready_for_pickup         on a main-line step
                           └─ problem                                  for the progress bar)

``stage_resolve`` decides a shipment's current stage from all it knows, whatever the order
in which Shopify delivered the facts (see its docstring for the rules).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from tracking.models import Stage

# The main line, in the order a parcel travels it. The tracking page draws its progress bar
# over these five steps.
STAGE_PROGRESS: tuple[Stage, ...] = (
    Stage.ORDERED,
    Stage.SHIPPED,
    Stage.IN_TRANSIT,
    Stage.OUT_FOR_DELIVERY,
    Stage.DELIVERED,
)

# Side states; each hangs on the main-line step a shopper would see lit up beside it.
BRANCH_ANCHOR: dict[Stage, Stage] = {
    Stage.ATTEMPTED_DELIVERY: Stage.OUT_FOR_DELIVERY,
    Stage.READY_FOR_PICKUP: Stage.OUT_FOR_DELIVERY,
    Stage.DELAYED: Stage.IN_TRANSIT,
    Stage.PROBLEM: Stage.IN_TRANSIT,
}
BRANCH_STAGES: frozenset[Stage] = frozenset(BRANCH_ANCHOR)

# Translatable labels for the storefront (the model's choice labels are for the admin).
STAGE_LABELS: dict[Stage, str | Promise] = {
    Stage.ORDERED: _("Ordered"),
    Stage.SHIPPED: _("Shipped"),
    Stage.IN_TRANSIT: _("In transit"),
    Stage.OUT_FOR_DELIVERY: _("Out for delivery"),
    Stage.DELIVERED: _("Delivered"),
    Stage.ATTEMPTED_DELIVERY: _("Delivery attempted"),
    Stage.READY_FOR_PICKUP: _("Ready for pickup"),
    Stage.DELAYED: _("Delayed"),
    Stage.PROBLEM: _("Problem with delivery"),
}

# What one carrier event says, in the shopper's language, by Shopify's event status (finer
# than the stage: "label printed" and "picked up" are both "shipped"). Keys are normalised
# (lower_snake). An open set: a status not listed reads ``EVENT_STATUS_UNKNOWN_LABEL``, which
# claims nothing the carrier did not say.
EVENT_STATUS_LABELS: dict[str, str | Promise] = {
    "confirmed": _("Order confirmed by the carrier"),
    "label_printed": _("Shipping label created"),
    "label_purchased": _("Shipping label created"),
    "carrier_picked_up": _("Picked up by the carrier"),
    "in_transit": _("In transit"),
    "out_for_delivery": _("Out for delivery"),
    "attempted_delivery": _("Delivery attempted"),
    "ready_for_pickup": _("Ready for pickup"),
    "ready_for_recipient_pickup": _("Ready for pickup"),
    "picked_up": _("Picked up by you"),
    "delivered": _("Delivered"),
    "delayed": _("Delayed"),
    "failure": _("Delivery problem"),
    "not_delivered": _("Not delivered"),
    "buyer_action_required": _("Action needed from you"),
    "returning_to_sender": _("Returning to the sender"),
    "label_voided": _("Shipping label cancelled"),
}
EVENT_STATUS_UNKNOWN_LABEL: str | Promise = _("Tracking update")


def event_status_label(status: str | None) -> str | Promise:
    """The translatable wording of a fulfillment event's status; a neutral one when unknown."""
    return EVENT_STATUS_LABELS.get(_normalise(status), EVENT_STATUS_UNKNOWN_LABEL)


# Every spelling we know, lower-cased. REST shipment_status [1], GraphQL FulfillmentEventStatus
# [2], the Customer API's unstable additions [3] and FulfillmentDisplayStatus [4].
# [1] https://shopify.dev/docs/api/admin-rest/latest/resources/fulfillment
# [2] https://shopify.dev/docs/api/admin-graphql/latest/enums/FulfillmentEventStatus
# [3] https://shopify.dev/docs/api/customer/unstable/enums/FulfillmentEventStatus
# [4] https://shopify.dev/docs/api/admin-graphql/2025-10/enums/FulfillmentDisplayStatus
_STATUS_STAGE: dict[str, Stage] = {
    # A label exists, or the merchant confirmed the fulfillment: it has "shipped" as far as a
    # shopper can tell, even though no carrier has scanned it yet (that is the never-scanned
    # delay, not a separate stage).
    "confirmed": Stage.SHIPPED,
    "label_printed": Stage.SHIPPED,
    "label_purchased": Stage.SHIPPED,
    "fulfilled": Stage.SHIPPED,
    "marked_as_fulfilled": Stage.SHIPPED,
    "success": Stage.SHIPPED,
    "open": Stage.SHIPPED,
    # A fulfillment request sent to a warehouse or 3PL: nothing has left yet.
    "submitted": Stage.ORDERED,
    "pending": Stage.ORDERED,
    "carrier_picked_up": Stage.IN_TRANSIT,
    "in_transit": Stage.IN_TRANSIT,
    "out_for_delivery": Stage.OUT_FOR_DELIVERY,
    "delivered": Stage.DELIVERED,
    # Collected by the buyer at a pickup point: as done as delivered.
    "picked_up": Stage.DELIVERED,
    "attempted_delivery": Stage.ATTEMPTED_DELIVERY,
    "ready_for_pickup": Stage.READY_FOR_PICKUP,
    "ready_for_recipient_pickup": Stage.READY_FOR_PICKUP,
    "delayed": Stage.DELAYED,
    "failure": Stage.PROBLEM,
    "error": Stage.PROBLEM,
    "cancelled": Stage.PROBLEM,
    "canceled": Stage.PROBLEM,
    "label_voided": Stage.PROBLEM,
    "not_delivered": Stage.PROBLEM,
    "buyer_action_required": Stage.PROBLEM,
    "returning_to_sender": Stage.PROBLEM,
}

# A status nobody has taught us yet still comes from a fulfillment that exists: "shipped" is
# true and promises nothing further.
UNKNOWN_STATUS_STAGE = Stage.SHIPPED

# Fulfillment ``status`` values that void the shipment whatever its carrier says.
# https://shopify.dev/docs/api/admin-graphql/latest/enums/fulfillmentstatus
FULFILLMENT_FAILED_STATUSES = frozenset({"cancelled", "error", "failure"})


def _normalise(status: str | None) -> str:
    return (status or "").strip().lower().replace("-", "_").replace(" ", "_")


def status_is_known(status: str | None) -> bool:
    """True when ``status`` is a Shopify spelling this module knows."""
    return _normalise(status) in _STATUS_STAGE


def stage_for_status(status: str | None) -> Stage:
    """The stage for a shipment_status or fulfillment event status, in any case.

    ``None`` or empty means a fulfillment without carrier information yet: shipped.
    Unknown strings never raise; they read as ``UNKNOWN_STATUS_STAGE``.
    """
    key = _normalise(status)
    if not key:
        return Stage.SHIPPED
    return _STATUS_STAGE.get(key, UNKNOWN_STATUS_STAGE)


def stage_for_fulfillment(*, status: str | None, shipment_status: str | None) -> Stage:
    """A fulfillment's stage from its own two fields, before any event is considered."""
    if _normalise(status) in FULFILLMENT_FAILED_STATUSES:
        return Stage.PROBLEM
    return stage_for_status(shipment_status)


def _as_stage(stage: Stage | str) -> Stage:
    try:
        return Stage(stage)
    except ValueError:
        return UNKNOWN_STATUS_STAGE


def stage_position(stage: Stage | str) -> int:
    """Index of the lit main-line step (0 = ordered … 4 = delivered) for a progress bar.

    Branches answer their anchor's position; an unknown value answers "shipped".
    """
    value = _as_stage(stage)
    return STAGE_PROGRESS.index(BRANCH_ANCHOR.get(value, value))


def stage_is_branch(stage: Stage | str) -> bool:
    return _as_stage(stage) in BRANCH_STAGES


def stage_label(stage: Stage | str) -> str:
    return str(STAGE_LABELS[_as_stage(stage)])


@dataclass(frozen=True)
class StageSignal:
    """One dated fact about a shipment: a fulfillment event, or the fulfillment's own status."""

    stage: Stage
    happened_at: datetime | None
    # Tie-breaker between signals at the same instant: a later Shopify id is a later event.
    order_key: int = 0


def stage_resolve(
    *,
    fulfillment_status: str | None,
    shipment_status: str | None,
    events: Iterable[StageSignal],
    shipment_status_at: datetime | None = None,
) -> Stage:
    """The shipment's current stage from everything known, in any arrival order.

    Rules (Shopify delivers webhooks at least once and in no particular order, so the answer
    depends on the set of facts, never on which arrived last):

    1. A cancelled/error/failure fulfillment is a problem, whatever the carrier said.
    2. The main line never moves backwards: progress is the furthest main-line step any fact
       reached. A late ``in_transit`` scan after ``out_for_delivery`` changes nothing.
    3. Delivered is terminal, except for a PROBLEM event that happened *after* the delivery
       (carriers do correct a delivery scan: "returning to sender", "not delivered").
    4. Otherwise the newest fact decides between a branch (attempted delivery, ready for
       pickup, delayed, problem) and the main line; a newer main-line scan ends a branch.
    5. The fulfillment's ``shipment_status`` (Shopify sets it from the latest event) counts as
       a fact dated ``shipment_status_at`` (the fulfillment's updated_at); events win ties.
    """
    if _normalise(fulfillment_status) in FULFILLMENT_FAILED_STATUSES:
        return Stage.PROBLEM

    signals = list(events)
    if _normalise(shipment_status):
        signals.append(StageSignal(stage_for_status(shipment_status), shipment_status_at, -1))

    progress = stage_position(Stage.SHIPPED)
    delivered_at: datetime | None = None
    delivered_seen = False
    for signal in signals:
        if signal.stage in BRANCH_STAGES:
            continue
        progress = max(progress, stage_position(signal.stage))
        if signal.stage == Stage.DELIVERED:
            delivered_seen = True
            if signal.happened_at and (delivered_at is None or signal.happened_at > delivered_at):
                delivered_at = signal.happened_at
    # Only a submitted/pending fulfillment, nothing else: it has not left yet.
    if signals and all(s.stage == Stage.ORDERED for s in signals):
        progress = stage_position(Stage.ORDERED)

    dated = [s for s in signals if s.happened_at is not None]
    newest = max(dated, key=lambda s: (s.happened_at, s.order_key)) if dated else None
    if newest is None and signals:
        # Nothing dated (a bare fulfillment status): it is the newest fact we have.
        newest = signals[-1]

    if delivered_seen:
        if (
            newest is not None
            and newest.stage == Stage.PROBLEM
            and delivered_at is not None
            and newest.happened_at is not None
            and newest.happened_at > delivered_at
        ):
            return Stage.PROBLEM
        return Stage.DELIVERED
    if newest is not None and newest.stage in BRANCH_STAGES:
        return newest.stage
    return STAGE_PROGRESS[progress]
