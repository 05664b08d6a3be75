"""What notifications does when the platform tells it of a fact (shopapp.subscribers)."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from notifications.defaults import notification_defaults_install
from notifications.models import Message, Trigger
from notifications.news import OrderNews
from notifications.recipients import SkipReason
from notifications.triggers import notification_trigger
from shopapp.subscribers import OrderChanged, ShopInstalled, ShopUninstalled

# An order older than this when the app first sees it (the install's first reconciliation
# pulls weeks of orders) is no news to its shopper: no "thanks for your order" for it.
ORDER_CONFIRMED_MAX_AGE = timedelta(hours=24)


def order_changed(fact: OrderChanged) -> None:
    """A new order starts the "order confirmed" sequence (off by default: Shopify sends its
    own confirmation); a cancellation cancels what is pending and starts "order cancelled"."""
    order = fact.order
    placed_at = order.shopify_created_at or order.created_at
    is_fresh = placed_at is not None and placed_at >= timezone.now() - ORDER_CONFIRMED_MAX_AGE
    if fact.is_new and order.cancelled_at is None and is_fresh:
        notification_trigger(
            shop=fact.shop,
            order=order,
            trigger=Trigger.ORDER_CONFIRMED,
            news=OrderNews(happened_at=placed_at),
        )
    if fact.is_cancelled_now:
        order = fact.order
        notification_trigger(
            shop=fact.shop,
            order=order,
            trigger=Trigger.ORDER_CANCELLED,
            news=OrderNews(
                happened_at=order.cancelled_at or timezone.now(), reason=order.cancel_reason
            ),
        )


def shop_installed(fact: ShopInstalled) -> None:
    """The default sequences, once per shop; a reinstall leaves the merchant's edits alone."""
    notification_defaults_install(shop=fact.shop)


def shop_uninstalled(fact: ShopUninstalled) -> int:
    """Nothing more goes out for a shop that removed the app: what is scheduled is cancelled
    in one statement (a send in flight checks the shop again before the provider call)."""
    return Message.objects.filter(shop=fact.shop, status=Message.Status.SCHEDULED).update(
        status=Message.Status.CANCELLED,
        reason=SkipReason.SHOP_INACTIVE,
        updated_at=timezone.now(),
    )
