"""Helpers of the storefront returns portal: its signed state, the status link, photo checks,
the guest lookup, and what the status page says.

    lookup ─▶ items ─▶ review ─▶ submit ─▶ status page (/proxy/returns/<token>)
       every step carries ``state``: a signed, dated token (shop, order, customer, nonce, and the
       shopper's choices so far), because Shopify's proxy strips cookies (no session, no CSRF
       cookie); the server keeps nothing between steps except uploaded photos, stashed under
       returns/pending/<shop id>/ and named, signed, in the state (those of a portal the
       shopper left are deleted hourly once older than RETURNS_PHOTO_STASH_TTL_HOURS).

    submit: the nonce is claimed once in Redis (SET NX), so the same form posted twice creates
    one request; eligibility is computed again, so a state signed an hour ago cannot return an
    item that has since been returned.

    items: a state can be posted again and again (a reload, a re-choice, a script), so the
    stash is bounded per order, not per state: every accepted post reserves its photos' bytes
    and count in the order's budget in Redis before a byte is written (refused beyond it,
    nothing stashed); photos a re-choice replaces or drops are deleted at once; and the step
    is rate-limited per client like the lookup.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

import redis
from django.conf import settings
from django.core import signing
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from returns import images
from returns.models import Resolution, ReturnPhoto, ReturnRequest
from returns.policy import reason_enum
from shopapp.models import Order, Shop
from shopapp.rawsql import row_fetch_one
from shopapp.storefront import ratelimit, storefront_proxy_url
from shopapp.storefront.lookup import storefront_orders

logger = logging.getLogger(__name__)

STATE_SALT = "returns.portal.state.v1"
STATUS_SALT = "returns.status.v1"
# A shopper choosing items, taking photos and reading the estimate may take a while; a state
# harvested from a shared computer dies the same day.
STATE_MAX_AGE_SECONDS = 2 * 60 * 60
# The status link goes out in emails and is opened until the refund lands, sometimes months
# later (exchanges of exchanges, late inspections): a bit over a year.
STATUS_LINK_MAX_AGE = timedelta(days=400)
# A claimed submission nonce outlives any state that could carry it.
SUBMISSION_CLAIM_SECONDS = STATE_MAX_AGE_SECONDS + 60
REDIS_TIMEOUT_SECONDS = 0.25

# Photos: the three formats every browser shows and phones produce once HEIC is converted by
# the browser's picker; 5 MB each is a full-resolution phone photo; 5 per item shows a defect.
PHOTO_MAX_BYTES = 5 * 1024 * 1024
PHOTOS_MAX_PER_ITEM = 5
PENDING_PHOTO_PREFIX = "returns/pending"
# Stashed photos of a portal the shopper left are deleted by an hourly job once older than
# RETURNS_PHOTO_STASH_TTL_HOURS, but never younger than this: a photo stashed at the items
# step can be submitted as long as the state signed with it lives, plus an hour for slack.
PHOTO_STASH_MIN_AGE = timedelta(seconds=STATE_MAX_AGE_SECONDS) + timedelta(hours=1)
# The most a portal POST may carry (photos of several items plus the form), checked on
# Content-Length before Django reads the body.
REQUEST_MAX_BYTES = 40 * 1024 * 1024
# ReturnRequestLineItemInput.customerNote: "Maximum length: 300" (shopify.dev, 2025-10).
NOTE_MAX_CHARS = 300
# What the stash may hold for one order of one shop while its photos can still be on disk.
# A real shopper attaches one to three phone photos (2-4 MB each) to one or two items. One
# full items post carries at most REQUEST_MAX_BYTES (40 MB), and four items with the full five
# photos each is 20 photos; three times that (a full submission and two complete re-choices)
# is never reached by a shopper, while a client posting one state again and again stops at
# 120 MB and 60 photos per order instead of a day's worth of 40 MB posts.
PHOTO_BUDGET_BYTES_PER_ORDER = 3 * REQUEST_MAX_BYTES
PHOTO_BUDGET_PHOTOS_PER_ORDER = 3 * 4 * PHOTOS_MAX_PER_ITEM
# Items posts per shop and client IP in the lookup limiter's window (15 minutes): choosing,
# correcting a field, going back and choosing again is a handful, twenty leaves room for a
# household behind one address; each post reads Shopify (eligibility) and may carry 40 MB.
ITEMS_RATE_PER_CLIENT = 20

# Statuses in which a request still holds its items.
OPEN_STATUSES = (
    ReturnRequest.Status.SUBMITTED,
    ReturnRequest.Status.REQUESTED,
    ReturnRequest.Status.OPEN,
)

# Shopify's ReturnReason enum (shopify.dev, admin-graphql enums/ReturnReason), in the order a
# shopper reads them (handles map onto them through returns.policy.reason_enum).
REASON_LABELS: dict[str, Any] = {
    "SIZE_TOO_SMALL": _("Size too small"),
    "SIZE_TOO_LARGE": _("Size too large"),
    "UNWANTED": _("Changed my mind"),
    "NOT_AS_DESCRIBED": _("Not as described"),
    "WRONG_ITEM": _("Received the wrong item"),
    "DEFECTIVE": _("Damaged or defective"),
    "STYLE": _("Style"),
    "COLOR": _("Colour"),
    "OTHER": _("Other"),
}
RESOLUTION_LABELS: dict[str, Any] = {
    Resolution.REFUND: _("Refund to the original payment"),
    Resolution.STORE_CREDIT: _("Store credit"),
    Resolution.EXCHANGE: _("Exchange for another size or colour"),
}
# The exchange's words when the policy also offers a different product.
EXCHANGE_ANY_LABEL = _("Exchange for something else")
# Shopify's ReturnDeclineReason, in words for the shopper.
DECLINE_REASON_LABELS: dict[str, Any] = {
    "FINAL_SALE": _("The item is final sale."),
    "RETURN_PERIOD_ENDED": _("The return period has ended."),
    "OTHER": _("The store couldn't accept this return."),
}


# ---------------------------------------------------------------------------------------------
# The state carried between steps


@dataclass
class SelectedItem:
    line_item_id: int
    quantity: int
    reason: str
    note: str = ""
    exchange_variant_id: int | None = None
    # The variant's title as Shopify showed it when chosen ("M / Blue"), for the review.
    exchange_variant_title: str = ""
    # Stashed photos: [{"name", "content_type", "size"}], names under the shop's pending folder.
    photos: list[dict[str, Any]] = field(default_factory=list)
    # Refund, store credit or exchange, for this item ("" in states signed before it was
    # chosen per item: the state's resolution then).
    resolution: str = ""
    # An exchange for a different product (returns.catalogue): its product, and the new
    # item's unit price as the catalogue showed it (a decimal string; checked again with
    # Shopify at submit). None and "" for another size or colour of the same product.
    exchange_product_id: int | None = None
    exchange_unit_price: str = ""


@dataclass
class PortalState:
    shop_id: int
    order_id: int
    # The logged-in customer who started without typing an email (None after a guest lookup):
    # later steps must come from the same customer.
    customer_id: int | None
    nonce: str
    items: list[SelectedItem] = field(default_factory=list)
    resolution: str = ""

    @classmethod
    def start(cls, *, shop: Shop, order: Order, customer_id: int | None) -> PortalState:
        return cls(
            shop_id=shop.pk, order_id=order.pk, customer_id=customer_id, nonce=secrets.token_hex(12)
        )


def state_dumps(state: PortalState) -> str:
    return signing.dumps(asdict(state), salt=STATE_SALT, compress=True)


def state_loads(token: str, *, shop: Shop, customer_id: int | None) -> PortalState | None:
    """The state in ``token`` if it is intact, fresh, for ``shop`` and (when it was started by
    a logged-in customer) for the same customer; else None."""
    if not token or len(token) > 20_000:
        return None
    try:
        raw = signing.loads(token, salt=STATE_SALT, max_age=STATE_MAX_AGE_SECONDS)
    except signing.BadSignature:
        # Expired and forged alike: the shopper starts again; nothing tells them which.
        logger.info("returns.portal.state_invalid", extra={"shop": shop.myshopify_domain})
        return None
    try:
        state = PortalState(
            shop_id=int(raw["shop_id"]),
            order_id=int(raw["order_id"]),
            customer_id=raw["customer_id"],
            nonce=str(raw["nonce"]),
            items=[SelectedItem(**item) for item in raw.get("items", [])],
            resolution=str(raw.get("resolution", "")),
        )
    except (KeyError, TypeError, ValueError):
        logger.warning("returns.portal.state_malformed", extra={"shop": shop.myshopify_domain})
        return None
    if state.shop_id != shop.pk:
        logger.warning("returns.portal.state_other_shop", extra={"shop": shop.myshopify_domain})
        return None
    if state.customer_id is not None and state.customer_id != customer_id:
        logger.warning("returns.portal.state_other_customer", extra={"shop": shop.myshopify_domain})
        return None
    return state


# ---------------------------------------------------------------------------------------------
# The status link


def return_status_token(return_request: ReturnRequest) -> str:
    """URL-safe, one path segment: shop id and request id, signed and dated."""
    return signing.dumps(
        [return_request.shop_id, return_request.pk], salt=STATUS_SALT, compress=False
    )


def return_id_from_status_token(token: str, *, shop: Shop) -> int | None:
    """The request id a status token names, if intact, fresh and for ``shop``; else None."""
    try:
        value = signing.loads(token, salt=STATUS_SALT, max_age=STATUS_LINK_MAX_AGE)
    except signing.BadSignature:
        logger.info("returns.status.link_invalid", extra={"shop": shop.myshopify_domain})
        return None
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not all(isinstance(part, int) for part in value)
    ):
        return None
    shop_id, return_id = value
    if shop_id != shop.pk:
        logger.warning("returns.status.link_other_shop", extra={"shop": shop.myshopify_domain})
        return None
    return return_id


def return_status_url(return_request: ReturnRequest, *, shop: Shop | None = None) -> str:
    """The storefront URL of a return's status page, for emails."""
    return storefront_proxy_url(
        shop or return_request.shop, f"returns/{return_status_token(return_request)}"
    )


# ---------------------------------------------------------------------------------------------
# Submission nonce: one request per state, whatever is posted twice


@lru_cache(maxsize=4)
def _redis(url: str) -> redis.Redis:
    return redis.Redis.from_url(
        url, socket_timeout=REDIS_TIMEOUT_SECONDS, socket_connect_timeout=REDIS_TIMEOUT_SECONDS
    )


def _claim_key(shop_id: int, nonce: str) -> str:
    return f"returns:submit:{shop_id}:{nonce}"


def submission_claim(*, shop_id: int, nonce: str) -> str | None:
    """Claim ``nonce`` for one submission. None when claimed now; otherwise what the earlier
    claim holds: "" while it is in flight, or the id of the request it created.

    Redis down: the claim is granted (fails open): the open-request check at submit still
    refuses the same items twice, so nothing is duplicated; only the message differs.
    """
    key = _claim_key(shop_id, nonce)
    try:
        conn = _redis(settings.REDIS_URL)
        if conn.set(key, "", ex=SUBMISSION_CLAIM_SECONDS, nx=True):
            return None
        previous = conn.get(key)
    except redis.RedisError as exc:
        logger.warning(
            "returns.portal.claim_unavailable",
            extra={"shop_id": shop_id, "error": type(exc).__name__},
        )
        return None
    return previous.decode() if isinstance(previous, bytes) else str(previous or "")


def submission_record(*, shop_id: int, nonce: str, return_request_id: int) -> None:
    try:
        _redis(settings.REDIS_URL).set(
            _claim_key(shop_id, nonce), str(return_request_id), ex=SUBMISSION_CLAIM_SECONDS
        )
    except redis.RedisError:
        logger.warning("returns.portal.claim_unavailable", extra={"shop_id": shop_id})


def submission_release(*, shop_id: int, nonce: str) -> None:
    """Give the nonce back after a refused submission, so the shopper can correct and retry."""
    try:
        _redis(settings.REDIS_URL).delete(_claim_key(shop_id, nonce))
    except redis.RedisError:
        logger.warning("returns.portal.claim_unavailable", extra={"shop_id": shop_id})


# ---------------------------------------------------------------------------------------------
# Photos


def photo_stash(*, shop: Shop, photo: images.CleanImage) -> dict:
    """Keep an accepted photo (already decoded and encoded afresh, see returns.images) until
    the request is submitted; returns its reference, kept in the signed portal state."""
    name = default_storage.save(
        f"{PENDING_PHOTO_PREFIX}/{shop.pk}/{uuid.uuid4().hex}.{photo.ext}",
        ContentFile(photo.content),
    )
    return {"name": name, "content_type": photo.content_type, "size": len(photo.content)}


def photo_is_stashed_for(ref: dict, *, shop: Shop) -> bool:
    name = str(ref.get("name", ""))
    return (
        name.startswith(f"{PENDING_PHOTO_PREFIX}/{shop.pk}/")
        and ".." not in name
        and default_storage.exists(name)
    )


def photo_open(ref: dict) -> UploadedFile:
    """A stashed photo as the submit service takes it: a file with its checked type and size."""
    handle = default_storage.open(ref["name"], "rb")
    return UploadedFile(
        file=handle,
        name=ref["name"].rsplit("/", 1)[-1],
        content_type=ref["content_type"],
        size=ref["size"],
    )


def photo_discard(refs: list[dict]) -> None:
    for ref in refs:
        try:
            default_storage.delete(ref["name"])
        except OSError:
            logger.warning("returns.portal.photo_discard_failed")


def photo_discard_dropped(
    *, shop: Shop, before: list[SelectedItem], after: list[SelectedItem]
) -> int:
    """Delete the stashed photos of ``before`` (the state posted) that ``after`` (the shopper's
    new choice) no longer holds: replaced by new photos, or on an item no longer returned.
    Nothing references them any more but the superseded state, so the hourly cron need not
    wait a day for them. Only names in the shop's own pending folder are touched."""
    kept = {str(ref.get("name", "")) for item in after for ref in item.photos}
    dropped = [
        ref
        for item in before
        for ref in item.photos
        if str(ref.get("name", "")) not in kept and photo_is_stashed_for(ref, shop=shop)
    ]
    photo_discard(dropped)
    return len(dropped)


def photo_stash_expire(*, max_age: timedelta) -> int:
    """Delete the stashed photos older than ``max_age`` (never less than PHOTO_STASH_MIN_AGE):
    those of portals the shopper left before submitting. Returns how many were deleted.

    Through the storage API only (listdir, get_modified_time, delete), so it works wherever
    ``default_storage`` keeps the stash. Safe to run twice or concurrently: a file already
    gone is skipped. A submit copies its photos out of the stash (ReturnPhoto, under
    returns/photos/) before discarding them; a ReturnPhoto naming a stashed file is kept anyway.
    """
    cutoff = timezone.now() - max(max_age, PHOTO_STASH_MIN_AGE)
    try:
        folders, _files = default_storage.listdir(PENDING_PHOTO_PREFIX)
    except FileNotFoundError:
        # Nothing was ever stashed (FileSystemStorage has no folder until the first photo).
        folders = []
    removed = sum(
        _photo_stash_expire_shop(shop_id=int(folder), cutoff=cutoff)
        for folder in sorted(folders)
        if folder.isdigit()
    )
    logger.info(
        "returns.portal.stash_expired",
        extra={"removed": removed, "cutoff": cutoff.isoformat(timespec="seconds")},
    )
    return removed


def _photo_stash_expire_shop(*, shop_id: int, cutoff: datetime) -> int:
    folder = f"{PENDING_PHOTO_PREFIX}/{shop_id}"
    try:
        _dirs, names = default_storage.listdir(folder)
    except FileNotFoundError:
        return 0
    attached = set(
        ReturnPhoto.objects.filter(shop_id=shop_id, image__startswith=f"{folder}/").values_list(
            "image", flat=True
        )
    )
    removed = removed_bytes = 0
    for name in sorted(names):
        path = f"{folder}/{name}"
        if path in attached:
            continue
        try:
            if default_storage.get_modified_time(path) >= cutoff:
                continue
            size = default_storage.size(path)
            default_storage.delete(path)
        except FileNotFoundError:
            # Submitted (and discarded) meanwhile, or removed by an overlapping run.
            continue
        except OSError as exc:
            # One unreadable file must not keep the rest of the stash forever.
            logger.warning(
                "returns.portal.stash_expire_failed",
                extra={"shop_id": shop_id, "photo": path, "error": type(exc).__name__},
            )
            continue
        removed += 1
        removed_bytes += size
    if removed:
        logger.info(
            "returns.portal.stash_removed",
            extra={"shop_id": shop_id, "photos": removed, "bytes": removed_bytes},
        )
    return removed


# ---------------------------------------------------------------------------------------------
# The stash's budget and the items step's rate limit

# Atomic check-and-add on one hash per order: the budget is never exceeded, even by posts
# racing each other. Refused: nothing is added and the seconds the budget still has to live
# come back for Retry-After. Accepted: the expiry slides, so the budget remembers a photo as
# long as the hourly cron may leave it on disk.
#   KEYS[1] the order's budget; ARGV bytes, photos, max bytes, max photos, seconds to live
_BUDGET_RESERVE_LUA = """
local used_bytes = tonumber(redis.call('HGET', KEYS[1], 'bytes') or '0')
local used_photos = tonumber(redis.call('HGET', KEYS[1], 'photos') or '0')
if used_bytes + tonumber(ARGV[1]) > tonumber(ARGV[3])
    or used_photos + tonumber(ARGV[2]) > tonumber(ARGV[4]) then
  return {0, redis.call('TTL', KEYS[1])}
end
redis.call('HINCRBY', KEYS[1], 'bytes', ARGV[1])
redis.call('HINCRBY', KEYS[1], 'photos', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return {1, 0}
"""


@dataclass(frozen=True)
class PhotoBudgetResult:
    allowed: bool
    # Seconds until the order's budget is forgotten (0 when allowed, or when waiting would
    # not help).
    retry_after: int = 0


def photo_budget_key(*, shop_id: int, order_id: int) -> str:
    return f"returns:stash:{shop_id}:{order_id}"


def photo_budget_seconds() -> int:
    """How long the budget remembers a stashed photo: the stash's lifetime (as the hourly
    cron job reads it, never less than PHOTO_STASH_MIN_AGE) plus the hour between its runs."""
    lifetime = max(timedelta(hours=settings.RETURNS_PHOTO_STASH_TTL_HOURS), PHOTO_STASH_MIN_AGE)
    return int((lifetime + timedelta(hours=1)).total_seconds())


@lru_cache(maxsize=4)
def _budget_script(url: str) -> Any:
    return _redis(url).register_script(_BUDGET_RESERVE_LUA)


def photo_budget_reserve(
    *, shop_id: int, order_id: int, photos: int, size: int
) -> PhotoBudgetResult:
    """Reserve ``photos`` photos of ``size`` bytes in all in the order's stash budget, before
    they are written; refused (nothing reserved) when they would take it past
    PHOTO_BUDGET_BYTES_PER_ORDER or PHOTO_BUDGET_PHOTOS_PER_ORDER.

    Redis down or slow: granted (fails open, like the lookup's rate limit), with a warning.
    Each post is still bounded by REQUEST_MAX_BYTES and the stash by the hourly cron job; a
    Redis blip must not stop shoppers attaching the photo a defective item needs.
    """
    if photos <= 0:
        return PhotoBudgetResult(allowed=True)
    try:
        allowed, ttl = _budget_script(settings.REDIS_URL)(
            keys=[photo_budget_key(shop_id=shop_id, order_id=order_id)],
            args=[
                size,
                photos,
                PHOTO_BUDGET_BYTES_PER_ORDER,
                PHOTO_BUDGET_PHOTOS_PER_ORDER,
                photo_budget_seconds(),
            ],
        )
    except redis.RedisError as exc:
        logger.warning(
            "returns.portal.photo_budget_unavailable",
            extra={"shop_id": shop_id, "error": type(exc).__name__},
        )
        return PhotoBudgetResult(allowed=True)
    if int(allowed):
        return PhotoBudgetResult(allowed=True)
    logger.warning(
        "returns.portal.photo_budget_exhausted",
        extra={"shop_id": shop_id, "order_id": order_id, "photos": photos, "bytes": size},
    )
    # No TTL (-2) when this post alone is more than a whole budget: no wait will help.
    return PhotoBudgetResult(allowed=False, retry_after=max(0, int(ttl)))


def items_rate_limit_hit(*, shop_id: int, client_ip: str) -> ratelimit.RateLimitResult:
    """Count one items post for this shop's client IP; refuse over ITEMS_RATE_PER_CLIENT in
    the lookup limiter's window. Its own counter (scope "returns-items"), so choosing items
    never spends the lookups a shopper has left, nor the other way round; the same fixed
    window, key shape and fail-open rule as the lookup (shopapp.storefront.ratelimit)."""
    try:
        result = ratelimit.rate_limit_hit(
            "returns-items",
            shop_id,
            ratelimit.address_subject(client_ip),
            ITEMS_RATE_PER_CLIENT,
            ratelimit.window_seconds(),
        )
    except redis.RedisError as exc:
        logger.warning(
            "returns.portal.items_rate_limit_unavailable",
            extra={"shop_id": shop_id, "error": type(exc).__name__},
        )
        return ratelimit.RateLimitResult(allowed=True)
    if not result.allowed:
        logger.warning("returns.portal.items_rate_limited", extra={"shop_id": shop_id})
    return result


# ---------------------------------------------------------------------------------------------
# Return labels

# What a label may be (returns.admin_forms.label_clean keeps PDFs and re-encoded images), told
# by its first bytes: (signature at offset 0, extension, content type).
_LABEL_SIGNATURES = (
    (b"%PDF-", "pdf", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "png", "image/png"),
    (b"\xff\xd8\xff", "jpg", "image/jpeg"),
)


def label_file_type(head: bytes) -> tuple[str, str]:
    """(extension, content type) of a label from its first bytes; WebP (RIFF….WEBP) too.
    Anything else is sent as bytes to save, never as a type it is not."""
    for signature, ext, content_type in _LABEL_SIGNATURES:
        if head.startswith(signature):
            return ext, content_type
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp", "image/webp"
    return "bin", "application/octet-stream"


# ---------------------------------------------------------------------------------------------
# Reads the portal needs


def portal_order_get(*, shop: Shop, order_id: int) -> Order | None:
    """The order a portal step names, if a storefront page may show it (as
    ``storefront_orders``: not deleted, not redacted). Plain SQL: every step reads it."""
    order = row_fetch_one(
        Order,
        '"shop_id" = %s AND "id" = %s AND "deleted_at" IS NULL AND "redacted_at" IS NULL',
        [shop.pk, order_id],
    )
    if order is not None:
        order.shop = shop  # the caller's instance: no second query for it
    return order


def customer_order_list(*, shop: Shop, customer_id: int, limit: int = 10) -> list[Order]:
    """A logged-in customer's recent orders: only ``Order.customer_id`` ties them, as Shopify
    signs ``logged_in_customer_id`` and that is all the signature proves."""
    return list(
        storefront_orders(shop)
        .filter(customer_id=customer_id, cancelled_at__isnull=True)
        .order_by("-shopify_created_at", "-id")[:limit]
    )


def reason_label(reason: str) -> Any:
    """The shopper's words for a policy reason (enum or handle), in the page's language."""
    code = reason_enum(reason)
    if code in REASON_LABELS and (code != "OTHER" or reason in ("OTHER", "other")):
        return REASON_LABELS[code]
    # A merchant's own ReturnReasonDefinition handle: its words, as the handle spells them.
    return reason.replace("-", " ").replace("_", " ").strip().capitalize()
