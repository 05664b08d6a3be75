"""The merchant's return policy and blocklist."""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction

from returns.catalogue import exchange_catalogue_drop
from returns.models import (
    ReturnBlocklistEntry,
    ReturnPolicy,
)
from returns.policy import (
    return_policy_get,
)
from returns.services.common import ReturnActionError
from shopapp.background.queue import Queues
from shopapp.background.services import task_defer
from shopapp.models import Shop

logger = logging.getLogger(__name__)


def return_policy_update(*, shop: Shop, **fields: Any) -> ReturnPolicy:
    """Save the policy. Turning "exchange for a different product" on reads the catalogue at
    once (a task on the syncs queue) rather than at the next hourly round; turning it off
    drops the kept catalogue, so no portal page offers it again (returns.catalogue)."""
    policy = return_policy_get(shop=shop)
    allowed = {f.name for f in ReturnPolicy._meta.get_fields()} - {"id", "shop", "updated_at"}
    unknown = set(fields) - allowed
    if unknown:
        raise ValueError(f"unknown policy fields: {sorted(unknown)}")
    offered_before = policy.allow_product_exchange
    for name, value in fields.items():
        setattr(policy, name, value)
    policy.full_clean()
    with transaction.atomic():
        policy.save()
        if policy.allow_product_exchange and not offered_before:
            exchange_catalogue_refresh_defer(shop=shop)
        elif offered_before and not policy.allow_product_exchange:
            transaction.on_commit(lambda: exchange_catalogue_drop(shop=shop))
    logger.info("returns.policy.updated", extra={"shop": shop.myshopify_domain})
    return policy


def exchange_catalogue_refresh_defer(*, shop: Shop) -> None:
    """One catalogue read for the shop, on the syncs queue after commit (one pending)."""
    from returns.jobs import CATALOGUE_RETRY_INTERVALS_S, exchange_catalogue_refresh_job

    task_defer(
        exchange_catalogue_refresh_job,
        shop=shop,
        kwargs={"shop_id": shop.pk},
        key=f"returns.catalogue:{shop.pk}",
        queue=Queues.SYNCS,
        retry_intervals_s=CATALOGUE_RETRY_INTERVALS_S,
    )


def blocklist_entry_add(*, shop: Shop, email: str, note: str = "") -> ReturnBlocklistEntry:
    email = (email or "").strip().lower()
    if "@" not in email or len(email) > 255:
        raise ReturnActionError("Enter an email address.", code="email")
    entry, _created = ReturnBlocklistEntry.objects.get_or_create(
        shop=shop, email=email, defaults={"note": (note or "")[:255]}
    )
    return entry


def blocklist_entry_remove(*, shop: Shop, entry_id: int) -> bool:
    deleted, _ = ReturnBlocklistEntry.objects.filter(shop=shop, pk=entry_id).delete()
    return bool(deleted)
