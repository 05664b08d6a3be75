"""bench/scale.py's generator, on a small copy in the test database: the counts it reports are
the rows it wrote, every row is its shop's, the special orders are what the query-count checks
expect, and the skew gives the first shop its share."""

import pytest
from django.db import connection

from bench.scale import MANY_EVENTS_PER_SHIPMENT, MANY_SHIPMENTS, ScaleParams, build_scale_dataset

pytestmark = pytest.mark.django_db


def _scalar(sql: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchone()[0]


def test_small_copy_counts_match_the_rows_written():
    built = build_scale_dataset(ScaleParams(orders=600, shops=6, skew=0.5), log=lambda _: None)

    counts = built["counts"]
    assert counts["orders"] == _scalar("SELECT count(*) FROM shopapp_order") == 600
    assert counts["shipments"] == _scalar("SELECT count(*) FROM tracking_shipment")
    assert counts["tracking_events"] == _scalar("SELECT count(*) FROM tracking_trackingevent")
    assert counts["messages"] == counts["shipments"]
    # About two shipments per order and five events per shipment.
    assert 1.6 < counts["shipments"] / counts["orders"] < 2.4
    assert 4.0 < counts["tracking_events"] / counts["shipments"] < 6.5
    assert counts["return_requests"] == _scalar("SELECT count(*) FROM returns_returnrequest")
    # Half the orders in the big shop (the skew), give or take the draw.
    assert 240 < built["big_shop"]["orders"] < 360
    assert built["big_shop"]["orders"] == _scalar(
        "SELECT count(*) FROM shopapp_order WHERE shop_id = 1"
    )


def test_every_row_belongs_to_its_orders_shop_and_points_at_a_real_row():
    build_scale_dataset(ScaleParams(orders=300, shops=4), log=lambda _: None)

    # The load runs without FK triggers: check what they would have.
    assert (
        _scalar(
            "SELECT count(*) FROM tracking_shipment s JOIN shopapp_order o ON o.id = s.order_id "
            "WHERE s.shop_id <> o.shop_id"
        )
        == 0
    )
    assert (
        _scalar(
            "SELECT count(*) FROM tracking_trackingevent e "
            "LEFT JOIN tracking_shipment s ON s.id = e.shipment_id "
            "WHERE s.id IS NULL OR s.shop_id <> e.shop_id"
        )
        == 0
    )
    assert (
        _scalar(
            "SELECT count(*) FROM notifications_message m "
            "JOIN notifications_sequencestep st ON st.id = m.step_id "
            "JOIN shopapp_order o ON o.id = m.order_id "
            "WHERE st.shop_id <> m.shop_id OR o.shop_id <> m.shop_id"
        )
        == 0
    )
    assert (
        _scalar(
            "SELECT count(*) FROM returns_returnlineitem r "
            "JOIN shopapp_lineitem li ON li.id = r.line_item_id "
            "JOIN returns_returnrequest rr ON rr.id = r.return_request_id "
            "WHERE li.order_id <> rr.order_id"
        )
        == 0
    )
    assert (
        _scalar(
            "SELECT count(*) FROM tracking_shipmentlineitem sl "
            "JOIN tracking_shipment s ON s.id = sl.shipment_id "
            "LEFT JOIN shopapp_lineitem li "
            "  ON li.order_id = s.order_id AND li.shopify_id = sl.line_item_shopify_id "
            "WHERE li.id IS NULL"
        )
        == 0
    )
    assert (
        _scalar(
            "SELECT count(*) FROM tracking_delay d JOIN shopapp_order o ON o.id = d.order_id "
            "LEFT JOIN tracking_shipment s ON s.id = d.shipment_id "
            "WHERE o.shop_id <> d.shop_id OR (d.shipment_id IS NOT NULL "
            "AND (s.id IS NULL OR s.order_id <> d.order_id))"
        )
        == 0
    )
    assert _scalar("SELECT count(*) FROM tracking_delay WHERE resolved_at IS NULL") > 0
    # The sequences continue after the copied ids: the app's own inserts do not collide.
    assert _scalar("SELECT nextval(pg_get_serial_sequence('shopapp_order', 'id'))") == 301


def test_special_orders_hold_one_event_and_many():
    built = build_scale_dataset(ScaleParams(orders=50, shops=2), log=lambda _: None)

    one, many = built["specials"]["one_event"], built["specials"]["many_events"]
    events_of = (
        "SELECT count(*) FROM tracking_trackingevent e JOIN tracking_shipment s "
        "ON s.id = e.shipment_id WHERE s.order_id = {}"
    )
    assert _scalar(f"SELECT count(*) FROM tracking_shipment WHERE order_id = {one}") == 1
    assert _scalar(events_of.format(one)) == 1
    assert _scalar(f"SELECT count(*) FROM tracking_shipment WHERE order_id = {many}") == (
        MANY_SHIPMENTS
    )
    assert _scalar(events_of.format(many)) == MANY_SHIPMENTS * MANY_EVENTS_PER_SHIPMENT


def test_parameters_name_the_build_and_bad_ones_are_refused():
    assert ScaleParams().digest() == ScaleParams().digest()
    assert ScaleParams(orders=1000).digest() != ScaleParams().digest()
    assert ScaleParams(skew=0.3).digest() != ScaleParams().digest()
    with pytest.raises(ValueError, match="skew"):
        ScaleParams(skew=1.5)
    with pytest.raises(ValueError, match="shops"):
        ScaleParams(orders=10, shops=20)
