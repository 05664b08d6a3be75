"""Control API for the store's life (devshop.simulation, devshop.returns): what a merchant or a
carrier would do, scriptable from tests, ``manage.py devshop_simulate`` and the demo.

    POST shops/<shop>/orders/<id>/fulfil           {"split"?, "carrier"?,
                                                   "line_items"?: [{"id", "quantity"}]}
    GET  shops/<shop>/orders/<id>/state            order, fulfillments, scans, returns
    POST shops/<shop>/orders/<id>/cancel           {"reason"?: "CUSTOMER"}
    POST shops/<shop>/fulfillments/<id>/events     {"status": "IN_TRANSIT", …} one scan, or
                                                   {"to": "DELIVERED"} every scan on the way
    GET  shops/<shop>/returns/<id>                 status, decline, money paid back or owed
    POST shops/<shop>/returns/<id>/<action>        approve | decline {"reason", "note"} |
                                                   process | cancel | close | reopen |
                                                   pay_exchange
    POST shops/<shop>/simulate/tick                one step of background life
    POST shops/<shop>/simulate/seed                {"orders": 36}
    GET|POST clock                                 {"speed"?, "offset_seconds"?}
"""

import json
from typing import Any

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from devshop.knobs import clock_now, knob_get, knob_set
from devshop.models import DevFulfillment, DevLineItem, DevOrder, DevReturn, DevShop


def _body(request: HttpRequest) -> dict[str, Any]:
    if not request.body:
        return {}
    data = json.loads(request.body)
    if not isinstance(data, dict):
        raise ValueError("body must be a JSON object")
    return data


def _error(message: str, status: int = 400) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


def _order(shop: str, order_id: int) -> DevOrder | None:
    return (
        DevOrder.objects.select_related("shop")
        .filter(shop__myshopify_domain=shop, shopify_id=order_id)
        .first()
    )


@csrf_exempt
@require_http_methods(["POST"])
def order_fulfil(request: HttpRequest, shop: str, order_id: int) -> JsonResponse:
    from devshop.simulation import SimulationError, dev_fulfillment_create, dev_order_fulfil

    order = _order(shop, order_id)
    if order is None:
        return _error("no such order", 404)
    try:
        data = _body(request)
        if data.get("line_items"):
            lines = []
            for row in data["line_items"]:
                item = DevLineItem.objects.filter(order=order, shopify_id=int(row["id"])).first()
                if item is None:
                    return _error(f"no line item {row['id']} on this order", 404)
                lines.append((item, int(row["quantity"])))
            fulfillments = [
                dev_fulfillment_create(order=order, lines=lines, carrier=data.get("carrier"))
            ]
        else:
            fulfillments = dev_order_fulfil(
                order=order, split=bool(data.get("split")), carrier=data.get("carrier")
            )
    except (SimulationError, ValueError, KeyError, TypeError) as exc:
        return _error(str(exc))
    return JsonResponse(
        {
            "fulfillments": [
                {
                    "id": f.shopify_id,
                    "name": f.name,
                    "tracking_company": f.tracking_company,
                    "tracking_numbers": f.tracking_numbers,
                    "tracking_urls": f.tracking_urls,
                }
                for f in fulfillments
            ]
        },
        status=201,
    )


@require_http_methods(["GET"])
def order_state_view(request: HttpRequest, shop: str, order_id: int) -> JsonResponse:
    from devshop.simulation import order_state

    order = _order(shop, order_id)
    if order is None:
        return _error("no such order", 404)
    return JsonResponse(order_state(order))


@csrf_exempt
@require_http_methods(["POST"])
def order_cancel(request: HttpRequest, shop: str, order_id: int) -> JsonResponse:
    from devshop.simulation import SimulationError, dev_order_cancel, order_state

    order = _order(shop, order_id)
    if order is None:
        return _error("no such order", 404)
    try:
        order = dev_order_cancel(order=order, reason=_body(request).get("reason", "CUSTOMER"))
    except (SimulationError, ValueError) as exc:
        return _error(str(exc))
    return JsonResponse(order_state(order))


@csrf_exempt
@require_http_methods(["POST"])
def order_refund(request: HttpRequest, shop: str, order_id: int) -> JsonResponse:
    """A refund the merchant makes in their admin without a return: {"line_items": [{"id":
    line item id, "quantity": n}]} takes n units off each line (currentQuantity), and the
    order's orders/updated goes out, as Shopify sends it after a refund."""
    from django.db import transaction

    from devshop.orders import dev_order_touch, dev_order_webhooks_emit
    from devshop.simulation import order_state

    order = _order(shop, order_id)
    if order is None:
        return _error("no such order", 404)
    wanted = _body(request).get("line_items")
    if not isinstance(wanted, list) or not wanted:
        return _error('give "line_items": [{"id", "quantity"}]')
    with transaction.atomic():
        lines = {line.shopify_id: line for line in order.line_items.select_for_update()}
        taken: dict[int, int] = {}
        for item in wanted:
            line = lines.get(item.get("id")) if isinstance(item, dict) else None
            quantity = item.get("quantity") if isinstance(item, dict) else None
            if line is None or not isinstance(quantity, int) or quantity <= 0:
                return _error("each line item needs a known id and a quantity above 0")
            taken[line.shopify_id] = taken.get(line.shopify_id, 0) + quantity
            if taken[line.shopify_id] > line.current_quantity:
                return _error(f"line item {line.shopify_id} has {line.current_quantity} left")
        # Checked whole before anything changes: a refused refund changes nothing.
        for shopify_id, quantity in taken.items():
            lines[shopify_id].current_quantity -= quantity
            lines[shopify_id].save(update_fields=["current_quantity"])
        dev_order_touch(order)
        order.save(update_fields=["updated_at"])
        dev_order_webhooks_emit(order=order, topics=["orders/updated"])
    return JsonResponse(order_state(order))


@csrf_exempt
@require_http_methods(["POST"])
def fulfillment_events(request: HttpRequest, shop: str, fulfillment_id: int) -> JsonResponse:
    from devshop.simulation import (
        SimulationError,
        dev_fulfillment_advance,
        dev_fulfillment_event_create,
    )

    fulfillment = DevFulfillment.objects.filter(
        order__shop__myshopify_domain=shop, shopify_id=fulfillment_id
    ).first()
    if fulfillment is None:
        return _error("no such fulfillment", 404)
    try:
        data = _body(request)
        if data.get("to"):
            events = dev_fulfillment_advance(fulfillment=fulfillment, to=str(data["to"]))
        elif data.get("status"):
            place_keys = ("address1", "city", "province", "country", "zip", "latitude", "longitude")
            place = {k: data[k] for k in place_keys if k in data} or None
            events = [
                dev_fulfillment_event_create(
                    fulfillment=fulfillment,
                    status=str(data["status"]),
                    message=data.get("message"),
                    place=place,
                )
            ]
        else:
            return _error("give a status (one scan) or to (every scan up to it)")
    except (SimulationError, ValueError) as exc:
        return _error(str(exc))
    fulfillment.refresh_from_db()
    return JsonResponse(
        {
            "fulfillment_id": fulfillment.shopify_id,
            "shipment_status": fulfillment.shipment_status or None,
            "events": [
                {"id": e.shopify_id, "status": e.status, "happened_at": e.happened_at.isoformat()}
                for e in events
            ],
        },
        status=201,
    )


@require_http_methods(["GET"])
def return_state_view(request: HttpRequest, shop: str, return_id: int) -> JsonResponse:
    """A return as the merchant sees it in their admin: its status, the decline, and the money
    returnProcess moved (refunded to the payment, issued as store credit, owed by the buyer
    for an exchange), which the Admin API only shows spread over refunds and transactions."""
    ret = DevReturn.objects.filter(shop__myshopify_domain=shop, shopify_id=return_id).first()
    if ret is None:
        return _error("no such return", 404)
    return JsonResponse(
        {
            "id": ret.shopify_id,
            "name": ret.name,
            "status": ret.status,
            "decline": {"reason": ret.decline_reason, "note": ret.decline_note}
            if ret.decline_reason
            else None,
            "refunded_amount": str(ret.refunded_amount),
            "store_credit_amount": str(ret.store_credit_amount),
            "exchange_amount_due": str(ret.exchange_amount_due),
        }
    )


@csrf_exempt
@require_http_methods(["POST"])
def return_action(request: HttpRequest, shop: str, return_id: int, action: str) -> JsonResponse:
    from devshop import returns

    ret = DevReturn.objects.filter(shop__myshopify_domain=shop, shopify_id=return_id).first()
    if ret is None:
        return _error("no such return", 404)
    data = _body(request)
    actions = {
        "approve": lambda: returns.dev_return_approve(ret=ret, notify_customer=True),
        "decline": lambda: returns.dev_return_decline(
            ret=ret, reason=data.get("reason", "OTHER"), note=data.get("note", "")
        ),
        "process": lambda: returns.dev_return_process(ret=ret, lines=None, refund=None),
        "cancel": lambda: returns.dev_return_cancel(ret=ret),
        "close": lambda: returns.dev_return_close(ret=ret),
        "reopen": lambda: returns.dev_return_reopen(ret=ret),
        # The buyer pays what a buyer-owes exchange left due (releases its fulfilment hold).
        "pay_exchange": lambda: returns.dev_exchange_payment_collect(ret=ret),
    }
    if action not in actions:
        return _error(f"unknown action; one of {', '.join(actions)}", 404)
    try:
        ret = actions[action]()
    except returns.ReturnInputError as exc:
        return _error(str(exc))
    return JsonResponse({"id": ret.shopify_id, "name": ret.name, "status": ret.status})


@csrf_exempt
@require_http_methods(["POST"])
def simulate_tick(request: HttpRequest, shop: str) -> JsonResponse:
    from devshop.simulation import DEMO_PACE, FAST_PACE, Pace, dev_simulate_tick

    found = DevShop.objects.filter(myshopify_domain=shop).first()
    if found is None:
        return _error("no such shop", 404)
    # {"pace": "demo"} or {"pace": {"scan_chance": …, "min_scan_gap_seconds": …,
    # "hold_seconds": …}}; nothing: every parcel may move every tick.
    try:
        wanted = _body(request).get("pace")
        if wanted is None:
            pace = FAST_PACE
        elif wanted == "demo":
            pace = DEMO_PACE
        elif isinstance(wanted, dict):
            pace = Pace(**{k: float(v) for k, v in wanted.items()})
        else:
            raise ValueError('pace is "demo" or an object of Pace fields')
    except (TypeError, ValueError) as exc:
        return _error(str(exc))
    return JsonResponse(dev_simulate_tick(shop=found, pace=pace))


@csrf_exempt
@require_http_methods(["POST"])
def simulate_seed(request: HttpRequest, shop: str) -> JsonResponse:
    from devshop.simulation import dev_simulate_seed

    found = DevShop.objects.filter(myshopify_domain=shop).first()
    if found is None:
        return _error("no such shop", 404)
    try:
        count = int(_body(request).get("orders", 36))
    except (TypeError, ValueError) as exc:
        return _error(str(exc))
    if not 1 <= count <= 500:
        return _error("orders must be between 1 and 500")
    return JsonResponse({"orders": dev_simulate_seed(shop=found, orders=count)}, status=201)


@csrf_exempt
@require_http_methods(["GET", "POST"])
def clock(request: HttpRequest) -> JsonResponse:
    """The simulated clock: {"now", "speed", "offset_seconds"}; POST sets speed and/or
    offset (the offset first, so a new speed runs from the new offset)."""
    if request.method == "POST":
        try:
            data = _body(request)
            if "offset_seconds" in data:
                knob_set("clock_offset_seconds", float(data["offset_seconds"]))
            if "speed" in data:
                knob_set("clock_speed", float(data["speed"]))
        except (TypeError, ValueError) as exc:
            return _error(str(exc))
    return JsonResponse(
        {
            "now": clock_now().replace(microsecond=0).isoformat(),
            "speed": float(knob_get("clock_speed")),
            "offset_seconds": float(knob_get("clock_offset_seconds")),
        }
    )
