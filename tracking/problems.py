"""Problems a shopper reports about an order: not received, damaged, wrong item.

    tracking page (shopper) ─┐
    order page (staff)  ─────┴─▶ problem_case_open ─▶ ProblemCase(open) + "problem.reported" line
    order page (staff) ─────────▶ problem_case_resolve ─▶ resolved + "problem.resolved" line

The tracking page's form (a later piece of work) calls ``problem_case_open`` with
``reported_by=SHOPPER``; the admin calls it on the shopper's behalf. Every case is a line on the
order's timeline, so support reads it with everything else.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from shopapp.models import Order, OrderEvent, Shop
from shopapp.orders.services import order_event_record
from tracking.models import ProblemCase, Shipment

# A shopper's account of a problem, not an essay: the same cap as a return's note, doubled.
DESCRIPTION_MAX_LENGTH = 2000


class ProblemRefused(ValueError):
    """Bad input for a problem case: nothing was stored. ``message`` is for the person."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


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
            summary=f"Problem reported: {case.get_kind_display()}",
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
            summary=f"Problem resolved: {case.get_kind_display()}",
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
