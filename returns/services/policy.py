"""The merchant's return policy and blocklist."""

from __future__ import annotations

import logging
from typing import Any

from returns.models import (
    ReturnBlocklistEntry,
    ReturnPolicy,
)
from returns.policy import (
    return_policy_get,
)
from returns.services.common import ReturnActionError
from shopapp.models import Shop

logger = logging.getLogger(__name__)


def return_policy_update(*, shop: Shop, **fields: Any) -> ReturnPolicy:
    policy = return_policy_get(shop=shop)
    allowed = {f.name for f in ReturnPolicy._meta.get_fields()} - {"id", "shop", "updated_at"}
    unknown = set(fields) - allowed
    if unknown:
        raise ValueError(f"unknown policy fields: {sorted(unknown)}")
    for name, value in fields.items():
        setattr(policy, name, value)
    policy.full_clean()
    policy.save()
    logger.info("returns.policy.updated", extra={"shop": shop.myshopify_domain})
    return policy


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
