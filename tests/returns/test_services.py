"""Submission, the send job through Redis, auto-approve rules and the merchant's actions,
against a fake Admin API (the devshop flow covers the real one)."""

from datetime import timedelta
from decimal import Decimal

import pytest

from returns import services
from returns.models import Resolution, ReturnBlocklistEntry, ReturnRequest
from returns.policy import return_policy_get
from shopapp.models import OrderEvent
from tests.returns.domain_support import NOW, FakeShopify, make_order, make_shop, ship

pytestmark = pytest.mark.django_db


@pytest.fixture
def shop():
    return make_shop()


@pytest.fixture
def order(shop):
    order = make_order(shop)
    ship(order, shipped_at=NOW - timedelta(days=5), delivered_at=NOW - timedelta(days=3))
    return order


@pytest.fixture
def fake(monkeypatch, order):
    return FakeShopify(monkeypatch, order)


def submit(shop, order, quantity=1, **overrides):
    first = order.line_items.get(title="Item 0")
    values = {
        "shop": shop,
        "order": order,
        "items": [{"line_item_id": first.pk, "quantity": quantity, "reason": "SIZE_TOO_SMALL"}],
        "resolution": Resolution.REFUND,
        "customer_email": "ada@example.com",
        "customer_id": 42,
        "now": NOW,
    }
    values.update(overrides)
    return services.return_request_submit(**values)


def test_submission_is_stored_at_once_and_sent_by_the_job(
    shop, order, fake, rq_worker, django_capture_on_commit_callbacks
):
    # when
    with django_capture_on_commit_callbacks(execute=True) as enqueued:
        request = submit(shop, order, quantity=2)
    assert len(enqueued) == 1
    stored = ReturnRequest.objects.get(pk=request.pk)
    # then: stored before Shopify hears of it
    assert (stored.status, stored.sync_state) == ("SUBMITTED", "pending")
    assert stored.refund_estimate == Decimal("80.00")
    assert OrderEvent.objects.filter(kind="return.submitted", order=order).count() == 1

    # when the worker runs the job
    rq_worker()
    stored.refresh_from_db()
    # then
    assert (stored.status, stored.sync_state) == ("REQUESTED", "synced")
    assert (stored.shopify_return_id, stored.name) == (900_001, "#1001-R1")
    (line,) = stored.line_items.all()
    assert line.shopify_return_line_item_gid == "gid://shopify/ReturnLineItem/9000010"
    (call,) = [c for c in fake.calls if c[0] == "request"]
    assert call[1]["lines"][0]["returnReason"] == "SIZE_TOO_SMALL"
    assert call[1]["lines"][0]["quantity"] == 2
    assert OrderEvent.objects.filter(kind="return.requested", order=order).count() == 1


def test_shopify_user_errors_mark_the_request_failed_in_plain_words(shop, order, fake):
    request = submit(shop, order)
    fake.fail_with = [
        {
            "field": ["input"],
            "message": "Quantity exceeds the returnable quantity",
            "code": "INVALID",
        }
    ]

    services.return_request_send(request_id=request.pk)

    request.refresh_from_db()
    assert request.sync_state == "failed"
    assert request.sync_error == "Quantity exceeds the returnable quantity."
    assert request.shopify_return_id is None
    assert OrderEvent.objects.filter(kind="return.sync_failed").count() == 1


def test_double_submission_is_refused_and_changes_nothing(shop, order, fake):
    submit(shop, order, quantity=2)

    with pytest.raises(services.ReturnRefused) as refused:
        submit(shop, order, quantity=1)

    assert refused.value.code == "open_request"
    assert "already open" in refused.value.message
    assert ReturnRequest.objects.count() == 1


def test_another_customers_order_is_refused(shop, order, fake):
    with pytest.raises(services.ReturnRefused) as refused:
        submit(shop, order, customer_id=43, customer_email="eve@example.com")

    assert refused.value.code == "not_found"
    assert ReturnRequest.objects.count() == 0


def test_another_shops_order_is_refused(order, fake):
    other = make_shop("bravo.myshopify.com")

    with pytest.raises(services.ReturnRefused) as refused:
        submit(other, order)

    assert refused.value.code == "not_found"
    assert ReturnRequest.objects.count() == 0


def test_blocklisted_email_is_refused_with_a_clear_message(shop, order, fake):
    services.blocklist_entry_add(shop=shop, email=" ADA@example.com ")

    with pytest.raises(services.ReturnRefused) as refused:
        submit(shop, order)

    assert refused.value.code == "blocklisted"
    assert refused.value.message == (
        "We can't accept a return for this order online. Please contact the store."
    )
    assert ReturnRequest.objects.count() == 0
    assert ReturnBlocklistEntry.objects.get().email == "ada@example.com"


def test_reason_requiring_a_note_or_photo(shop, order, fake):
    policy = return_policy_get(shop=shop)
    policy.reasons_requiring_note = ["DEFECTIVE"]
    policy.reasons_requiring_photo = ["defective"]
    policy.save()
    first = order.line_items.get(title="Item 0")

    with pytest.raises(services.ReturnRefused) as no_note:
        submit(shop, order, items=[(first.pk, 1, "DEFECTIVE", "", None)])
    with pytest.raises(services.ReturnRefused) as no_photo:
        submit(shop, order, items=[(first.pk, 1, "DEFECTIVE", "Broken zip", None)])

    assert no_note.value.code == "note_required"
    assert no_photo.value.code == "photo_required"
    assert ReturnRequest.objects.count() == 0


def _synced(shop, order, **kw):
    request = submit(shop, order, **kw)
    return services.return_request_send(request_id=request.pk)


def test_auto_approve_when_every_rule_holds(shop, order, fake):
    policy = return_policy_get(shop=shop)
    policy.is_auto_approve = True
    policy.auto_approve_max_value = Decimal("50")
    policy.save()

    request = _synced(shop, order, quantity=1)

    assert request.status == "OPEN"
    assert [c[0] for c in fake.calls] == ["request", "approve"]
    assert OrderEvent.objects.filter(kind="return.approved", source="system").count() == 1


@pytest.mark.parametrize(
    ("change", "quantity"),
    [
        ({"auto_approve_max_value": Decimal("50")}, 2),  # 80.00 is above the limit
        ({"auto_approve_excluded_reasons": ["size-too-small"]}, 1),
    ],
)
def test_auto_approve_rules_leave_the_request_for_review(shop, order, fake, change, quantity):
    policy = return_policy_get(shop=shop)
    policy.is_auto_approve = True
    for name, value in change.items():
        setattr(policy, name, value)
    policy.save()

    request = _synced(shop, order, quantity=quantity)

    assert request.status == "REQUESTED"
    assert [c[0] for c in fake.calls] == ["request"]


def test_flagged_customer_is_not_auto_approved(shop, order, fake):
    policy = return_policy_get(shop=shop)
    policy.is_auto_approve = True
    policy.save()
    earlier = _synced(shop, order, quantity=1)  # approved; a second return makes 1/1 earlier
    assert earlier.status == "OPEN"

    later = _synced(shop, order, quantity=1)

    assert later.status == "REQUESTED"
    history = services.customer_history(
        shop=shop, customer_id=42, email="ada@example.com", exclude_request_id=later.pk
    )
    assert (history.returns, history.orders, history.is_flagged) == (1, 1, True)


def test_merchant_approves_receives_and_processes_a_refund(shop, order, fake):
    request = _synced(shop, order, quantity=2)

    services.return_request_approve(shop=shop, request=request, instructions="Ship to the depot")
    line = request.line_items.get()
    services.return_items_receive(shop=shop, request=request, quantities={line.pk: 1})
    done = services.return_request_process(shop=shop, request=request)

    assert done.status == "CLOSED"
    assert done.processed_at is not None
    process = [c for c in fake.calls if c[0] == "process"][0][1]
    assert process["returnLineItems"] == [{"id": line.shopify_return_line_item_gid, "quantity": 1}]
    refund = process["financialTransfer"]["issueRefund"]["orderTransactions"][0]
    assert refund["transactionAmount"] == {"amount": "40.00", "currencyCode": "EUR"}
    kinds = list(
        OrderEvent.objects.filter(order=order, kind__startswith="return.")
        .order_by("id")
        .values_list("kind", flat=True)
    )
    assert kinds == [
        "return.submitted",
        "return.requested",
        "return.approved",
        "return.received",
        "return.processed",
        "return.closed",
    ]


def test_store_credit_goes_through_refund_methods(shop, order, fake):
    request = _synced(shop, order, quantity=1)
    services.return_request_approve(shop=shop, request=request, instructions="")

    services.return_request_process(shop=shop, request=request, resolution=Resolution.STORE_CREDIT)

    process = [c for c in fake.calls if c[0] == "process"][0][1]
    assert process["financialTransfer"]["issueRefund"] == {
        "orderTransactions": [],
        "refundMethods": [
            {"storeCreditRefund": {"amount": {"amount": "40.00", "currencyCode": "EUR"}}}
        ],
    }


def test_decline_with_shopify_user_errors_changes_nothing(shop, order, fake):
    request = _synced(shop, order, quantity=1)
    fake.fail_with = [
        {
            "field": ["id"],
            "message": "Return is open; it can't be declined",
            "code": "INVALID_STATE",
        }
    ]

    with pytest.raises(services.ReturnActionError) as refused:
        services.return_request_decline(shop=shop, request=request, reason="OTHER", note="No")

    request.refresh_from_db()
    assert refused.value.message == "Return is open; it can't be declined."
    assert (request.status, request.decline_reason) == ("REQUESTED", "")
    assert not OrderEvent.objects.filter(kind="return.declined").exists()


def test_decline_reason_must_be_shopifys(shop, order, fake):
    request = _synced(shop, order, quantity=1)

    with pytest.raises(services.ReturnActionError):
        services.return_request_decline(shop=shop, request=request, reason="TOO_LATE", note="")

    assert [c[0] for c in fake.calls] == ["request"]
