"""Who hears of the platform's facts: one table per fact, of dotted paths, read at a glance.

The platform (``shopapp``) imports no feature app. When it changes an order, installs or
uninstalls a shop, or erases a customer's or a shop's data, it tells the features through
these tables: each subscriber is called with one frozen fact, in table order, inside the
caller's transaction (an exception rolls the platform's change back with it, so the webhook
is retried whole). No Django signals: the calls are explicit and listed here.

    order_upsert ───────────── ORDER_CHANGED ─────▶ notifications (cancellation), returns
                                                      (a new order's product facts)
    shop_after_install ─────── SHOP_INSTALLED ────▶ notifications (default sequences)
    shop_uninstall ─────────── SHOP_UNINSTALLED ──▶ notifications (stop what is scheduled)
    customer_redact ────────── CUSTOMER_REDACTED ─▶ tracking, returns, notifications
    shop_redact ────────────── SHOP_REDACTED ─────▶ returns (files on disk), notifications;
                                                      the other rows cascade
    order_search_condition ─── ORDER_SEARCH ──────▶ tracking (numbers), returns (names)

A feature that stores a shopper's personal data must list its redactor in CUSTOMER_REDACTED:
tests/test_privacy_contract.py walks every model field and fails when one is left behind.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from django.utils.module_loading import import_string

from shopapp.models import Order, Shop
from shopapp.privacy.scrub import Needles

ORDER_CHANGED: tuple[str, ...] = (
    "notifications.subscribers.order_changed",
    "returns.subscribers.order_changed",
)
SHOP_INSTALLED: tuple[str, ...] = ("notifications.subscribers.shop_installed",)
SHOP_UNINSTALLED: tuple[str, ...] = ("notifications.subscribers.shop_uninstalled",)
CUSTOMER_REDACTED: tuple[str, ...] = (
    "tracking.privacy.customer_redact",
    "returns.services.privacy.customer_redact",
    "notifications.privacy.customer_redact",
)
# The admin's orders search asks each feature for the orders its own records match:
# ``fn(*, shop, query) -> list[int]`` (local order ids, a bounded list, one query).
ORDER_SEARCH: tuple[str, ...] = (
    "tracking.admin_selectors.order_ids_by_tracking_number",
    "returns.selectors.order_ids_by_return_name",
)
SHOP_REDACTED: tuple[str, ...] = (
    "returns.services.privacy.shop_redact",
    "notifications.privacy.shop_redact",
)


@dataclass(frozen=True)
class OrderChanged:
    """An order's mirror changed (webhook or reconciliation): new, updated or cancelled."""

    shop: Shop
    order: Order
    is_new: bool
    # This change cancelled it (it was not cancelled before).
    is_cancelled_now: bool
    source: str


@dataclass(frozen=True)
class ShopInstalled:
    shop: Shop


@dataclass(frozen=True)
class ShopUninstalled:
    shop: Shop


@dataclass(frozen=True)
class CustomerRedacted:
    """customers/redact: erase everything about this shopper.

    ``emails``, ``phones`` and ``names`` are what the platform knew of them before it erased
    its own rows (the payload's and the orders'): features look for these in free text.
    ``order_ids`` are the local ``Order`` ids, ``order_shopify_ids`` Shopify's.
    """

    shop: Shop
    customer_id: int | None
    emails: tuple[str, ...]
    phones: tuple[str, ...]
    names: tuple[str, ...]
    # The same, ready to find in free text in any spelling (shopapp.privacy.scrub).
    needles: Needles
    order_ids: tuple[int, ...]
    order_shopify_ids: tuple[int, ...]


@dataclass(frozen=True)
class ShopRedacted:
    """shop/redact, just before the shop's rows are deleted (they cascade)."""

    shop: Shop


@cache
def _resolve(path: str) -> Callable[[Any], Any]:
    return import_string(path)


def subscribers_notify(table: tuple[str, ...], fact: object) -> None:
    """Call every subscriber of ``table`` with ``fact``, in order, in the caller's transaction."""
    for path in table:
        _resolve(path)(fact)
