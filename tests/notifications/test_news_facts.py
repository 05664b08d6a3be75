"""What crosses the seam for the emails' estimate and pictures: tracking's predicted range and
basis as frozen facts, kept in the message's snapshot as JSON and given to the templates in the
recipient's language; each item's picture in parcels, returns and the order's own lines."""

import json
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from notifications.context import message_context_build
from notifications.news import (
    Item,
    PredictedEstimate,
    ShipmentNews,
    ShipmentStage,
    news_snapshot,
    shipment_from_snapshot,
)
from tests.tracking.test_page import make_line_item, make_order, make_shop

pytestmark = pytest.mark.django_db

PREDICTED = PredictedEstimate(
    earliest=date(2026, 3, 4),
    latest=date(2026, 3, 6),
    deliveries=240,
    carrier="Royal Mail",
    country_code="GB",
)


def _news(**changes) -> ShipmentNews:
    values = {
        "fulfillment_id": 4_100_000_001,
        "stage": ShipmentStage.IN_TRANSIT,
        "happened_at": datetime(2026, 3, 3, 10, 0, tzinfo=UTC),
        "estimated_delivery_at": datetime(2026, 3, 6, 12, 0, tzinfo=UTC),
        "predicted": PREDICTED,
        "items": (Item(title="Hoodie", quantity=1, image_url="https://cdn.example/h.png"),),
    }
    values.update(changes)
    return ShipmentNews(**values)


def test_the_snapshot_is_json_and_reads_back_the_same():
    news = _news()

    snapshot = json.loads(json.dumps(news_snapshot(news)))

    assert snapshot["predicted"]["earliest"] == "2026-03-04"
    assert shipment_from_snapshot(snapshot) == news


def _parcel(snapshot: dict, language: str) -> dict:
    shop = make_shop()
    order = make_order(shop)
    context = message_context_build(
        shop=shop,
        order=order,
        snapshot={"news": snapshot, "shipments": [snapshot]},
        channel="email",
        recipient="ada@example.com",
        zone=ZoneInfo("Europe/Paris"),
        language=language,
    )
    return context["shipment"]


@pytest.mark.parametrize(
    ("language", "place"),
    [
        ("en", "United Kingdom"),
        ("fr", "Royaume-Uni"),
        ("es", "Reino Unido"),
        ("de", "Vereinigtes Königreich"),
    ],
)
def test_the_country_is_named_in_the_recipients_language(language, place):
    parcel = _parcel(news_snapshot(_news()), language)

    assert parcel["estimate"] == {
        "earliest": date(2026, 3, 4),
        "latest": date(2026, 3, 6),
        "is_range": True,
        "deliveries": 240,
        "carrier": "Royal Mail",
        "place": place,
    }
    assert parcel["items"][0]["image_url"] == "https://cdn.example/h.png"


def test_a_region_is_named_as_shopify_names_it():
    predicted = PredictedEstimate(
        earliest=date(2026, 3, 5),
        latest=date(2026, 3, 5),
        deliveries=31,
        country_code="CA",
        region="Ontario",
    )

    parcel = _parcel(news_snapshot(_news(predicted=predicted)), "fr")

    assert parcel["estimate"]["place"] == "Ontario"
    assert parcel["estimate"]["is_range"] is False
    assert parcel["estimate"]["carrier"] == ""


def test_shopifys_own_estimate_has_no_predicted_range():
    parcel = _parcel(news_snapshot(_news(predicted=None)), "en")

    assert parcel["estimate"] is None
    assert parcel["estimated_delivery_at"] is not None


@pytest.mark.parametrize(
    "forged",
    [
        "240 deliveries",
        {"earliest": "2026-03-09", "latest": "2026-03-04", "deliveries": 240},
        {"earliest": "yesterday", "latest": "2026-03-04", "deliveries": 240},
        {"earliest": "2026-03-04", "latest": "2026-03-06", "deliveries": 0},
        {"latest": "2026-03-06", "deliveries": 240},
    ],
)
def test_a_snapshot_whose_estimate_cannot_be_read_shows_none(forged):
    snapshot = news_snapshot(_news())
    snapshot["predicted"] = forged

    assert _parcel(snapshot, "en")["estimate"] is None
    assert shipment_from_snapshot(snapshot).predicted is None


def test_a_range_that_ends_before_it_starts_is_refused():
    with pytest.raises(ValueError, match="range of days"):
        PredictedEstimate(earliest=date(2026, 3, 6), latest=date(2026, 3, 4), deliveries=20)


# -- product pictures in every list of items --------------------------------------------------


def test_the_orders_own_lines_carry_their_pictures():
    # (order confirmation and cancellation list the order's lines, not a parcel's)
    shop = make_shop()
    order = make_order(shop)
    make_line_item(order, "Hoodie", image_url="https://cdn.shopify.com/s/files/1/h.png")
    make_line_item(order, "Gift wrap")

    context = message_context_build(
        shop=shop,
        order=order,
        snapshot={},
        channel="email",
        recipient="ada@example.com",
        zone=ZoneInfo("Europe/Paris"),
    )

    assert [(i["title"], i["image_url"]) for i in context["items"]] == [
        ("Hoodie", "https://cdn.shopify.com/s/files/1/h.png"),
        ("Gift wrap", ""),
    ]


def test_a_returns_items_carry_their_pictures():
    from returns.models import ReturnLineItem, ReturnRequest
    from returns.news import return_news

    shop = make_shop()
    order = make_order(shop)
    line = make_line_item(order, "Hoodie", image_url="https://cdn.shopify.com/s/files/1/h.png")
    request = ReturnRequest.objects.create(
        shop=shop, order=order, resolution="refund", status="REQUESTED"
    )
    ReturnLineItem.objects.create(
        shop=shop, return_request=request, line_item=line, quantity=1, reason="COLOR"
    )

    news = return_news(request, happened_at=datetime(2026, 3, 9, tzinfo=UTC))

    assert [(i.title, i.image_url) for i in news.items] == [
        ("Hoodie", "https://cdn.shopify.com/s/files/1/h.png")
    ]
