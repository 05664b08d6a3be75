"""Reading fulfillments back through GraphQL, when a webhook lacks detail or went missing.

    shipment_refresh_job ─ order_shipments_refresh: the order's fulfillments with their
        tracking, events and estimates ─ each applied like a webhook (upsert, events,
        recompute) under the order's lock
    shipments_reconcile_job (cron, every 10 min): in-flight shipments not read for an hour

The Admin API call happens outside any transaction; what it returns is applied in one.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Exists, Min, OuterRef, Q
from django.utils import timezone

from shopapp.admin_api.client import admin_client_for_shop
from shopapp.models import Order, OrderEvent, Shop
from shopapp.orders.reconcile import legacy_id
from shopapp.orders.services import parse_shopify_datetime
from shopapp.payloads import payload_int as _int
from tracking.common import lower
from tracking.models import Shipment, Stage
from tracking.recompute import shipment_recompute
from tracking.services import shipment_upsert, tracking_event_insert
from tracking.stages import FULFILLMENT_FAILED_STATUSES

logger = logging.getLogger(__name__)


# Requested cost (shopify.dev "GraphQL Admin API rate limits": object 1, connection
# 2 + first × item): per fulfillment 1 + trackingInfo 5 + fulfillmentLineItems 2 + 20 × 2
# + events 2 + 50 = ~100; fulfillments(first: 8) ~ 800 + the order, under the 1,000-point
# single-query limit (a test measures it against the devshop).
FULFILLMENTS_FIRST = 8
FULFILLMENT_LINE_ITEMS_FIRST = 20
EVENTS_FIRST = 50

ORDER_FULFILLMENTS_QUERY = """
query TrackingOrderFulfillments(
  $id: ID!, $first: Int!, $lineItemsFirst: Int!, $eventsFirst: Int!
) {
  order(id: $id) {
    id
    fulfillments(first: $first) {
      id
      legacyResourceId
      name
      status
      displayStatus
      createdAt
      updatedAt
      estimatedDeliveryAt
      inTransitAt
      deliveredAt
      trackingInfo(first: 5) { company number url }
      fulfillmentLineItems(first: $lineItemsFirst) {
        nodes { quantity lineItem { id } }
      }
      events(first: $eventsFirst, sortKey: HAPPENED_AT, reverse: true) {
        nodes {
          id
          status
          happenedAt
          message
          city
          province
          country
          zip
          estimatedDeliveryAt
        }
      }
    }
  }
}
"""

# FulfillmentDisplayStatus values that are also shipment_status / event statuses: those may
# stand in for REST's shipment_status, which GraphQL's Fulfillment does not have.
_EVENT_STATUSES = frozenset(
    {
        "attempted_delivery",
        "carrier_picked_up",
        "confirmed",
        "delayed",
        "delivered",
        "failure",
        "in_transit",
        "label_printed",
        "label_purchased",
        "out_for_delivery",
        "ready_for_pickup",
    }
)


def fulfillment_payload_from_graphql(node: dict[str, Any], *, order_id: int) -> dict[str, Any]:
    """A GraphQL ``Fulfillment`` node in the REST webhook's shape (one upsert for both)."""
    tracking = [t for t in node.get("trackingInfo") or [] if t]
    display = lower(node.get("displayStatus"))
    return {
        "id": _int(node.get("legacyResourceId")) or legacy_id(node.get("id")),
        "admin_graphql_api_id": node.get("id"),
        "order_id": order_id,
        "name": node.get("name"),
        "status": lower(node.get("status")),
        "shipment_status": display if display in _EVENT_STATUSES else None,
        "tracking_company": next((t.get("company") for t in tracking if t.get("company")), None),
        "tracking_numbers": [t["number"] for t in tracking if t.get("number")],
        "tracking_urls": [t["url"] for t in tracking if t.get("url")],
        "created_at": node.get("createdAt"),
        "updated_at": node.get("updatedAt"),
        "line_items": [
            {"id": legacy_id((item.get("lineItem") or {}).get("id")), "quantity": item["quantity"]}
            for item in (node.get("fulfillmentLineItems") or {}).get("nodes") or []
            if item.get("quantity") is not None
        ],
    }


def fulfillment_event_payload_from_graphql(
    node: dict[str, Any], *, fulfillment_id: int
) -> dict[str, Any]:
    return {
        "id": legacy_id(node.get("id")),
        "fulfillment_id": fulfillment_id,
        "status": lower(node.get("status")),
        "happened_at": node.get("happenedAt"),
        "message": node.get("message"),
        "city": node.get("city"),
        "province": node.get("province"),
        "country": node.get("country"),
        "zip": node.get("zip"),
        "estimated_delivery_at": node.get("estimatedDeliveryAt"),
    }


def order_shipments_refresh(*, shop: Shop, order: Order, client: Any = None) -> int:
    """Read the order's fulfillments (tracking, events, estimates) through GraphQL and apply
    them: missing shipments are created, missing events added, stages recomputed. Returns how
    many fulfillments were read. The call happens outside any transaction."""
    client = client or admin_client_for_shop(shop)
    gid = order.admin_graphql_api_id or f"gid://shopify/Order/{order.shopify_id}"
    data = client.execute(
        ORDER_FULFILLMENTS_QUERY,
        {
            "id": gid,
            "first": FULFILLMENTS_FIRST,
            "lineItemsFirst": FULFILLMENT_LINE_ITEMS_FIRST,
            "eventsFirst": EVENTS_FIRST,
        },
    )
    nodes = ((data or {}).get("order") or {}).get("fulfillments") or []
    now = timezone.now()
    for node in nodes:
        _fulfillment_node_apply(shop=shop, order_pk=order.pk, node=node, received_at=now)
    # Shipments Shopify did not return (beyond the first page) still count as read, so the
    # in-flight refresh moves on to others.
    Shipment.objects.filter(shop=shop, order_id=order.pk, refreshed_at__isnull=True).update(
        refreshed_at=now
    )
    logger.info(
        "tracking.refresh.done",
        extra={
            "shop": shop.myshopify_domain,
            "order_id": order.shopify_id,
            "fulfillments": len(nodes),
        },
    )
    return len(nodes)


def _fulfillment_node_apply(
    *, shop: Shop, order_pk: int, node: dict[str, Any], received_at: datetime
) -> None:
    source = OrderEvent.Source.RECONCILIATION
    with transaction.atomic():
        order = Order.objects.select_for_update().get(shop=shop, pk=order_pk)
        payload = fulfillment_payload_from_graphql(node, order_id=order.shopify_id)
        if payload["id"] is None:
            return
        shipment, _created, _changed = shipment_upsert(shop=shop, order=order, payload=payload)
        display = lower(node.get("displayStatus"))[:64]
        if display:
            shipment.display_status = display
        for field, key in (("in_transit_at", "inTransitAt"), ("delivered_at", "deliveredAt")):
            value = parse_shopify_datetime(node.get(key))
            if value is not None:
                setattr(shipment, field, value)
        shipment.refreshed_at = received_at
        shipment.save()
        events = ((node.get("events") or {}).get("nodes")) or []
        for event_node in events:
            tracking_event_insert(
                shop=shop,
                shipment=shipment,
                payload=fulfillment_event_payload_from_graphql(
                    event_node, fulfillment_id=shipment.fulfillment_id
                ),
                received_at=received_at,
            )
        shipment_recompute(
            shop=shop,
            order=order,
            shipment=shipment,
            source=source,
            received_at=received_at,
            estimate_override=parse_shopify_datetime(node.get("estimatedDeliveryAt")),
        )


def shipment_refresh(*, shipment: Shipment, client: Any = None) -> int:
    """Refresh one shipment (with the rest of its order's fulfillments)."""
    return order_shipments_refresh(shop=shipment.shop, order=shipment.order, client=client)


# Shipments still moving that the periodic refresh re-reads: not delivered or voided, touched
# in the last 30 days (AfterShip and ParcelPanel "expire" trackers after 30 days too), not
# read in the last hour. At most this many orders per shop and run keeps one run's GraphQL
# spend bounded (~800 points each, the client waits out throttling).
IN_FLIGHT_WINDOW = timedelta(days=30)
IN_FLIGHT_MIN_REFRESH_AGE = timedelta(hours=1)
IN_FLIGHT_ORDERS_PER_RUN = 25


def shipments_reconcile(*, shop: Shop, client: Any = None, now: datetime | None = None) -> int:
    """Repair missed fulfillment webhooks: re-read in-flight shipments, and the fulfillments
    of orders Shopify calls (partially) fulfilled that have no shipment here. Returns how
    many orders were read."""
    now = now or timezone.now()
    in_flight = Shipment.objects.filter(
        shop=shop,
        order=OuterRef("pk"),
        updated_at__gte=now - IN_FLIGHT_WINDOW,
    ).exclude(Q(stage=Stage.DELIVERED) | Q(status__in=FULFILLMENT_FAILED_STATUSES))
    due = in_flight.filter(
        Q(refreshed_at__isnull=True) | Q(refreshed_at__lt=now - IN_FLIGHT_MIN_REFRESH_AGE)
    )
    any_shipment = Shipment.objects.filter(shop=shop, order=OuterRef("pk"))
    orders = list(
        Order.objects.filter(shop=shop, deleted_at__isnull=True)
        .filter(
            Q(Exists(due))
            | Q(
                ~Exists(any_shipment),
                fulfillment_status__in=["fulfilled", "partial"],
                shopify_updated_at__gte=now - IN_FLIGHT_WINDOW,
            )
        )
        .annotate(oldest_refresh=Min("shipments__refreshed_at"))
        .order_by("oldest_refresh", "pk")[:IN_FLIGHT_ORDERS_PER_RUN]
    )
    for order in orders:
        order_shipments_refresh(shop=shop, order=order, client=client)
    logger.info(
        "tracking.reconcile.done", extra={"shop": shop.myshopify_domain, "orders": len(orders)}
    )
    return len(orders)
