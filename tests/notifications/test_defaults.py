"""Default sequences: created at install, idempotent, never overwriting the merchant's edits."""

import pytest

from notifications.defaults import DEFAULT_SEQUENCES, notification_defaults_install
from notifications.models import Sequence, SequenceStep
from shopapp.auth.services import shop_after_install
from shopapp.models import Shop

pytestmark = pytest.mark.django_db


@pytest.fixture
def shop() -> Shop:
    return Shop.objects.create(myshopify_domain="alpha.myshopify.com", is_active=True)


def test_install_creates_the_default_sequences(shop):
    # when
    created = notification_defaults_install(shop=shop)
    # then
    keys = list(Sequence.objects.filter(shop=shop).values_list("key", flat=True))
    assert keys == [spec.key for spec in DEFAULT_SEQUENCES]
    assert [s.key for s in created] == keys
    assert {
        "shipped",
        "out_for_delivery",
        "delivery_issue",
        "delayed",
        "delivered_review",
        "return_requested",
        "return_approved",
        "return_declined",
        "return_processed",
        "return_closed",
        "order_cancelled",
    } <= set(keys)


def test_order_confirmation_is_off_by_default(shop):
    # when
    notification_defaults_install(shop=shop)
    # then
    confirmed = Sequence.objects.get(shop=shop, key="order_confirmed")
    assert confirmed.trigger == "order_confirmed"
    assert confirmed.is_enabled is False
    assert Sequence.objects.get(shop=shop, key="shipped").is_enabled is True


def test_attempted_delivery_or_problem_is_one_sequence(shop):
    # when
    notification_defaults_install(shop=shop)
    # then
    sequence = Sequence.objects.get(shop=shop, key="delivery_issue")
    assert sequence.trigger == "attempted_delivery"
    assert sequence.extra_triggers == ["problem"]


def test_review_request_follows_delivery_by_seven_days_unless_returned(shop):
    # when
    notification_defaults_install(shop=shop)
    # then
    steps = list(
        SequenceStep.objects.filter(sequence__shop=shop, sequence__key="delivered_review")
        .order_by("position")
        .values_list("template_key", "delay_minutes", "delay_from", "channel", "conditions")
    )
    assert steps == [
        ("delivered", 0, "trigger", "email", []),
        ("review_request", 7 * 24 * 60, "trigger", "email", ["not_returned", "not_cancelled"]),
    ]


def test_sms_steps_exist_but_are_off(shop):
    # when
    notification_defaults_install(shop=shop)
    # then
    steps = SequenceStep.objects.filter(sequence__shop=shop, sequence__key="out_for_delivery")
    assert sorted(steps.values_list("channel", "is_enabled")) == [
        ("email", True),
        ("sms", False),
    ]
    assert not SequenceStep.objects.filter(shop=shop, channel="sms", is_enabled=True).exists()


def test_every_step_belongs_to_the_shop(shop):
    # when
    notification_defaults_install(shop=shop)
    # then
    assert SequenceStep.objects.exclude(shop=shop).count() == 0
    assert SequenceStep.objects.filter(shop=shop).exclude(sequence__shop=shop).count() == 0


def test_install_twice_creates_nothing_more(shop):
    # given
    notification_defaults_install(shop=shop)
    counts = (Sequence.objects.count(), SequenceStep.objects.count())
    # when
    created = notification_defaults_install(shop=shop)
    # then
    assert created == []
    assert (Sequence.objects.count(), SequenceStep.objects.count()) == counts


def test_reinstall_keeps_the_merchants_edits(shop):
    # given: the merchant turned "shipped" off, changed a delay and deleted a sequence's steps
    notification_defaults_install(shop=shop)
    Sequence.objects.filter(shop=shop, key="shipped").update(is_enabled=False, name="Mine")
    SequenceStep.objects.filter(shop=shop, template_key="review_request").update(
        delay_minutes=3 * 24 * 60
    )
    SequenceStep.objects.filter(shop=shop, sequence__key="delayed").delete()
    # when
    notification_defaults_install(shop=shop)
    # then
    shipped = Sequence.objects.get(shop=shop, key="shipped")
    assert (shipped.is_enabled, shipped.name) == (False, "Mine")
    review = SequenceStep.objects.get(shop=shop, template_key="review_request")
    assert review.delay_minutes == 3 * 24 * 60
    assert not SequenceStep.objects.filter(shop=shop, sequence__key="delayed").exists()


def test_reinstall_restores_a_deleted_default_sequence(shop):
    # given
    notification_defaults_install(shop=shop)
    Sequence.objects.filter(shop=shop, key="delayed").delete()
    # when
    created = notification_defaults_install(shop=shop)
    # then
    assert [s.key for s in created] == ["delayed"]


def test_each_shop_gets_its_own_sequences(shop):
    # given
    other = Shop.objects.create(myshopify_domain="bravo.myshopify.com")
    # when
    notification_defaults_install(shop=shop)
    notification_defaults_install(shop=other)
    # then
    assert Sequence.objects.filter(shop=shop).count() == len(DEFAULT_SEQUENCES)
    assert Sequence.objects.filter(shop=other).count() == len(DEFAULT_SEQUENCES)


def test_after_install_installs_the_defaults(shop, django_capture_on_commit_callbacks):
    # when: the install hook runs (its Shopify jobs are queued on commit, not run here)
    with django_capture_on_commit_callbacks(execute=False):
        shop_after_install(shop=shop)
        shop_after_install(shop=shop)
    # then
    assert Sequence.objects.filter(shop=shop).count() == len(DEFAULT_SEQUENCES)
