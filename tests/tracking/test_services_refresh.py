"""GraphQL refresh against the devshop over real HTTP: fulfillments, tracking, events and
estimates read back and applied; missed fulfillment webhooks repaired; the query's cost."""

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from shopapp.admin_api.client import AdminApiClient
from shopapp.models import Order, Shop
from shopapp.orders.reconcile import orders_reconcile
from tests.tracking.tracking_support import Announced
from tracking.jobs import shipment_refresh_job
from tracking.models import Shipment, Stage
from tracking.refresh import (
    EVENTS_FIRST,
    FULFILLMENT_LINE_ITEMS_FIRST,
    FULFILLMENTS_FIRST,
    ORDER_FULFILLMENTS_QUERY,
    order_shipments_refresh,
    shipments_reconcile,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def triggers():
    return Announced()


def _installed_shop(devshop) -> Shop:
    from shopapp.auth.tokens import shop_tokens_assign

    domain = f"trk-{uuid.uuid4().hex[:10]}.myshopify.com"
    devshop.client.shop_create(domain)
    grant = devshop.client.app_install_with_token(domain)
    now = timezone.now()
    shop = Shop(myshopify_domain=domain, is_active=True, installed_at=now)
    shop_tokens_assign(
        shop=shop,
        access_token=grant["access_token"],
        access_token_expires_at=now + timedelta(seconds=grant["expires_in"]),
        refresh_token=grant["refresh_token"],
        refresh_token_expires_at=now + timedelta(seconds=grant["refresh_token_expires_in"]),
    )
    shop.save()
    return shop


def _mirrored_order(devshop, shop) -> Order:
    [order_id] = devshop.client.orders_create(shop.myshopify_domain, count=1)
    orders_reconcile(shop=shop)
    return Order.objects.get(shop=shop, shopify_id=order_id)


def test_refresh_query_stays_under_shopifys_single_query_limit(devshop):
    shop = _installed_shop(devshop)
    order_id = devshop.client.orders_create(shop.myshopify_domain, count=1)[0]
    token = devshop.client.app_install_with_token(shop.myshopify_domain)["access_token"]
    client = AdminApiClient(shop.myshopify_domain, token)

    client.execute(
        ORDER_FULFILLMENTS_QUERY,
        {
            "id": f"gid://shopify/Order/{order_id}",
            "first": FULFILLMENTS_FIRST,
            "lineItemsFirst": FULFILLMENT_LINE_ITEMS_FIRST,
            "eventsFirst": EVENTS_FIRST,
        },
    )

    assert client.last_cost["requestedQueryCost"] <= 1000


def test_refresh_creates_missed_shipments_with_events_and_stage(devshop, triggers):
    # given an order mirrored here, shipped split per item in the store, whose fulfillment
    # webhooks never reached us
    shop = _installed_shop(devshop)
    triggers.listen(shop)
    order = _mirrored_order(devshop, shop)
    made = devshop.client.order_fulfil(shop.myshopify_domain, order.shopify_id, split=True)
    # (a fake order with a single line item ships in one part)
    assert made
    first_id = int(made[0]["id"])
    # explicit scans: fulfillment_advance may take a random branch on the way
    devshop.client.fulfillment_event(shop.myshopify_domain, first_id, "IN_TRANSIT")
    devshop.client.fulfillment_event(shop.myshopify_domain, first_id, "OUT_FOR_DELIVERY")

    # when the order's fulfillments are read through GraphQL
    read = order_shipments_refresh(shop=shop, order=order)

    # then each fulfillment is a shipment, the advanced one with its scans and stage
    assert read == len(made)
    shipments = {s.fulfillment_id: s for s in Shipment.objects.filter(shop=shop)}
    assert set(shipments) == {int(f["id"]) for f in made}
    first = shipments[first_id]
    assert first.stage == Stage.OUT_FOR_DELIVERY
    assert first.events.count() >= 2
    assert first.tracking_numbers
    assert first.refreshed_at is not None
    assert first.line_items.exists()
    assert "out_for_delivery" in triggers.triggers

    # and reading again changes nothing and triggers nothing
    calls = len(triggers.calls)
    order_shipments_refresh(shop=shop, order=order)
    assert len(triggers.calls) == calls


def test_periodic_reconcile_reads_orders_fulfilled_without_shipments(devshop, triggers):
    shop = _installed_shop(devshop)
    order = _mirrored_order(devshop, shop)
    devshop.client.order_fulfil(shop.myshopify_domain, order.shopify_id)
    orders_reconcile(shop=shop)  # the order now says fulfilled, no shipment here

    assert shipments_reconcile(shop=shop) == 1
    assert Shipment.objects.filter(shop=shop, order=order).count() == 1
    # just refreshed: the next run leaves it alone
    assert shipments_reconcile(shop=shop) == 0


def test_refresh_job_runs_through_redis(devshop, triggers, rq_worker):
    import django_rq

    shop = _installed_shop(devshop)
    order = _mirrored_order(devshop, shop)
    [made] = devshop.client.order_fulfil(shop.myshopify_domain, order.shopify_id)
    order_shipments_refresh(shop=shop, order=order)
    shipment = Shipment.objects.get(shop=shop)
    devshop.client.fulfillment_event(shop.myshopify_domain, int(made["id"]), "DELIVERED")

    django_rq.get_queue("syncs").enqueue(shipment_refresh_job, shipment.pk)
    rq_worker()

    shipment.refresh_from_db()
    assert shipment.stage == Stage.DELIVERED
    assert shipment.delivered_at is not None


def test_a_burst_of_fulfillment_updates_schedules_one_refresh_per_shipment(
    db, redis_conn, django_capture_on_commit_callbacks
):
    import django_rq
    from rq.registry import ScheduledJobRegistry

    from shopapp.models import Task
    from tests.shopapp.webhook_support import make_shop
    from tests.tracking.tracking_support import fulfil, order_create, scan

    # given a shipment whose webhooks lack the details (no estimate, no events yet)
    shop = make_shop("burst.myshopify.com")
    order = order_create(shop)

    # when five webhooks for it arrive back to back
    with django_capture_on_commit_callbacks(execute=True):
        shipment = fulfil(shop, order, fulfillment_id=91, shipment_status="confirmed")
        for status in ("in_transit", "in_transit", "out_for_delivery", "delivered"):
            scan(shop, shipment, status)
            fulfil(
                shop,
                order,
                fulfillment_id=91,
                shipment_status=status,
                updated_at=timezone.now() + timedelta(seconds=len(status)),
            )

    # then one GraphQL refresh is waiting for that shipment, not one per webhook: one task row
    # (the promise) and one job in RQ's scheduler (the hand-over)
    tasks = Task.objects.filter(key=f"tracking.refresh:{shipment.pk}")
    assert [(t.status, t.kwargs) for t in tasks] == [("pending", {"shipment_id": shipment.pk})]
    registry = ScheduledJobRegistry(queue=django_rq.get_queue("syncs"))
    assert len(registry.get_job_ids()) == 1
