"""Submission, the send job through Redis, auto-approve rules and the merchant's actions,
against the devshop: what the app sent is checked by reading what Shopify now holds.

One store for the module: a shared delivered order for the tests that only read Shopify, and
a pool of delivered orders, one for each test that sends a return (Shopify keeps it). The
customer history test opens a store of its own (one customer, one order).
"""

from decimal import Decimal

import pytest

from returns import services
from returns.models import Resolution, ReturnBlocklistEntry, ReturnRequest
from returns.policy import return_policy_get
from shopapp.models import OrderEvent
from tests.returns.domain_support import make_shop
from tests.returns.store_support import DevshopStore, unit_value

pytestmark = pytest.mark.django_db
# One order per test that sends a return to Shopify.
POOL_SIZE = 10


@pytest.fixture(scope="module")
def store(devshop_server, django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        store = DevshopStore.open(devshop_server)
        (store.shared,) = store.orders_create(1)
        store.pool_fill(POOL_SIZE)
        store.mirror()
    yield store
    with django_db_blocker.unblock():
        store.close()


@pytest.fixture(autouse=True)
def _app_calls_the_devshop(devshop):
    """Every test's Admin API calls go to the devshop (settings are per test)."""


@pytest.fixture
def shop(store):
    return store.shop()


@pytest.fixture
def order(store):
    """The shared order: tests using it send nothing to Shopify."""
    return store.order(store.shared)


@pytest.fixture
def own_order(store):
    """An order of the pool: the test may send returns for it."""
    return store.take()


def first_line(order):
    return order.line_items.order_by("shopify_id").first()


def submit(shop, order, quantity=1, **overrides):
    values = {
        "shop": shop,
        "order": order,
        "items": [
            {"line_item_id": first_line(order).pk, "quantity": quantity, "reason": "SIZE_TOO_SMALL"}
        ],
        "resolution": Resolution.REFUND,
        "customer_email": order.email,
        "customer_id": order.customer_id,
    }
    values.update(overrides)
    return services.return_request_submit(**values)


def _synced(shop, order, **kw):
    request = submit(shop, order, **kw)
    return services.return_request_send(request_id=request.pk)


def the_return(store, order) -> dict:
    """The order's only return in Shopify, read through the Admin API."""
    (only,) = store.order_returns(order.shopify_id)
    return store.return_facts(only["id"])


def auto_approve(shop, **fields):
    policy = return_policy_get(shop=shop)
    policy.is_auto_approve = True
    for name, value in fields.items():
        setattr(policy, name, value)
    policy.save()


def test_submission_is_stored_at_once_and_sent_by_the_job(
    store, shop, own_order, rq_worker, django_capture_on_commit_callbacks
):
    line = first_line(own_order)

    # when the shopper returns every unit of the first item
    with django_capture_on_commit_callbacks(execute=True) as enqueued:
        request = submit(shop, own_order, quantity=line.quantity)
    assert len(enqueued) == 1
    stored = ReturnRequest.objects.get(pk=request.pk)
    # then it is stored before Shopify hears of it
    assert (stored.status, stored.sync_state) == ("SUBMITTED", "pending")
    assert stored.refund_estimate == unit_value(line) * line.quantity
    assert OrderEvent.objects.filter(kind="return.submitted", order=own_order).count() == 1
    assert store.order_returns(own_order.shopify_id) == []

    # when the worker runs the job
    rq_worker()
    stored.refresh_from_db()

    # then Shopify holds the return as the shopper asked for it, and the app knows its ids
    shopify_return = the_return(store, own_order)
    assert (stored.status, stored.sync_state) == ("REQUESTED", "synced")
    assert shopify_return["status"] == "REQUESTED"
    assert f"gid://shopify/Return/{stored.shopify_return_id}" == shopify_return["id"]
    assert stored.name == shopify_return["name"] == f"{own_order.name}-R1"
    (sent,) = shopify_return["returnLineItems"]["nodes"]
    (stored_line,) = stored.line_items.all()
    assert stored_line.shopify_return_line_item_gid == sent["id"]
    assert sent["fulfillmentLineItem"]["id"] == stored_line.fulfillment_line_item_gid
    assert sent["fulfillmentLineItem"]["lineItem"]["id"].endswith(f"/{line.shopify_id}")
    assert (sent["returnReason"], sent["quantity"]) == ("SIZE_TOO_SMALL", line.quantity)
    assert OrderEvent.objects.filter(kind="return.requested", order=own_order).count() == 1


def test_shopify_user_errors_mark_the_request_failed_in_plain_words(store, shop, own_order):
    # given a stored request, and the same units requested in Shopify meanwhile
    line = first_line(own_order)
    request = submit(shop, own_order, quantity=line.quantity)
    (stored_line,) = request.line_items.all()
    competing = store.return_request_in_shopify(
        [(stored_line.fulfillment_line_item_gid, line.quantity)], order_id=own_order.shopify_id
    )

    # when the app sends ours
    services.return_request_send(request_id=request.pk)

    # then Shopify's userErrors are the request's error, in Shopify's words, as a sentence
    request.refresh_from_db()
    assert request.sync_state == "failed"
    assert request.sync_error == (f"Quantity {line.quantity} exceeds the returnable quantity (0).")
    assert request.shopify_return_id is None
    assert OrderEvent.objects.filter(kind="return.sync_failed").count() == 1
    assert store.order_returns(own_order.shopify_id) == [{"id": competing, "status": "REQUESTED"}]


def test_double_submission_is_refused_and_changes_nothing(shop, order):
    submit(shop, order, quantity=first_line(order).quantity)

    with pytest.raises(services.ReturnRefused) as refused:
        submit(shop, order, quantity=1)

    assert refused.value.code == "open_request"
    assert "already open" in refused.value.message
    assert ReturnRequest.objects.count() == 1


def test_another_customers_order_is_refused(shop, order):
    with pytest.raises(services.ReturnRefused) as refused:
        submit(shop, order, customer_id=order.customer_id + 1, customer_email="eve@example.com")

    assert refused.value.code == "not_found"
    assert ReturnRequest.objects.count() == 0


def test_another_shops_order_is_refused(order):
    other = make_shop("bravo.myshopify.com")

    with pytest.raises(services.ReturnRefused) as refused:
        submit(other, order)

    assert refused.value.code == "not_found"
    assert ReturnRequest.objects.count() == 0


def test_blocklisted_email_is_refused_with_a_clear_message(shop, order):
    services.blocklist_entry_add(shop=shop, email=f" {order.email.upper()} ")

    with pytest.raises(services.ReturnRefused) as refused:
        submit(shop, order)

    assert refused.value.code == "blocklisted"
    assert refused.value.message == (
        "We can't accept a return for this order online. Please contact the store."
    )
    assert ReturnRequest.objects.count() == 0
    assert ReturnBlocklistEntry.objects.get().email == order.email.lower()


def test_reason_requiring_a_note_or_photo(shop, order):
    policy = return_policy_get(shop=shop)
    policy.reasons_requiring_note = ["DEFECTIVE"]
    policy.reasons_requiring_photo = ["defective"]
    policy.save()
    first = first_line(order)

    with pytest.raises(services.ReturnRefused) as no_note:
        submit(shop, order, items=[(first.pk, 1, "DEFECTIVE", "", None)])
    with pytest.raises(services.ReturnRefused) as no_photo:
        submit(shop, order, items=[(first.pk, 1, "DEFECTIVE", "Broken zip", None)])

    assert no_note.value.code == "note_required"
    assert no_photo.value.code == "photo_required"
    assert ReturnRequest.objects.count() == 0


def test_auto_approve_when_every_rule_holds(store, shop, own_order):
    # given auto-approve up to exactly the value of one unit
    auto_approve(shop, auto_approve_max_value=unit_value(first_line(own_order)))

    request = _synced(shop, own_order, quantity=1)

    assert request.status == "OPEN"
    assert the_return(store, own_order)["status"] == "OPEN"
    assert OrderEvent.objects.filter(kind="return.approved", source="system").count() == 1


@pytest.mark.parametrize("rule", ["value above the limit", "reason the merchant reviews"])
def test_auto_approve_rules_leave_the_request_for_review(store, shop, own_order, rule):
    line = first_line(own_order)
    if rule == "value above the limit":
        value = unit_value(line) * line.quantity
        auto_approve(shop, auto_approve_max_value=value - Decimal("0.01"))
        quantity = line.quantity
    else:
        auto_approve(shop, auto_approve_excluded_reasons=["size-too-small"])
        quantity = 1

    request = _synced(shop, own_order, quantity=quantity)

    assert request.status == "REQUESTED"
    assert the_return(store, own_order)["status"] == "REQUESTED"
    assert not OrderEvent.objects.filter(kind="return.approved").exists()


def test_blocklisted_order_email_is_not_auto_approved(store, shop, own_order):
    # given a request whose shopper wrote another address than the order's (as when the
    # merchant made the return in Shopify's admin), and the order's email blocklisted since
    request = _synced(shop, own_order, quantity=1)
    assert request.status == "REQUESTED"
    request.customer_email = "someone-else@example.com"
    request.save(update_fields=["customer_email"])
    services.blocklist_entry_add(shop=shop, email=own_order.email)
    auto_approve(shop, auto_approve_max_value=Decimal("100000"))

    decision = services.return_auto_approve_decision(shop=shop, request=request)

    assert decision == (False, "blocklisted")


def test_flagged_customer_is_not_auto_approved(devshop):
    # given a store of its own: one customer with one order
    store = DevshopStore.open(devshop)
    (order_id,) = store.orders_create(1)
    store.mirror()
    shop, order = store.shop(), store.order(order_id)
    first, second = order.line_items.order_by("shopify_id")
    auto_approve(shop, auto_approve_max_value=Decimal("100000"))
    earlier = _synced(shop, order, items=[(first.pk, 1, "SIZE_TOO_SMALL", "", None)])
    assert earlier.status == "OPEN"  # approved; a second return makes 1 earlier of 1 order

    later = _synced(shop, order, items=[(second.pk, 1, "SIZE_TOO_SMALL", "", None)])

    assert later.status == "REQUESTED"
    history = services.customer_history(
        shop=shop, customer_id=order.customer_id, email=order.email, exclude_request_id=later.pk
    )
    assert (history.returns, history.orders, history.is_flagged) == (1, 1, True)
    assert [r["status"] for r in store.order_returns(order_id)] == ["OPEN", "REQUESTED"]


def test_merchant_approves_receives_and_processes_a_refund(store, shop, own_order):
    # given both items requested, and approved
    first, second = own_order.line_items.order_by("shopify_id")
    request = _synced(
        shop,
        own_order,
        items=[(li.pk, li.quantity, "SIZE_TOO_SMALL", "", None) for li in (first, second)],
    )
    services.return_request_approve(shop=shop, request=request, instructions="Ship to the depot")
    assert the_return(store, own_order)["status"] == "OPEN"
    line_a, line_b = request.line_items.order_by("pk")

    # when only the first item came back, and the merchant processes what came back
    services.return_items_receive(
        shop=shop,
        request=request,
        quantities={line_a.pk: first.quantity},
        disposition="NOT_RESTOCKED",
    )
    partly = services.return_request_process(shop=shop, request=request)

    # then Shopify holds the receipt, and confirmed and refunded the first item only; the
    # return stays open
    shopify_return = the_return(store, own_order)
    line_a.refresh_from_db()
    (rfo,) = shopify_return["reverseFulfillmentOrders"]["nodes"]
    disposed = {n["id"]: n["dispositions"] for n in rfo["lineItems"]["nodes"]}
    assert disposed[line_a.reverse_fulfillment_order_line_item_gid] == [
        {"quantity": first.quantity, "type": "NOT_RESTOCKED"}
    ]
    processed = {
        n["id"]: n["processedQuantity"] for n in shopify_return["returnLineItems"]["nodes"]
    }
    assert processed == {
        line_a.shopify_return_line_item_gid: first.quantity,
        line_b.shopify_return_line_item_gid: 0,
    }
    assert (partly.status, shopify_return["status"]) == ("OPEN", "OPEN")
    money = store.return_money(request.shopify_return_id)
    assert money == {"refunded": unit_value(first) * first.quantity, "store_credit": 0}

    # when the rest comes back and is processed
    services.return_items_receive(
        shop=shop,
        request=request,
        quantities={line_a.pk: first.quantity, line_b.pk: second.quantity},
        disposition="NOT_RESTOCKED",
    )
    done = services.return_request_process(shop=shop, request=request)

    # then Shopify closed it, having refunded both items to the original payment
    shopify_return = the_return(store, own_order)
    assert (done.status, shopify_return["status"]) == ("CLOSED", "CLOSED")
    assert done.processed_at is not None
    assert [n["processedQuantity"] for n in shopify_return["returnLineItems"]["nodes"]] == [
        first.quantity,
        second.quantity,
    ]
    refunded = unit_value(first) * first.quantity + unit_value(second) * second.quantity
    assert store.return_money(request.shopify_return_id) == {
        "refunded": refunded,
        "store_credit": 0,
    }
    assert shopify_return["order"]["displayFinancialStatus"] in {"PARTIALLY_REFUNDED", "REFUNDED"}
    kinds = list(
        OrderEvent.objects.filter(order=own_order, kind__startswith="return.")
        .order_by("id")
        .values_list("kind", flat=True)
    )
    assert kinds == [
        "return.submitted",
        "return.requested",
        "return.approved",
        "return.received",
        "return.processed",
        "return.received",
        "return.processed",
        "return.closed",
    ]


def test_store_credit_goes_through_refund_methods(store, shop, own_order):
    request = _synced(shop, own_order, quantity=1)
    services.return_request_approve(shop=shop, request=request, instructions="")

    services.return_request_process(shop=shop, request=request, resolution=Resolution.STORE_CREDIT)

    assert the_return(store, own_order)["status"] == "CLOSED"
    assert store.return_money(request.shopify_return_id) == {
        "refunded": 0,
        "store_credit": unit_value(first_line(own_order)),
    }


def test_decline_with_shopify_user_errors_changes_nothing(store, shop, own_order):
    # given a requested return the merchant approved meanwhile in Shopify's admin (the
    # returns/approve webhook has not reached the app)
    request = _synced(shop, own_order, quantity=1)
    store.merchant(request.shopify_return_id, "approve")

    with pytest.raises(services.ReturnActionError) as refused:
        services.return_request_decline(shop=shop, request=request, reason="OTHER", note="No")

    request.refresh_from_db()
    assert refused.value.message == "Return is open; it can't be declined."
    assert (request.status, request.decline_reason) == ("REQUESTED", "")
    assert not OrderEvent.objects.filter(kind="return.declined").exists()
    assert the_return(store, own_order)["status"] == "OPEN"


def test_decline_reason_must_be_shopifys(store, shop, own_order):
    request = _synced(shop, own_order, quantity=1)

    with pytest.raises(services.ReturnActionError):
        services.return_request_decline(shop=shop, request=request, reason="TOO_LATE", note="")

    request.refresh_from_db()
    assert request.status == "REQUESTED"
    shopify_return = the_return(store, own_order)
    assert (shopify_return["status"], shopify_return["decline"]) == ("REQUESTED", None)
