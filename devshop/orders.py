"""Creating and changing the store's data: realistic fake orders (Faker), order edits, and
installing the app directly with a token (for tests that don't exercise OAuth).

Every change sets ``updated_at``, as Shopify does, so that ``updated_at:>…`` searches and the
app's stale-update checks see it.
"""

import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.text import slugify
from faker import Faker

from devshop.knobs import clock_now
from devshop.models import (
    DevAccessToken,
    DevCustomer,
    DevLineItem,
    DevOrder,
    DevProduct,
    DevShop,
    DevVariant,
)
from devshop.tokens import dev_token_issue

CENT = Decimal("0.01")
# Shopify numbers a shop's orders from 1001 unless the merchant changes it.
FIRST_ORDER_NUMBER = 1001


@dataclass(frozen=True)
class Market:
    """Where a shopper lives: the Faker locale, the country, and what they pay in."""

    faker_locale: str
    customer_locale: str
    country: str
    country_code: str
    currency: str
    # Presentment units per USD, rough and fixed: the devshop has no FX feed.
    rate_per_usd: Decimal
    has_provinces: bool


MARKETS = [
    Market("en_US", "en", "United States", "US", "USD", Decimal("1"), True),
    Market("en_US", "en", "United States", "US", "USD", Decimal("1"), True),
    Market("en_CA", "en-CA", "Canada", "CA", "CAD", Decimal("1.36"), True),
    Market("en_GB", "en-GB", "United Kingdom", "GB", "GBP", Decimal("0.79"), False),
    Market("fr_FR", "fr", "France", "FR", "EUR", Decimal("0.92"), False),
    Market("de_DE", "de", "Germany", "DE", "EUR", Decimal("0.92"), False),
    Market("es_ES", "es", "Spain", "ES", "EUR", Decimal("0.92"), False),
    Market("en_AU", "en-AU", "Australia", "AU", "AUD", Decimal("1.52"), True),
]

PRODUCT_TYPES = {
    "Apparel": (["T-Shirt", "Hoodie", "Rain Jacket", "Wool Socks"], (18, 140)),
    "Home": (["Ceramic Mug", "Linen Throw", "Scented Candle", "Oak Cutting Board"], (12, 90)),
    "Outdoors": (["Trail Bottle", "Camp Lantern", "Daypack", "Hammock"], (15, 160)),
    "Beauty": (["Face Serum", "Lip Balm", "Bath Salts", "Hand Cream"], (8, 60)),
}
SIZES = ["XS", "S", "M", "L", "XL"]
COLOURS = ["Black", "Sand", "Forest", "Navy", "Rust"]
ADJECTIVES = ["Classic", "Everyday", "Organic", "Heritage", "Coastal", "Alpine"]
VENDORS = ["Northwind Goods", "Harbor & Pine", "Atelier Nord", "Fieldhouse"]

ORDER_FIELDS_SETTABLE = {
    "email",
    "phone",
    "customer_locale",
    "note",
    "tags",
    "test",
    "financial_status",
    "fulfillment_status",
    "cancel_reason",
    "buyer_accepts_marketing",
    "source_name",
}
ORDER_DATETIME_FIELDS = {"created_at", "updated_at", "processed_at", "cancelled_at", "closed_at"}


def _money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def dev_now() -> datetime:
    """Now on the store's simulated clock (knobs ``clock_speed``, ``clock_offset_seconds``),
    in whole seconds: Shopify's timestamps have second precision."""
    return clock_now().replace(microsecond=0)


def dev_order_touch(order: DevOrder) -> None:
    """Set ``updated_at`` for a change (unsaved). Strictly later than before, even within the
    same second: Shopify's timestamps have whole seconds, and the app (rightly) treats an
    equal ``updated_at`` as the state it already has."""
    order.updated_at = max(
        dev_now(), order.updated_at.replace(microsecond=0) + timedelta(seconds=1)
    )


def dev_order_webhooks_emit(
    *, order: DevOrder, topics: list[str], event_id: str | None = None
) -> str:
    """Queue the order's webhooks for one merchant action: every topic carries the same
    Order payload and the same X-Shopify-Event-Id (shopify.dev, webhooks: "unique ID shared
    across all deliveries from the same merchant action"). Returns the event id."""
    from devshop.payloads import order_payload
    from devshop.webhooks import dev_webhook_emit

    event_id = event_id or str(uuid.uuid4())
    payload = order_payload(order)
    triggered_at = dev_now()
    for topic in topics:
        dev_webhook_emit(
            shop=order.shop,
            topic=topic,
            payload=payload,
            event_id=event_id,
            triggered_at=triggered_at,
        )
    return event_id


def _parse_dt(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    parsed = parse_datetime(str(value))
    if parsed is None:
        raise ValueError(f"not an ISO 8601 datetime: {value!r}")
    if timezone.is_naive(parsed):
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def dev_app_install(*, shop: DevShop, expiring: bool = True) -> DevAccessToken:
    """Install the app on the shop with every scope it asks for, and issue it a token."""
    shop.app_installed = True
    shop.granted_scopes = settings.DEVSHOP_APP_SCOPES
    shop.installed_at = shop.installed_at or timezone.now()
    shop.save(update_fields=["app_installed", "granted_scopes", "installed_at"])
    return dev_token_issue(shop=shop, scope=shop.granted_scopes, expiring=expiring)


def dev_catalogue_ensure(*, shop: DevShop, fake: Faker, minimum: int = 8) -> list[DevVariant]:
    """The shop's variants, creating a small realistic catalogue the first time."""
    variants = list(DevVariant.objects.filter(product__shop=shop).select_related("product"))
    if len(variants) >= minimum:
        return variants
    for product_type, (names, (low, high)) in PRODUCT_TYPES.items():
        for base in names:
            title = f"{random.choice(ADJECTIVES)} {base}" if random.random() < 0.5 else base
            product = DevProduct.objects.create(
                shop=shop,
                title=title,
                handle=slugify(title) + f"-{random.randint(100, 999)}",
                vendor=random.choice(VENDORS),
                product_type=product_type,
                tags=", ".join(random.sample(["new", "bestseller", "gift", "eco", "sale"], 2)),
            )
            price = Decimal(random.randint(low, high)) - Decimal("0.01")
            options = (
                [f"{size} / {colour}" for size in SIZES[1:4] for colour in COLOURS[:2]]
                if product_type == "Apparel"
                else ["Default Title"]
            )
            for option in options:
                variants.append(
                    DevVariant.objects.create(
                        product=product,
                        title=option,
                        sku=f"{product_type[:3].upper()}-{random.randint(10000, 99999)}",
                        price=price,
                        requires_shipping=True,
                        grams=random.randint(80, 2500),
                    )
                )
    return variants


def _address(fake: Faker, market: Market, first_name: str, last_name: str) -> dict[str, Any]:
    province, province_code = None, None
    if market.has_provinces:
        if market.country_code == "CA":
            province, province_code = fake.province(), fake.province_abbr()
        else:
            province, province_code = fake.state(), fake.state_abbr()
    return {
        "first_name": first_name,
        "last_name": last_name,
        "name": f"{first_name} {last_name}",
        "company": None,
        "address1": fake.street_address(),
        "address2": None,
        "city": fake.city(),
        "province": province,
        "province_code": province_code,
        "country": market.country,
        "country_code": market.country_code,
        "zip": fake.postcode(),
        "phone": None,
    }


def _order_number_next(shop: DevShop) -> int:
    last = DevOrder.objects.filter(shop=shop).aggregate(n=Max("number"))["n"]
    return (last or FIRST_ORDER_NUMBER - 1) + 1


@transaction.atomic
def _line_items_create(
    *, order: DevOrder, variants: list[DevVariant], overrides: dict[str, Any]
) -> tuple[Decimal, Decimal]:
    """1–4 lines of the catalogue (or ``line_items``), some discounted; (subtotal, discounts)."""
    item_count = int(overrides.get("line_items", random.choices([1, 2, 3, 4], [5, 3, 2, 1])[0]))
    subtotal = Decimal("0")
    discounts = Decimal("0")
    # "line_item_product_type": only products of that type (e.g. "Apparel", the type with
    # sizes and colours), for tests that need a product with several variants.
    wanted_type = overrides.get("line_item_product_type")
    if wanted_type:
        variants = [v for v in variants if v.product.product_type == wanted_type] or variants
    for variant in random.sample(variants, k=min(item_count, len(variants))):
        # "line_item_quantity": every line of that many units (tests that count units).
        quantity = int(
            overrides.get("line_item_quantity") or random.choices([1, 2, 3], [7, 2, 1])[0]
        )
        discount = (
            _money(variant.price * quantity * Decimal("0.1")) if random.random() < 0.15 else 0
        )
        DevLineItem.objects.create(
            order=order,
            product=variant.product,
            variant=variant,
            title=variant.product.title,
            variant_title="" if variant.title == "Default Title" else variant.title,
            sku=variant.sku,
            vendor=variant.product.vendor,
            quantity=quantity,
            current_quantity=quantity,
            price=variant.price,
            total_discount=discount,
            # "requires_shipping": False makes a digital order (a gift card, a download).
            requires_shipping=bool(overrides.get("requires_shipping", variant.requires_shipping)),
        )
        subtotal += variant.price * quantity - discount
        discounts += discount
    return subtotal, discounts


def _customer_for(
    *, shop: DevShop, fake: Faker, market: Market, overrides: dict[str, Any]
) -> DevCustomer:
    """A returning customer now and then, else a new one in the market's language."""
    returning = DevCustomer.objects.filter(shop=shop).order_by("?").first()
    if returning is not None and random.random() < 0.2:
        return returning
    first_name, last_name = fake.first_name(), fake.last_name()
    return DevCustomer.objects.create(
        shop=shop,
        first_name=first_name,
        last_name=last_name,
        email=overrides.get("email")
        or f"{slugify(first_name)}.{slugify(last_name)}{random.randint(1, 999)}@example.com",
        phone=fake.numerify("+1555#######") if random.random() < 0.5 else "",
        locale=market.customer_locale,
    )


def dev_order_create_fake(*, shop: DevShop, overrides: dict[str, Any] | None = None) -> DevOrder:
    """One realistic order: a new or returning customer, 1–4 line items, taxes and shipping."""
    overrides = dict(overrides or {})
    market = MARKETS[random.randrange(len(MARKETS))]
    if "country_code" in overrides:
        market = next((m for m in MARKETS if m.country_code == overrides["country_code"]), market)
    fake = Faker(market.faker_locale)
    variants = dev_catalogue_ensure(shop=shop, fake=fake)

    customer = _customer_for(shop=shop, fake=fake, market=market, overrides=overrides)

    now = dev_now()
    number = _order_number_next(shop)
    shop_rate = next((m.rate_per_usd for m in MARKETS if m.currency == shop.currency_code), 1)
    exchange_rate = (market.rate_per_usd / Decimal(shop_rate)).quantize(Decimal("0.000001"))
    address = _address(fake, market, customer.first_name, customer.last_name)
    order = DevOrder(
        shop=shop,
        number=number,
        name=f"#{number}",
        email=customer.email,
        phone=customer.phone,
        customer=customer,
        customer_locale=market.customer_locale,
        buyer_accepts_marketing=random.random() < 0.4,
        currency=shop.currency_code,
        presentment_currency=market.currency,
        exchange_rate=exchange_rate,
        financial_status=random.choices(
            [DevOrder.FinancialStatus.PAID, DevOrder.FinancialStatus.AUTHORIZED],
            weights=[9, 1],
        )[0],
        fulfillment_status=DevOrder.FulfillmentStatus.UNFULFILLED,
        shipping_address=address,
        billing_address=address,
        tags=", ".join(random.sample(["vip", "wholesale", "first-order", "gift"], k=1))
        if random.random() < 0.3
        else "",
        created_at=now,
        updated_at=now,
        processed_at=now,
    )
    for key in ORDER_FIELDS_SETTABLE & overrides.keys():
        setattr(order, key, overrides[key])
    for key in ORDER_DATETIME_FIELDS & overrides.keys():
        setattr(order, key, _parse_dt(overrides[key]))
    order.save()

    subtotal, discounts = _line_items_create(order=order, variants=variants, overrides=overrides)
    order.subtotal_price = _money(subtotal)
    order.total_discounts = _money(discounts)
    order.total_shipping = Decimal("0") if subtotal > 100 else Decimal("7.95")
    order.total_tax = _money(subtotal * Decimal("0.08"))
    order.total_price = order.subtotal_price + order.total_shipping + order.total_tax
    order.save(
        update_fields=[
            "subtotal_price",
            "total_discounts",
            "total_shipping",
            "total_tax",
            "total_price",
        ]
    )
    # Shopify fires orders/create for every new order and orders/paid once it is paid in
    # full; a checkout paid at once fires both for the one action.
    topics = ["orders/create"]
    if order.financial_status == DevOrder.FinancialStatus.PAID:
        topics.append("orders/paid")
    dev_order_webhooks_emit(order=order, topics=topics)
    return order


def dev_orders_create_fake(
    *, shop: DevShop, count: int, overrides: dict[str, Any] | None = None
) -> list[DevOrder]:
    return [dev_order_create_fake(shop=shop, overrides=overrides) for _ in range(count)]


@transaction.atomic
def dev_order_update(*, order: DevOrder, fields: dict[str, Any]) -> DevOrder:
    """Change an order as a merchant would in their admin; bumps ``updated_at`` unless the
    caller sets it (tests reproducing an older or newer state)."""
    unknown = set(fields) - ORDER_FIELDS_SETTABLE - ORDER_DATETIME_FIELDS
    if unknown:
        raise ValueError(f"unknown order fields: {', '.join(sorted(unknown))}")
    was_paid = order.financial_status == DevOrder.FinancialStatus.PAID
    was_cancelled = order.cancelled_at is not None
    for key, value in fields.items():
        if key in ORDER_DATETIME_FIELDS:
            value = _parse_dt(value)
        setattr(order, key, value)
    if "updated_at" not in fields:
        dev_order_touch(order)
    order.full_clean(exclude=["shop", "customer"], validate_unique=False)
    order.save()
    topics = []
    if order.cancelled_at is not None and not was_cancelled:
        topics.append("orders/cancelled")
    if order.financial_status == DevOrder.FinancialStatus.PAID and not was_paid:
        topics.append("orders/paid")
    dev_order_webhooks_emit(order=order, topics=[*topics, "orders/updated"])
    return order
