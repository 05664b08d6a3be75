"""``python manage.py tracking_sample --shop <domain>``: one order to try the storefront with.

Prints, as JSON, an order a shopper could look up (its name and email), its signed tracking
link and the returns portal's URL, built exactly as the app builds them for its emails: the
demo prints them at start. It prefers an order with a delivered parcel (the portal can return
it) and waits for the order mirror to fill (``--wait``) when the store was seeded a moment ago.
"""

from __future__ import annotations

import json
import time

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Q

from shopapp.models import Order, Shop
from shopapp.storefront.links import order_page_url
from shopapp.storefront.pages import storefront_proxy_url
from tracking.models import Shipment, Stage

POLL_SECONDS = 1.0


def sample_order(shop: Shop) -> Order | None:
    """A live order with an email and a parcel: a delivered one first, then any shipped."""
    orders = Order.objects.filter(
        shop=shop, deleted_at__isnull=True, cancelled_at__isnull=True
    ).exclude(email="")
    for parcels in (Q(stage=Stage.DELIVERED), Q()):
        shipped = Shipment.objects.filter(parcels, shop=shop).values("order_id")
        found = orders.filter(pk__in=shipped).order_by("-shopify_created_at", "-id").first()
        if found is not None:
            return found
    return None


def sample_links(shop: Shop, order: Order) -> dict[str, str]:
    return {
        "order": order.name,
        "email": order.email,
        "tracking_url": order_page_url(shop=shop, order=order),
        "portal_url": storefront_proxy_url(shop, "returns"),
    }


class Command(BaseCommand):
    help = "Print an order to try the tracking page and returns portal with, and its links."

    def add_arguments(self, parser):
        parser.add_argument("--shop", required=True, help="the shop's myshopify domain")
        parser.add_argument(
            "--wait", type=float, default=0, help="seconds to wait for a shipped order"
        )

    def handle(self, *args, shop: str, wait: float, **options):
        found = Shop.objects.filter(myshopify_domain=shop, is_active=True).first()
        if found is None:
            raise CommandError(f"no installed shop {shop!r}")
        deadline = time.monotonic() + max(0.0, wait)
        while (order := sample_order(found)) is None:
            if time.monotonic() >= deadline:
                raise CommandError(f"{shop} has no shipped order with an email yet")
            time.sleep(POLL_SECONDS)
        self.stdout.write(json.dumps(sample_links(found, order)))
