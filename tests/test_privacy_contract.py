"""Privacy as a contract between the platform and the apps that store personal data.

1. Every text, JSON and file field of every model is declared, by the module of a redactor
   listed in shopapp.subscribers (or the platform's own), as personal or not: a new field
   nobody declared fails here.
2. With the shopper's email, phone (each field in another spelling) and name in every
   personal field of every model, a signed customers/redact delivery, processed by a real
   worker, leaves no trace of them in any field of any row, nor a file on disk; another
   shopper of the same shop keeps everything.
3. shop/redact leaves no row of the shop and no file.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.utils import timezone
from django.utils.module_loading import import_string

from notifications.models import (
    Message,
    ReturnFacts,
    ReviewAnswer,
    Sequence,
    SequenceStep,
    ShipmentFacts,
    Suppression,
)
from notifications.services import phone_to_e164
from returns.models import (
    ReturnBlocklistEntry,
    ReturnLineItem,
    ReturnPhoto,
    ReturnRequest,
)
from shopapp.models import (
    CustomerDataExport,
    LineItem,
    Order,
    OrderEvent,
    Shop,
    Task,
    WebhookEvent,
)
from shopapp.privacy.scrub import Needles
from shopapp.subscribers import CUSTOMER_REDACTED, SHOP_REDACTED
from tests.privacy_support import app_models, text_fields, traces
from tests.shopapp.webhook_support import post_webhook
from tracking.models import Delay, ProblemCase, Shipment, TrackingEvent

pytestmark = pytest.mark.django_db(transaction=True)

PLATFORM_MODULE = "shopapp.privacy.services"


def _declaring_modules() -> list[str]:
    modules = {PLATFORM_MODULE}
    for path in (*CUSTOMER_REDACTED, *SHOP_REDACTED):
        modules.add(path.rsplit(".", 1)[0])
    return sorted(modules)


def _declared() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    personal: dict[str, set[str]] = {}
    not_personal: dict[str, set[str]] = {}
    for module in _declaring_modules():
        for table, target in (("PERSONAL_FIELDS", personal), ("NOT_PERSONAL_FIELDS", not_personal)):
            for label, fields in import_string(f"{module}.{table}").items():
                target.setdefault(label, set()).update(fields)
    return personal, not_personal


def test_every_text_field_is_declared_personal_or_not_by_a_registered_redactor():
    personal, not_personal = _declared()
    undeclared, twice = [], []
    existing: set[tuple[str, str]] = set()
    for model in app_models():
        label = model._meta.label
        for field in text_fields(model):
            existing.add((label, field.name))
            is_personal = field.name in personal.get(label, set())
            is_not = field.name in not_personal.get(label, set())
            if not (is_personal or is_not):
                undeclared.append(f"{label}.{field.name}")
            elif is_personal and is_not:
                twice.append(f"{label}.{field.name}")
    stale = [
        f"{label}.{name}"
        for table in (personal, not_personal)
        for label, names in table.items()
        for name in names
        if (label, name) not in existing
    ]
    assert undeclared == [], (
        "fields that may hold personal data but no redactor module declares: add each to "
        "PERSONAL_FIELDS (and erase it in the app's customer_redact) or NOT_PERSONAL_FIELDS"
    )
    assert twice == []
    assert stale == [], "declared fields that no model has"


# --- the shopper, everywhere ---------------------------------------------------------------

EMAIL = "augusta.byronsdottir@example.com"
PHONES = ("+1 212-555-0123", "(212) 555-0123", "+12125550123", "212.555.0123")
FIRST, LAST = "Augusta", "Byronsdottir"
OTHER_EMAIL = "grace.hopperfield@example.org"
OTHER_PHONE = "+44 20 7946 0958"


class Spellings:
    """The shopper's identifiers, a different spelling at every call, fit to a field's size."""

    def __init__(self, email: str, phones: tuple[str, ...], first: str, last: str) -> None:
        self.email, self.phones, self.first, self.last = email, phones, first, last
        self.calls = 0

    def text(self, max_length: int | None = None) -> str:
        self.calls += 1
        phone = self.phones[self.calls % len(self.phones)]
        email = self.email.upper() if self.calls % 2 else self.email
        options = [
            f"Note for {self.first} {self.last}: write to {email} or call {phone}.",
            f"{email} {phone}",
            email,
            phone,
            self.last,
        ]
        return next(o for o in options if max_length is None or len(o) <= max_length)

    def json(self) -> dict[str, Any]:
        return {"email": self.email, "note": self.text(), "nested": [{"phone": self.phones[0]}]}


def _fill(instance: Any, fields: set[str], who: Spellings) -> None:
    """Every personal field of ``instance``, filled with the shopper's data."""
    for field in text_fields(type(instance)):
        if field.name not in fields:
            continue
        if field.get_internal_type() == "FileField":
            getattr(instance, field.name).save(
                f"{who.last}.txt", ContentFile(who.text().encode()), save=False
            )
        elif field.get_internal_type() == "JSONField":
            setattr(instance, field.name, who.json())
        else:
            setattr(instance, field.name, who.text(field.max_length))
    instance.save()


def _shopper(shop: Shop, *, shopify_id: int, who: Spellings, customer_id: int) -> dict[str, Any]:
    """One shopper's order and a row of every model that keeps personal data about them."""
    order = Order.objects.create(
        shop=shop,
        shopify_id=shopify_id,
        name=f"#{shopify_id}",
        customer_id=customer_id,
        currency="USD",
        total_price=Decimal("50.00"),
        shipping_country_code="US",
        shopify_created_at=timezone.now(),
    )
    line = LineItem.objects.create(
        shop=shop, order=order, shopify_id=shopify_id * 10, title="Linen shirt", quantity=1
    )
    shipment = Shipment.objects.create(shop=shop, order=order, fulfillment_id=shopify_id * 100)
    request = ReturnRequest.objects.create(
        shop=shop, order=order, resolution="refund", customer_id=customer_id
    )
    return_line = ReturnLineItem.objects.create(
        shop=shop, return_request=request, line_item=line, quantity=1, reason="OTHER"
    )
    sequence = Sequence.objects.get_or_create(
        shop=shop, key="shipped", defaults={"name": "Shipped", "trigger": "shipped"}
    )[0]
    step = SequenceStep.objects.get_or_create(
        shop=shop, sequence=sequence, defaults={"template_key": "shipped"}
    )[0]
    now = timezone.now()
    rows: dict[str, Callable[[], Any]] = {
        "shopapp.Order": lambda: order,
        "shopapp.OrderEvent": lambda: OrderEvent(
            shop=shop, order=order, kind="note", occurred_at=now, source="staff"
        ),
        "shopapp.WebhookEvent": lambda: WebhookEvent(
            shop=shop,
            shop_domain=shop.myshopify_domain,
            webhook_id=f"w-{shopify_id}",
            topic="orders/create",
            order_shopify_id=shopify_id,
            status="processed",
        ),
        "shopapp.CustomerDataExport": lambda: CustomerDataExport(
            shop=shop, customer_id=customer_id
        ),
        "shopapp.Task": lambda: Task(shop=shop, job="x.y", run_after=now, status="failed"),
        "tracking.TrackingEvent": lambda: TrackingEvent(
            shop=shop, shipment=shipment, shopify_id=shopify_id, status="delivered", happened_at=now
        ),
        "tracking.Delay": lambda: Delay(
            shop=shop,
            order=order,
            shipment=shipment,
            kind="no_movement",
            dedupe_key=f"d-{shopify_id}",
            detected_at=now,
        ),
        "tracking.ProblemCase": lambda: ProblemCase(
            shop=shop, order=order, shipment=shipment, kind="damaged", reported_by="shopper"
        ),
        "returns.ReturnRequest": lambda: request,
        "returns.ReturnLineItem": lambda: return_line,
        "returns.ReturnPhoto": lambda: ReturnPhoto(
            shop=shop, return_line_item=return_line, content_type="image/jpeg", size_bytes=64
        ),
        "returns.ReturnBlocklistEntry": lambda: ReturnBlocklistEntry(shop=shop),
        "notifications.Message": lambda: Message(
            shop=shop, order=order, step=step, trigger="shipped", channel="email", due_at=now
        ),
        "notifications.ShipmentFacts": lambda: ShipmentFacts(
            shop=shop,
            order=order,
            fulfillment_id=shopify_id * 100,
            stage="shipped",
            happened_at=now,
        ),
        "notifications.ReturnFacts": lambda: ReturnFacts(
            shop=shop, order=order, return_id=request.pk, status="open", happened_at=now
        ),
        "notifications.Suppression": lambda: Suppression(
            shop=shop, channel="email", reason="unsubscribed"
        ),
        # (built after the message it answers: the rows are made in this order)
        "notifications.ReviewAnswer": lambda: ReviewAnswer(
            shop=shop, order=order, message=made["notifications.Message"], rating=3, answered_at=now
        ),
    }
    personal, _ = _declared()
    missing = set(personal) - set(rows)
    assert not missing, f"the test has no row for {missing}: add one to _shopper"
    made = {}
    for label, build in rows.items():
        instance = build()
        _fill(instance, personal[label], who)
        made[label] = instance
    # Rows found by the shopper's address rather than their order.
    Suppression.objects.filter(pk=made["notifications.Suppression"].pk).update(address=who.email)
    Suppression.objects.create(
        shop=shop,
        channel="sms",
        address=phone_to_e164(who.phones[0], region="US"),
        reason="unsubscribed",
    )
    ReturnBlocklistEntry.objects.filter(pk=made["returns.ReturnBlocklistEntry"].pk).update(
        email=who.email
    )
    Order.objects.filter(pk=order.pk).update(
        email=who.email,
        phone=who.phones[0],
        customer_first_name=who.first,
        customer_last_name=who.last,
    )
    return made


def _needles(email: str, phone: str, first: str, last: str) -> Needles:
    return Needles.build(emails=[email], phones=[phone], names=[first, last], region="US")


@pytest.fixture
def shop():
    return Shop.objects.create(myshopify_domain="privacy.myshopify.com", is_active=True)


def test_customer_redact_leaves_no_trace_of_the_shopper_in_any_field(
    client, shop, rq_worker, django_capture_on_commit_callbacks
):
    # given the shopper in every personal field, and another shopper of the same shop
    shopper = _shopper(
        shop, shopify_id=4001, who=Spellings(EMAIL, PHONES, FIRST, LAST), customer_id=77
    )
    _shopper(
        shop,
        shopify_id=4002,
        who=Spellings(OTHER_EMAIL, (OTHER_PHONE,), "Grace", "Hopperfield"),
        customer_id=78,
    )
    files = [
        shopper["returns.ReturnPhoto"].image.path,
        shopper["returns.ReturnRequest"].label_file.path,
    ]
    needles = _needles(EMAIL, PHONES[0], FIRST, LAST)
    assert len(traces(needles)) >= 20

    # when Shopify sends customers/redact, signed, and a worker processes it
    payload = {
        "shop_id": 1,
        "shop_domain": shop.myshopify_domain,
        "customer": {"id": 77, "email": EMAIL, "phone": "+12125550123"},
        "orders_to_redact": [4001],
    }
    with django_capture_on_commit_callbacks(execute=True):
        response = post_webhook(
            client,
            "customers/redact",
            json.dumps(payload).encode(),
            shop_domain=shop.myshopify_domain,
        )
    assert response.status_code == 200
    rq_worker()

    # then no field of any row holds them, in any spelling, and their files are gone
    assert [str(t) for t in traces(needles)] == []
    for path in files:
        with pytest.raises(FileNotFoundError):
            open(path, "rb")  # noqa: SIM115 - only its absence matters
    # and the other shopper keeps everything
    other = _needles(OTHER_EMAIL, OTHER_PHONE, "Grace", "Hopperfield")
    assert len(traces(other)) >= 20
    assert Order.objects.get(shop=shop, shopify_id=4002).email == OTHER_EMAIL


def test_shop_redact_leaves_no_row_and_no_file_of_the_shop(
    client, shop, rq_worker, django_capture_on_commit_callbacks
):
    # given the shop's data, its files, and the shop uninstalled 48 hours ago
    made = _shopper(
        shop, shopify_id=5001, who=Spellings(EMAIL, PHONES, FIRST, LAST), customer_id=77
    )
    files = [made["returns.ReturnPhoto"].image.path, made["returns.ReturnRequest"].label_file.path]
    Shop.objects.filter(pk=shop.pk).update(
        is_active=False, uninstalled_at=timezone.now() - timedelta(hours=48)
    )

    # when Shopify sends shop/redact
    payload = {"shop_id": 1, "shop_domain": shop.myshopify_domain}
    with django_capture_on_commit_callbacks(execute=True):
        response = post_webhook(
            client, "shop/redact", json.dumps(payload).encode(), shop_domain=shop.myshopify_domain
        )
    assert response.status_code == 200
    rq_worker()

    # then nothing of the shop is left but the record that it was done, and no file
    assert not Shop.objects.filter(pk=shop.pk).exists()
    for model in app_models():
        shop_field = next((f for f in model._meta.concrete_fields if f.name == "shop"), None)
        if shop_field is not None:
            assert not model.objects.filter(shop_id=shop.pk).exists(), model._meta.label
    assert [str(t) for t in traces(_needles(EMAIL, PHONES[0], FIRST, LAST))] == []
    for path in files:
        with pytest.raises(FileNotFoundError):
            open(path, "rb")  # noqa: SIM115
