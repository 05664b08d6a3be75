"""Reverse logistics: the reverse fulfillment order, its dispositions, and reverse
deliveries (label and tracking).
"""

import logging
import uuid
from typing import Any

from django.db import transaction
from django.db.models import Sum

from devshop.models import (
    DevReturn,
    DevReverseDelivery,
    DevReverseDeliveryLineItem,
    DevReverseFulfillmentOrder,
    DevReverseFulfillmentOrderDisposition,
    DevReverseFulfillmentOrderLineItem,
)
from devshop.orders import dev_now
from devshop.payloads_returns import (
    reverse_delivery_payload,
    reverse_fulfillment_order_dispose_payload,
)
from devshop.returns.common import (
    Disposition,
    ReturnInputError,
    UserError,
    _emit,
    _fail,
    shop_location_id,
)
from devshop.webhooks import dev_webhook_emit

logger = logging.getLogger(__name__)


def _reverse_fulfillment_order_create(ret: DevReturn) -> DevReverseFulfillmentOrder | None:
    """One reverse fulfillment order for an OPEN return's lines (once)."""
    if ret.reverse_fulfillment_orders.exists():
        return None
    rfo = DevReverseFulfillmentOrder.objects.create(return_obj=ret, created_at=dev_now())
    for line in ret.return_line_items.all():
        DevReverseFulfillmentOrderLineItem.objects.create(
            reverse_fulfillment_order=rfo, return_line_item=line, total_quantity=line.quantity
        )
    return rfo


def _reverse_fulfillment_orders_close(ret: DevReturn) -> None:
    ret.reverse_fulfillment_orders.filter(status=DevReverseFulfillmentOrder.Status.OPEN).update(
        status=DevReverseFulfillmentOrder.Status.CLOSED
    )


def rfo_line_disposed_quantity(rfo_line: DevReverseFulfillmentOrderLineItem) -> int:
    return int(rfo_line.dispositions.aggregate(n=Sum("quantity"))["n"] or 0)


def _rfo_fully_disposed(rfo: DevReverseFulfillmentOrder) -> bool:
    return all(
        rfo_line_disposed_quantity(line) >= line.total_quantity for line in rfo.line_items.all()
    )


def _disposition_error(
    shop: Any,
    item: Disposition,
    rfo_line: DevReverseFulfillmentOrderLineItem,
    taken: dict[int, int],
) -> UserError | None:
    """What Shopify says is wrong with one disposition of a line it found, if anything;
    ``taken`` counts the units earlier dispositions of the same call claim."""
    path = list(item.path)
    rfo = rfo_line.reverse_fulfillment_order
    if rfo.status != DevReverseFulfillmentOrder.Status.OPEN:
        return UserError(
            [*path, "reverseFulfillmentOrderLineItemId"],
            f"The reverse fulfillment order is {rfo.status.lower()}.",
            "INVALID_STATE",
        )
    if item.type not in DevReverseFulfillmentOrderDisposition.Type.values:
        return UserError([*path, "dispositionType"], "Disposition type is invalid.", "INCLUSION")
    if item.quantity <= 0:
        return UserError([*path, "quantity"], "Quantity must be greater than 0.", "GREATER_THAN")
    taken[rfo_line.pk] = taken.get(rfo_line.pk, 0) + item.quantity
    left = rfo_line.total_quantity - rfo_line_disposed_quantity(rfo_line)
    if taken[rfo_line.pk] > left:
        return UserError(
            [*path, "quantity"],
            f"Quantity {taken[rfo_line.pk]} exceeds the quantity left to dispose ({left}).",
            "LESS_THAN_OR_EQUAL_TO",
        )
    restocked = item.type == DevReverseFulfillmentOrderDisposition.Type.RESTOCKED
    if restocked and item.location_id is None:
        return UserError([*path, "locationId"], "A location is required to restock items.", "BLANK")
    if item.location_id is not None and item.location_id != shop_location_id(shop):
        return UserError([*path, "locationId"], "Location not found.", "NOT_FOUND")
    return None


def _dispositions_check(
    shop: Any,
    dispositions: list[Disposition],
    errors: list[UserError],
    *,
    return_obj: DevReturn | None = None,
) -> list[tuple[DevReverseFulfillmentOrderLineItem, Disposition]]:
    """Validate dispositions (line exists in the shop, and in ``return_obj`` if given; its
    reverse fulfillment order is OPEN; quantity within what is left to dispose; RESTOCKED
    has the shop's location)."""
    planned = []
    taken: dict[int, int] = {}
    for item in dispositions:
        rfo_line = (
            DevReverseFulfillmentOrderLineItem.objects.select_related(
                "reverse_fulfillment_order__return_obj"
            )
            .filter(
                shopify_id=item.rfo_line_item_id,
                reverse_fulfillment_order__return_obj__shop=shop,
            )
            .first()
        )
        if rfo_line is None or (
            return_obj is not None
            and rfo_line.reverse_fulfillment_order.return_obj_id != return_obj.pk
        ):
            errors.append(
                UserError(
                    [*item.path, "reverseFulfillmentOrderLineItemId"],
                    "Reverse fulfillment order line item not found.",
                    "NOT_FOUND",
                )
            )
            continue
        error = _disposition_error(shop, item, rfo_line, taken)
        if error is not None:
            errors.append(error)
            continue
        planned.append((rfo_line, item))
    return planned


def _dispositions_apply(
    planned: list[tuple[DevReverseFulfillmentOrderLineItem, Disposition]],
) -> list[DevReverseFulfillmentOrderDisposition]:
    made = []
    now = dev_now()
    for rfo_line, item in planned:
        delivery_line = rfo_line.reverse_delivery_line_items.order_by("id").first()
        made.append(
            DevReverseFulfillmentOrderDisposition.objects.create(
                reverse_fulfillment_order_line_item=rfo_line,
                reverse_delivery_line_item=delivery_line,
                type=item.type,
                quantity=item.quantity,
                location_id=item.location_id,
                created_at=now,
            )
        )
    for rfo in {line.reverse_fulfillment_order for line, _ in planned}:
        if _rfo_fully_disposed(rfo):
            rfo.status = DevReverseFulfillmentOrder.Status.CLOSED
            rfo.save(update_fields=["status"])
    return made


def _dispositions_emit(
    shop: Any, made: list[DevReverseFulfillmentOrderDisposition], event_id: str
) -> None:
    by_rfo: dict[int, list[DevReverseFulfillmentOrderDisposition]] = {}
    rfos = {}
    for disposition in made:
        rfo = disposition.reverse_fulfillment_order_line_item.reverse_fulfillment_order
        rfos[rfo.pk] = rfo
        by_rfo.setdefault(rfo.pk, []).append(disposition)
    for pk, dispositions in by_rfo.items():
        dev_webhook_emit(
            shop=shop,
            topic="reverse_fulfillment_orders/dispose",
            payload=reverse_fulfillment_order_dispose_payload(rfos[pk], dispositions),
            event_id=event_id,
            triggered_at=dev_now(),
        )


@transaction.atomic
def dev_reverse_fulfillment_order_dispose(
    *, shop: Any, dispositions: list[Disposition]
) -> list[DevReverseFulfillmentOrderLineItem]:
    """reverseFulfillmentOrderDispose: what became of returned items (RESTOCKED at the
    location, NOT_RESTOCKED, PROCESSING_REQUIRED, MISSING). A reverse fulfillment order whose
    every unit is disposed is CLOSED. Fires reverse_fulfillment_orders/dispose per reverse
    fulfillment order, one event id for the action."""
    if not dispositions:
        raise _fail(["dispositionInputs"], "Disposition inputs can't be blank.", "BLANK")
    errors: list[UserError] = []
    planned = _dispositions_check(shop, dispositions, errors)
    if errors:
        raise ReturnInputError(errors)
    made = _dispositions_apply(planned)
    _dispositions_emit(shop, made, str(uuid.uuid4()))
    seen = []
    for line, _ in planned:
        if line not in seen:
            seen.append(line)
    return seen


def _carrier_from(url: str, number: str) -> str:
    """The carrier Shopify would recognise from a tracking URL's host (empty if none)."""
    from urllib.parse import urlsplit

    from devshop.simulation import CARRIERS

    host = urlsplit(url).hostname or "" if url else ""
    for carrier in CARRIERS.values():
        carrier_host = urlsplit(carrier.url_template).hostname or ""
        if host and carrier_host and host.endswith(carrier_host.removeprefix("www.")):
            return carrier.name
    return ""


def _label_resolve(shop: Any, file_url: str, errors: list[UserError], path: list[str]) -> str:
    """The public URL of a label given as labelInput.fileUrl: a staged upload on this store
    must belong to the shop and have received its file; another https URL is taken as is."""
    from devshop.staged_uploads import staged_upload_for_url

    if not file_url.startswith(("https://", "http://")):
        errors.append(UserError([*path, "fileUrl"], "File URL is invalid.", "INVALID"))
        return ""
    found, upload = staged_upload_for_url(file_url)
    if not found:
        return file_url
    if upload is None or upload.shop_id != shop.pk:
        errors.append(UserError([*path, "fileUrl"], "Staged upload not found.", "NOT_FOUND"))
        return ""
    if upload.uploaded_at is None:
        errors.append(
            UserError([*path, "fileUrl"], "The label file hasn't been uploaded.", "INVALID")
        )
        return ""
    from devshop.staged_uploads import staged_upload_resource_url

    return staged_upload_resource_url(upload)


def _deliverable_set(
    delivery: DevReverseDelivery, tracking: dict[str, Any] | None, label: str
) -> bool:
    changed = False
    if tracking:
        number = tracking.get("number") or ""
        url = tracking.get("url") or ""
        delivery.tracking_number = number
        delivery.tracking_url = url
        delivery.carrier_name = _carrier_from(url, number)
        changed = True
    if label:
        now = dev_now()
        delivery.label_file_url = label
        delivery.label_public_url = label
        delivery.label_created_at = delivery.label_created_at or now
        delivery.label_updated_at = now
        changed = True
    return changed


@transaction.atomic
def dev_reverse_delivery_create(
    *,
    rfo: DevReverseFulfillmentOrder,
    lines: list[tuple[int, int]],
    tracking: dict[str, Any] | None = None,
    label_file_url: str | None = None,
    notify_customer: bool = True,
) -> DevReverseDelivery:
    """reverseDeliveryCreateWithShipping: the buyer's parcel back, for ``lines``
    ([(reverse fulfillment order line item id, quantity)]; [] = every line, whole), with
    tracking ({"number", "url"}) and a label (a staged upload's URL). Fires
    reverse_deliveries/attach_deliverable when tracking or a label is attached."""
    rfo = (
        DevReverseFulfillmentOrder.objects.select_for_update()
        .select_related("return_obj__shop", "return_obj__order")
        .get(pk=rfo.pk)
    )
    shop = rfo.return_obj.shop
    errors: list[UserError] = []
    if rfo.status != DevReverseFulfillmentOrder.Status.OPEN:
        raise _fail(
            ["reverseFulfillmentOrderId"],
            f"The reverse fulfillment order is {rfo.status.lower()}.",
            "INVALID_STATE",
        )
    by_id = {line.shopify_id: line for line in rfo.line_items.all()}
    if not lines:
        lines = [(line.shopify_id, line.total_quantity) for line in by_id.values()]
    wanted: dict[int, int] = {}
    for index, (line_id, quantity) in enumerate(lines):
        path = ["reverseDeliveryLineItems", str(index)]
        line = by_id.get(line_id)
        if line is None:
            errors.append(
                UserError(
                    [*path, "reverseFulfillmentOrderLineItemId"],
                    "Reverse fulfillment order line item not found.",
                    "NOT_FOUND",
                )
            )
            continue
        if quantity <= 0:
            errors.append(
                UserError([*path, "quantity"], "Quantity must be greater than 0.", "GREATER_THAN")
            )
            continue
        wanted[line_id] = wanted.get(line_id, 0) + quantity
        if wanted[line_id] > line.total_quantity:
            errors.append(
                UserError(
                    [*path, "quantity"],
                    f"Quantity {wanted[line_id]} exceeds the line's quantity "
                    f"({line.total_quantity}).",
                    "LESS_THAN_OR_EQUAL_TO",
                )
            )
    label = _label_resolve(shop, label_file_url, errors, ["labelInput"]) if label_file_url else ""
    if errors:
        raise ReturnInputError(errors)
    delivery = DevReverseDelivery(reverse_fulfillment_order=rfo, created_at=dev_now())
    attached = _deliverable_set(delivery, tracking, label)
    delivery.save()
    for line_id, quantity in lines:
        DevReverseDeliveryLineItem.objects.create(
            reverse_delivery=delivery,
            reverse_fulfillment_order_line_item=by_id[line_id],
            quantity=quantity,
        )
    if attached:
        _emit(
            rfo.return_obj,
            "reverse_deliveries/attach_deliverable",
            reverse_delivery_payload(delivery),
            str(uuid.uuid4()),
        )
    return delivery


@transaction.atomic
def dev_reverse_delivery_shipping_update(
    *,
    delivery: DevReverseDelivery,
    tracking: dict[str, Any] | None = None,
    label_file_url: str | None = None,
    notify_customer: bool = True,
) -> DevReverseDelivery:
    """reverseDeliveryShippingUpdate: new tracking and/or label on a reverse delivery; fires
    reverse_deliveries/attach_deliverable."""
    delivery = (
        DevReverseDelivery.objects.select_for_update()
        .select_related("reverse_fulfillment_order__return_obj__shop")
        .get(pk=delivery.pk)
    )
    ret = delivery.reverse_fulfillment_order.return_obj
    errors: list[UserError] = []
    label = (
        _label_resolve(ret.shop, label_file_url, errors, ["labelInput"]) if label_file_url else ""
    )
    if not tracking and not label_file_url:
        errors.append(UserError(["trackingInput"], "Give tracking or a label.", "BLANK"))
    if errors:
        raise ReturnInputError(errors)
    _deliverable_set(delivery, tracking, label)
    delivery.save()
    _emit(
        ret,
        "reverse_deliveries/attach_deliverable",
        reverse_delivery_payload(delivery),
        str(uuid.uuid4()),
    )
    return delivery
