"""Problems a shopper reports about an order: not received, damaged, wrong item.

    tracking page (shopper) ─┐
    order page (staff)  ─────┴─▶ problem_case_open ─▶ ProblemCase(open) + "problem.reported" line
    order page (staff) ─────────▶ problem_case_resolve ─▶ resolved + "problem.resolved" line

The tracking page's form calls ``problem_report_from_shopper``, which opens the case with
``reported_by=SHOPPER`` (once per parcel and kind while a case is open: a double submit or a
reload finds the open case) and announces it to notifications (trigger ``problem_reported``:
the shopper's confirmation and the alert to the shop's support inbox, each one message per
case). The admin calls ``problem_case_open`` on the shopper's behalf. Every case is a line on
the order's timeline, so support reads it with everything else.

What a shopper may report, per parcel (``problem_kinds_for``):

    delivered                                  not received, damaged, wrong item
    late: delayed, a carrier problem, a failed  not received
      delivery attempt, an open delay, or the
      estimate's day passed
    on its way and on time, or not shipped     nothing (the page says where it is)

"Not received" once the carrier says delivered is the most common claim (porch theft, a
neighbour); before that it only makes sense when the parcel is late. Damage and a wrong item
can only be seen once the parcel is in hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone, translation

from notifications.news import ProblemNews
from notifications.services import notification_trigger
from shopapp.models import Order, OrderEvent, Shop
from shopapp.orders.services import order_event_record
from tracking.models import Delay, ProblemCase, Shipment, Stage

# A shopper's account of a problem, not an essay: the same cap as a return's note, doubled.
DESCRIPTION_MAX_LENGTH = 2000


class ProblemRefused(ValueError):
    """Bad input for a problem case: nothing was stored. ``message`` is for the person."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _kind_stored(case: ProblemCase) -> str:
    """The kind's words as the timeline stores them: English whatever the request's language
    (the kinds' labels are translated for display; shopapp.support.timeline reads the
    stored summary)."""
    with translation.override("en"):
        return str(case.get_kind_display())


def problem_case_open(
    *,
    shop: Shop,
    order: Order,
    kind: str,
    reported_by: str,
    description: str = "",
    shipment_id: int | None = None,
    user_id: str = "",
) -> ProblemCase:
    """Open a case on ``order`` (one of ``shop``'s) and write its timeline line.

    ``shipment_id`` (local id) must be a shipment of this order when given. Raises
    ProblemRefused for an unknown kind or reporter, another shop's order or shipment, or a
    description that is too long; nothing is stored then.
    """
    if order.shop_id != shop.pk:
        raise ProblemRefused("This order does not belong to the shop.")
    if kind not in ProblemCase.Kind.values:
        raise ProblemRefused("Choose what went wrong: not received, damaged or wrong item.")
    if reported_by not in ProblemCase.Reporter.values:
        raise ProblemRefused("Unknown reporter.")
    description = description.strip()
    if len(description) > DESCRIPTION_MAX_LENGTH:
        raise ProblemRefused(
            f"Describe the problem in at most {DESCRIPTION_MAX_LENGTH} characters."
        )
    shipment = None
    if shipment_id is not None:
        shipment = Shipment.objects.filter(shop=shop, order=order, pk=shipment_id).first()
        if shipment is None:
            raise ProblemRefused("That shipment is not part of this order.")
    with transaction.atomic():
        case = ProblemCase.objects.create(
            shop=shop,
            order=order,
            shipment=shipment,
            kind=kind,
            reported_by=reported_by,
            description=description,
            opened_by_user_id=user_id[:64],
        )
        order_event_record(
            shop=shop,
            order=order,
            kind="problem.reported",
            occurred_at=case.created_at,
            source=(
                OrderEvent.Source.SHOPPER
                if reported_by == ProblemCase.Reporter.SHOPPER
                else OrderEvent.Source.STAFF
            ),
            summary=f"Problem reported: {_kind_stored(case)}",
            detail={
                "problem_id": case.pk,
                "problem_kind": kind,
                "reported_by": reported_by,
                "user_id": user_id[:64],
                "description": description,
                "shipment_id": shipment.pk if shipment else None,
                "fulfillment_id": shipment.fulfillment_id if shipment else None,
            },
            dedupe_key=f"problem:{case.pk}:reported",
        )
    return case


# Stages off the main line that mean the parcel is late or stuck.
_LATE_STAGES = frozenset({Stage.DELAYED, Stage.PROBLEM, Stage.ATTEMPTED_DELIVERY})
_AFTER_DELIVERY = (
    ProblemCase.Kind.NOT_RECEIVED,
    ProblemCase.Kind.DAMAGED,
    ProblemCase.Kind.WRONG_ITEM,
)


def problem_kinds_for(
    shipment: Shipment, *, has_open_delay: bool, today: date | None = None
) -> tuple[str, ...]:
    """What a shopper may report about ``shipment`` (see the module's table)."""
    if shipment.stage == Stage.DELIVERED:
        return tuple(str(kind) for kind in _AFTER_DELIVERY)
    today = today or timezone.localdate()
    estimate = shipment.estimated_delivery_at
    is_late = (
        shipment.stage in _LATE_STAGES
        or has_open_delay
        or (estimate is not None and timezone.localdate(estimate) < today)
    )
    return (str(ProblemCase.Kind.NOT_RECEIVED),) if is_late else ()


@dataclass(frozen=True)
class ProblemReported:
    case: ProblemCase
    # False when an open case for the same parcel and kind already existed (nothing new).
    is_new: bool


def problem_report_from_shopper(
    *, shop: Shop, order: Order, shipment_id: int, kind: str, description: str = ""
) -> ProblemReported:
    """A shopper's report from the tracking page about one parcel of ``order``.

    Refused (ProblemRefused, nothing stored) for another order's or shop's parcel, a kind the
    parcel does not allow now (``problem_kinds_for``), a cancelled order, or what
    ``problem_case_open`` refuses. An open case for the same parcel and kind is answered as is
    (a double submit, a second tab): one case, one timeline line, one pair of messages.
    """
    if order.shop_id != shop.pk:
        raise ProblemRefused("This order does not belong to the shop.")
    if kind not in ProblemCase.Kind.values:
        raise ProblemRefused("Choose what went wrong: not received, damaged or wrong item.")
    if len(description.strip()) > DESCRIPTION_MAX_LENGTH:
        raise ProblemRefused(
            f"Describe the problem in at most {DESCRIPTION_MAX_LENGTH} characters."
        )
    with transaction.atomic():
        # The order's row lock serialises two submits of the same report (and tracking's own
        # writes to the order), so the "already open?" check below holds until commit.
        locked = Order.objects.select_for_update().filter(shop=shop, pk=order.pk).first()
        if locked is None or locked.deleted_at is not None:
            raise ProblemRefused("This order does not belong to the shop.")
        shipment = Shipment.objects.filter(shop=shop, order=locked, pk=shipment_id).first()
        if shipment is None:
            raise ProblemRefused("That shipment is not part of this order.")
        if locked.cancelled_at is not None:
            raise ProblemRefused("This order was cancelled.")
        has_open_delay = Delay.objects.filter(
            shop=shop, shipment=shipment, resolved_at__isnull=True
        ).exists()
        if kind not in problem_kinds_for(shipment, has_open_delay=has_open_delay):
            raise ProblemRefused("This problem can't be reported for this shipment yet.")
        existing = (
            ProblemCase.objects.filter(
                shop=shop,
                order=locked,
                shipment=shipment,
                kind=kind,
                status=ProblemCase.Status.OPEN,
            )
            .order_by("id")
            .first()
        )
        if existing is not None:
            return ProblemReported(case=existing, is_new=False)
        case = problem_case_open(
            shop=shop,
            order=locked,
            kind=kind,
            reported_by=ProblemCase.Reporter.SHOPPER,
            description=description,
            shipment_id=shipment.pk,
        )
        notification_trigger(
            shop=shop,
            order=locked,
            trigger="problem_reported",
            news=ProblemNews(
                problem_id=case.pk,
                kind=kind,
                happened_at=case.created_at,
                description=case.description,
                fulfillment_id=shipment.fulfillment_id,
                carrier=shipment.tracking_company or "",
                tracking_numbers=tuple(str(n) for n in shipment.tracking_numbers or ()),
            ),
        )
    return ProblemReported(case=case, is_new=True)


def problem_cases_open_for_page(*, shop: Shop, order: Order) -> list[ProblemCase]:
    """The order's open cases the shopper reported, oldest first (what the page shows)."""
    return list(
        ProblemCase.objects.filter(shop=shop, order=order, status=ProblemCase.Status.OPEN).order_by(
            "created_at", "id"
        )
    )


def problem_case_resolve(
    *, shop: Shop, case_id: int, user_id: str, note: str = ""
) -> ProblemCase | None:
    """Mark one of ``shop``'s cases resolved (once: resolving a resolved case changes nothing).
    Returns the case, or None when the shop has no such case."""
    note = note.strip()
    if len(note) > DESCRIPTION_MAX_LENGTH:
        raise ProblemRefused(f"Keep the note under {DESCRIPTION_MAX_LENGTH} characters.")
    with transaction.atomic():
        case = (
            ProblemCase.objects.select_for_update()
            .select_related("order")
            .filter(shop=shop, pk=case_id)
            .first()
        )
        if case is None:
            return None
        if case.status == ProblemCase.Status.RESOLVED:
            return case
        case.status = ProblemCase.Status.RESOLVED
        case.resolved_at = timezone.now()
        case.resolved_by_user_id = user_id[:64]
        case.resolution_note = note
        case.save(update_fields=["status", "resolved_at", "resolved_by_user_id", "resolution_note"])
        order_event_record(
            shop=shop,
            order=case.order,
            kind="problem.resolved",
            occurred_at=case.resolved_at,
            source=OrderEvent.Source.STAFF,
            summary=f"Problem resolved: {_kind_stored(case)}",
            detail={
                "problem_id": case.pk,
                "problem_kind": case.kind,
                "user_id": user_id[:64],
                "note": note,
                "shipment_id": case.shipment_id,
            },
            dedupe_key=f"problem:{case.pk}:resolved",
        )
    return case


def problem_case_list(*, shop: Shop, order: Order) -> QuerySet[ProblemCase]:
    """The order's cases, open ones first, newest first."""
    return (
        ProblemCase.objects.filter(shop=shop, order=order)
        .select_related("shipment")
        .order_by("status", "-created_at", "-id")
    )
