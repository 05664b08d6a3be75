"""Resolvers for schema.graphql, one map per GraphQL type over the devshop's models.

Fields without an entry resolve by name (``createdAt`` → ``created_at``) through
``default_resolver``. Every root resolver scopes by the shop the token belongs to.
Global IDs are spelled as Shopify spells them: ``gid://shopify/<Type>/<numeric id>``.
"""

import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from django.db.models import Sum
from graphql import GraphQLError, GraphQLResolveInfo, is_non_null_type

from devshop.cdn import product_image, product_image_src
from devshop.graphql.pagination import connection
from devshop.graphql.search import orders_search_q, products_search_q
from devshop.models import (
    DevCustomer,
    DevFulfillment,
    DevFulfillmentEvent,
    DevFulfillmentLineItem,
    DevLineItem,
    DevOrder,
    DevProduct,
    DevReturn,
    DevReturnLineItem,
    DevShop,
    DevVariant,
)

Resolver = Callable[..., Any]
GID = re.compile(r"^gid://shopify/(?P<type>\w+)/(?P<id>\d+)(\?.*)?$")
# Currencies without minor units (ISO 4217), presented as whole amounts.
ZERO_DECIMAL_CURRENCIES = {"JPY", "KRW", "VND", "CLP", "ISK"}

ORDER_SORT_FIELDS = {
    "CREATED_AT": "created_at",
    "ID": "shopify_id",
    "ORDER_NUMBER": "number",
    "PROCESSED_AT": "processed_at",
    "RELEVANCE": "shopify_id",
    "TOTAL_PRICE": "total_price",
    "UPDATED_AT": "updated_at",
}


def gid(type_name: str, numeric_id: int) -> str:
    return f"gid://shopify/{type_name}/{numeric_id}"


def gid_parse(value: str, expected_type: str) -> int | None:
    match = GID.match(value or "")
    if match is None:
        raise GraphQLError(f"Invalid global id '{value}'")
    if match.group("type") != expected_type:
        return None
    return int(match.group("id"))


def _shop(info: GraphQLResolveInfo) -> DevShop:
    return info.context["shop"]


def _camel_to_snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def default_resolver(source: Any, info: GraphQLResolveInfo, **_: Any) -> Any:
    """Dict keys as named in the schema; model attributes in snake_case. An empty string
    on a nullable field is null, as Shopify answers for what was never set."""
    if isinstance(source, dict):
        value = source.get(info.field_name)
    else:
        value = getattr(source, _camel_to_snake(info.field_name), None)
    if value == "" and not is_non_null_type(info.return_type):
        return None
    return value


def _money(amount: Decimal, currency: str) -> dict[str, Any]:
    exponent = Decimal("1") if currency in ZERO_DECIMAL_CURRENCIES else Decimal("0.01")
    return {"amount": Decimal(amount).quantize(exponent), "currencyCode": currency}


def money_bag(amount: Decimal | None, order: DevOrder) -> dict[str, Any] | None:
    if amount is None:
        return None
    return {
        "shopMoney": _money(amount, order.currency),
        "presentmentMoney": _money(amount * order.exchange_rate, order.presentment_currency),
    }


def _mailing_address(address: dict | None, owner_id: int) -> dict[str, Any] | None:
    if not address:
        return None
    return {
        "id": gid("MailingAddress", owner_id) + "?model_name=Address",
        "address1": address.get("address1"),
        "address2": address.get("address2"),
        "city": address.get("city"),
        "company": address.get("company"),
        "country": address.get("country"),
        "countryCodeV2": address.get("country_code"),
        "firstName": address.get("first_name"),
        "lastName": address.get("last_name"),
        "name": address.get("name"),
        "phone": address.get("phone"),
        "province": address.get("province"),
        "provinceCode": address.get("province_code"),
        "zip": address.get("zip"),
    }


def _tags(value: str) -> list[str]:
    return [t.strip() for t in (value or "").split(",") if t.strip()]


# -- QueryRoot --------------------------------------------------------------------------------


def resolve_order(_: Any, info: GraphQLResolveInfo, id: str) -> DevOrder | None:  # noqa: A002
    numeric = gid_parse(id, "Order")
    if numeric is None:
        return None
    return DevOrder.objects.filter(shop=_shop(info), shopify_id=numeric).first()


def resolve_product(_: Any, info: GraphQLResolveInfo, id: str) -> DevProduct | None:  # noqa: A002
    numeric = gid_parse(id, "Product")
    if numeric is None:
        return None
    return DevProduct.objects.filter(shop=_shop(info), shopify_id=numeric).first()


PRODUCT_SORT_FIELDS = {
    "CREATED_AT": "created_at",
    "ID": "shopify_id",
    "TITLE": "title",
    "UPDATED_AT": "updated_at",
}


def resolve_products(
    _: Any,
    info: GraphQLResolveInfo,
    sortKey: str = "ID",  # noqa: N803 - GraphQL argument names
    query: str | None = None,
    reverse: bool = False,
    first: int | None = None,
    after: str | None = None,
    last: int | None = None,
    before: str | None = None,
    **_ignored: Any,
) -> dict[str, Any]:
    qs = DevProduct.objects.filter(shop=_shop(info)).filter(products_search_q(query))
    return connection(
        qs,
        sort_field=PRODUCT_SORT_FIELDS[sortKey],
        first=first,
        after=after,
        last=last,
        before=before,
        reverse=reverse,
    )


def _online_store_url(product: DevProduct, info: GraphQLResolveInfo) -> str | None:
    # Shopify: the product's page on the online store, null unless it is published there.
    if product.status != "ACTIVE":
        return None
    return f"https://{_shop(info).myshopify_domain}/products/{product.handle}"


def _price_range(product: DevProduct, info: GraphQLResolveInfo) -> dict[str, Any]:
    prices = [v.price for v in DevVariant.objects.filter(product=product)] or [Decimal("0")]
    currency = _shop(info).currency_code
    return {
        "minVariantPrice": _money(min(prices), currency),
        "maxVariantPrice": _money(max(prices), currency),
    }


def resolve_product_variant(
    _: Any,
    info: GraphQLResolveInfo,
    id: str,  # noqa: A002
) -> DevVariant | None:
    numeric = gid_parse(id, "ProductVariant")
    if numeric is None:
        return None
    return (
        DevVariant.objects.select_related("product")
        .filter(product__shop=_shop(info), shopify_id=numeric)
        .first()
    )


def resolve_orders(
    _: Any,
    info: GraphQLResolveInfo,
    sortKey: str = "ID",  # noqa: N803 - GraphQL argument names
    query: str | None = None,
    reverse: bool = False,
    first: int | None = None,
    after: str | None = None,
    last: int | None = None,
    before: str | None = None,
    **_ignored: Any,
) -> dict[str, Any]:
    qs = (
        DevOrder.objects.filter(shop=_shop(info))
        .filter(orders_search_q(query))
        .select_related("customer")
    )
    return connection(
        qs,
        sort_field=ORDER_SORT_FIELDS[sortKey],
        first=first,
        after=after,
        last=last,
        before=before,
        reverse=reverse,
    )


def _shop_plan(shop: DevShop, _: GraphQLResolveInfo) -> dict[str, Any]:
    return {
        "displayName": {"plus": "Shopify Plus", "advanced": "Advanced"}.get(
            shop.plan, shop.plan.replace("_", " ").title()
        ),
        "partnerDevelopment": shop.plan == "partner_test",
        "shopifyPlus": shop.plan == "plus",
    }


# -- Product ----------------------------------------------------------------------------------


def _variants(product: DevProduct, _: GraphQLResolveInfo, **args: Any) -> dict[str, Any]:
    # Shopify lists a product's variants by position; the devshop creates them in that order.
    return connection(
        DevVariant.objects.filter(product=product).select_related("product"),
        sort_field="id",
        **args,
    )


# -- Order ------------------------------------------------------------------------------------


def _line_items(order: DevOrder, _: GraphQLResolveInfo, **args: Any) -> dict[str, Any]:
    return connection(DevLineItem.objects.filter(order=order), sort_field="id", **args)


def _fulfillments(order: DevOrder, _: GraphQLResolveInfo, first: int | None = None) -> list:
    qs = DevFulfillment.objects.filter(order=order).order_by("created_at", "id")
    return list(qs[:first] if first is not None else qs)


# "API versions earlier than 2026-10 are unchanged and continue to return UNFULFILLED for these
# orders" (shopify.dev changelog, OrderDisplayFulfillmentStatus … FULFILLMENT_NOT_REQUIRED).
FULFILLMENT_NOT_REQUIRED_SINCE = "2026-10"


def _display_fulfillment_status(order: DevOrder, info: GraphQLResolveInfo) -> str:
    status = order.fulfillment_status
    version = str(info.context.get("api_version") or "unstable")  # "unstable" sorts last
    if status == DevOrder.FulfillmentStatus.FULFILLMENT_NOT_REQUIRED and (
        version < FULFILLMENT_NOT_REQUIRED_SINCE
    ):
        return DevOrder.FulfillmentStatus.UNFULFILLED
    return status


def _status_page_url(order: DevOrder, _: GraphQLResolveInfo) -> str:
    return f"https://{order.shop.myshopify_domain}/{order.shop.shopify_id}/orders/{order.shopify_id}/authenticate"


# -- LineItem ---------------------------------------------------------------------------------


def _fulfilled_quantity(item: DevLineItem) -> int:
    total = (
        DevFulfillmentLineItem.objects.filter(line_item=item)
        .exclude(fulfillment__status__in=["CANCELLED", "ERROR", "FAILURE"])
        .aggregate(n=Sum("quantity"))["n"]
    )
    return int(total or 0)


def _line_item_name(item: DevLineItem, _: GraphQLResolveInfo) -> str:
    return f"{item.title} - {item.variant_title}" if item.variant_title else item.title


# -- Fulfillment ------------------------------------------------------------------------------


def _tracking_info(f: DevFulfillment, _: GraphQLResolveInfo, first: int | None = None) -> list:
    numbers = list(f.tracking_numbers or [])
    urls = list(f.tracking_urls or [])
    infos = [
        {
            "company": f.tracking_company or None,
            "number": number,
            "url": urls[i] if i < len(urls) else None,
        }
        for i, number in enumerate(numbers)
    ]
    return infos[:first] if first is not None else infos


def _fulfillment_line_items(f: DevFulfillment, _: GraphQLResolveInfo, **args: Any) -> dict:
    qs = DevFulfillmentLineItem.objects.filter(fulfillment=f).select_related("line_item")
    return connection(qs, sort_field="id", **args)


def _events(
    f: DevFulfillment,
    _: GraphQLResolveInfo,
    sortKey: str = "ID",  # noqa: N803
    **args: Any,
) -> dict:
    sort_field = "happened_at" if sortKey == "HAPPENED_AT" else "shopify_id"
    return connection(
        DevFulfillmentEvent.objects.filter(fulfillment=f), sort_field=sort_field, **args
    )


def _total_quantity(f: DevFulfillment, _: GraphQLResolveInfo) -> int:
    return int(f.fulfillment_line_items.aggregate(n=Sum("quantity"))["n"] or 0)


def _line_item_image(item: DevLineItem, _: GraphQLResolveInfo) -> dict[str, Any] | None:
    # Shopify: "the image associated to the line item's variant"; the devshop's variants have
    # none of their own, so it is the product's featured image, as Shopify falls back to.
    return product_image(item.product)


def _featured_media(product: DevProduct, _: GraphQLResolveInfo) -> dict[str, Any] | None:
    # The product's one picture as a ready MediaImage (null for a product without one).
    image = product_image(product)
    if image is None:
        return None
    return {
        "__typename": "MediaImage",
        "id": gid("MediaImage", product.shopify_id),
        "alt": product.title,
        "image": image,
        "preview": {"image": image, "status": "READY"},
    }


def _image_url(image: dict[str, Any], _: GraphQLResolveInfo, transform: Any = None) -> str:
    """Image.url(transform: {maxWidth, maxHeight, scale}): a square picture fitting the box."""
    transform = transform or {}
    bounds = [b for b in (transform.get("maxWidth"), transform.get("maxHeight")) if b]
    size = min(bounds) * max(1, int(transform.get("scale") or 1)) if bounds else None
    return product_image_src(image["_product"], size=size)


def _legacy(obj: Any, _: GraphQLResolveInfo) -> str:
    return str(obj.shopify_id)


def _id(type_name: str) -> Resolver:
    return lambda obj, _info: gid(type_name, obj.shopify_id)


RESOLVERS: dict[str, dict[str, Resolver]] = {
    "QueryRoot": {
        "shop": lambda _root, info: _shop(info),
        "order": resolve_order,
        "orders": resolve_orders,
        "product": resolve_product,
        "products": resolve_products,
        "productVariant": resolve_product_variant,
    },
    "Shop": {
        "id": _id("Shop"),
        "contactEmail": lambda shop, _: shop.email,
        "currencyCode": lambda shop, _: shop.currency_code,
        "primaryDomain": lambda shop, _: {
            "id": gid("Domain", shop.shopify_id),
            "host": shop.myshopify_domain,
            "url": f"https://{shop.myshopify_domain}",
        },
        "plan": _shop_plan,
    },
    "Order": {
        "id": _id("Order"),
        "legacyResourceId": _legacy,
        "closed": lambda o, _: o.closed_at is not None,
        "tags": lambda o, _: _tags(o.tags),
        "currencyCode": lambda o, _: o.currency,
        "presentmentCurrencyCode": lambda o, _: o.presentment_currency,
        "displayFinancialStatus": lambda o, _: o.financial_status or None,
        "displayFulfillmentStatus": _display_fulfillment_status,
        "totalPriceSet": lambda o, _: money_bag(o.total_price, o),
        "subtotalPriceSet": lambda o, _: money_bag(o.subtotal_price, o),
        "totalDiscountsSet": lambda o, _: money_bag(o.total_discounts, o),
        "totalTaxSet": lambda o, _: money_bag(o.total_tax, o),
        "totalShippingPriceSet": lambda o, _: money_bag(o.total_shipping, o),
        "shippingAddress": lambda o, _: _mailing_address(o.shipping_address, o.shopify_id),
        "billingAddress": lambda o, _: _mailing_address(o.billing_address, o.shopify_id + 1),
        "statusPageUrl": _status_page_url,
        "lineItems": _line_items,
        "fulfillments": _fulfillments,
    },
    "Customer": {
        "id": _id("Customer"),
        "legacyResourceId": _legacy,
        "displayName": lambda c, _: f"{c.first_name} {c.last_name}".strip() or c.email,
        "defaultEmailAddress": lambda c, _: {"emailAddress": c.email} if c.email else None,
        "defaultPhoneNumber": lambda c, _: {"phoneNumber": c.phone} if c.phone else None,
        "tags": lambda c, _: _tags(c.tags),
    },
    "Product": {
        "id": _id("Product"),
        "legacyResourceId": _legacy,
        "tags": lambda p, _: _tags(p.tags),
        "variants": _variants,
        "onlineStoreUrl": _online_store_url,
        "priceRangeV2": _price_range,
        "featuredMedia": _featured_media,
    },
    "ProductVariant": {
        "id": _id("ProductVariant"),
        "legacyResourceId": _legacy,
        "displayName": lambda v, _: f"{v.product.title} - {v.title}",
    },
    "LineItem": {
        "id": _id("LineItem"),
        "name": _line_item_name,
        "unfulfilledQuantity": lambda li, _: max(0, li.current_quantity - _fulfilled_quantity(li)),
        "nonFulfillableQuantity": lambda li, _: li.quantity - li.current_quantity,
        "refundableQuantity": lambda li, _: li.current_quantity,
        "originalUnitPriceSet": lambda li, _: money_bag(li.price, li.order),
        "originalTotalSet": lambda li, _: money_bag(li.price * li.quantity, li.order),
        "discountedUnitPriceSet": lambda li, _: money_bag(
            li.price - li.total_discount / max(1, li.quantity), li.order
        ),
        "totalDiscountSet": lambda li, _: money_bag(li.total_discount, li.order),
        "image": _line_item_image,
    },
    "Image": {"url": _image_url},
    "Fulfillment": {
        "id": _id("Fulfillment"),
        "legacyResourceId": _legacy,
        "displayStatus": lambda f, _: f.display_status or None,
        "requiresShipping": lambda f, _: True,
        "totalQuantity": _total_quantity,
        "trackingInfo": _tracking_info,
        "fulfillmentLineItems": _fulfillment_line_items,
        "events": _events,
    },
    "FulfillmentLineItem": {
        "id": _id("FulfillmentLineItem"),
        "originalTotalSet": lambda fli, _: money_bag(
            fli.line_item.price * fli.quantity, fli.line_item.order
        ),
    },
    "FulfillmentEvent": {"id": _id("FulfillmentEvent")},
}


def _merge_mutation_resolvers() -> None:
    # Mutations, returns and the types they return live in mutations.py.
    from devshop.graphql.mutations import MUTATION_RESOLVERS

    for type_name, fields in MUTATION_RESOLVERS.items():
        RESOLVERS.setdefault(type_name, {}).update(fields)
    # Online store themes (the storefront's colours) live in themes.py.
    from devshop.graphql.themes import THEME_RESOLVERS

    for type_name, fields in THEME_RESOLVERS.items():
        RESOLVERS.setdefault(type_name, {}).update(fields)


_merge_mutation_resolvers()

# Models whose objects may come back from a Node field, for the type resolver.
NODE_TYPES = {
    DevOrder: "Order",
    DevCustomer: "Customer",
    DevProduct: "Product",
    DevVariant: "ProductVariant",
    DevLineItem: "LineItem",
    DevFulfillment: "Fulfillment",
    DevFulfillmentLineItem: "FulfillmentLineItem",
    DevFulfillmentEvent: "FulfillmentEvent",
    DevReturn: "Return",
    DevReturnLineItem: "ReturnLineItem",
}
