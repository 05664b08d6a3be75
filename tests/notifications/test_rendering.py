"""Template rendering: every default in every language, locale fallback, the sandbox, escaping,
and save-time validation."""

import re
import time

import pytest

from notifications.defaults import (
    ALL_TEMPLATE_KEYS,
    LANGUAGES,
    RETURN_LINK_KEYS,
    TRACKING_LINK_KEYS,
    sample_context,
)
from notifications.models import MessageTemplate
from notifications.rendering import (
    TemplateRenderError,
    TemplateSource,
    template_render,
    template_source_render,
    template_validate,
)
from shopapp.models import Shop

pytestmark = pytest.mark.django_db

UNRENDERED = re.compile(r"\{\{|\}\}|\{%|%\}|\[\[|\]\]|@button|@items|@greeting")


@pytest.fixture
def shop() -> Shop:
    return Shop.objects.create(
        myshopify_domain="alpha.myshopify.com", name="Alpha Goods", email="owner@alpha.test"
    )


def render_source(channel: str, **fields) -> object:
    source = TemplateSource(key="custom", channel=channel, locale="en", **fields)
    return template_source_render(source=source, context=sample_context())


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("key", ALL_TEMPLATE_KEYS)
def test_every_default_email_renders_in_every_language(shop, language, key):
    # given
    context = sample_context(shop=shop)
    # when
    rendered = template_render(
        shop=shop, key=key, channel="email", locale=language, context=context
    )
    # then
    assert rendered.subject.strip()
    assert "#1001" in rendered.subject
    assert f'<html lang="{language}">' in rendered.html
    assert "Alpha Goods" in rendered.html
    assert context["unsubscribe_url"] in rendered.html
    assert context["unsubscribe_url"] in rendered.text
    for part in (rendered.subject, rendered.html, rendered.text):
        assert not UNRENDERED.search(part), part
    if key in TRACKING_LINK_KEYS:
        assert context["tracking_url"] in rendered.html
        assert context["tracking_url"] in rendered.text
    if key in RETURN_LINK_KEYS:
        assert context["return_url"] in rendered.html
        assert context["return_url"] in rendered.text


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("key", ALL_TEMPLATE_KEYS)
def test_every_default_sms_renders_in_every_language(shop, language, key):
    # given
    context = sample_context(shop=shop)
    # when
    rendered = template_render(shop=shop, key=key, channel="sms", locale=language, context=context)
    # then
    assert rendered.body.startswith("Alpha Goods")
    assert "#1001" in rendered.body
    assert len(rendered.body) <= 320
    assert not UNRENDERED.search(rendered.body)
    if key in TRACKING_LINK_KEYS:
        assert context["tracking_url"] in rendered.body


def test_defaults_are_in_their_own_language(shop):
    # when
    subjects = {
        language: template_render(
            shop=shop, key="shipped", channel="email", locale=language, context=sample_context()
        ).subject
        for language in LANGUAGES
    }
    # then
    assert subjects == {
        "en": "Your order #1001 is on its way",
        "es": "Tu pedido #1001 ya está en camino",
        "fr": "Votre commande #1001 est en route",
        "de": "Deine Bestellung #1001 ist unterwegs",
    }


def test_delivery_issue_template_follows_the_shipment_stage(shop):
    # given
    attempted = {**sample_context(), "shipment": {"stage": "attempted_delivery"}}
    problem = {**sample_context(), "shipment": {"stage": "problem"}}
    # when
    first = template_render(
        shop=shop, key="delivery_issue", channel="email", locale="en", context=attempted
    )
    second = template_render(
        shop=shop, key="delivery_issue", channel="email", locale="en", context=problem
    )
    # then
    assert first.subject == "We tried to deliver your order #1001"
    assert second.subject == "There's a problem with the delivery of #1001"


def test_missing_name_and_shipment_render_without_gaps(shop):
    # given: order-level news, no first name
    context = {
        **sample_context(),
        "customer": {"first_name": ""},
        "shipment": None,
        "shipments": [],
        "progress": None,
    }
    # when
    rendered = template_render(
        shop=shop, key="shipped", channel="email", locale="en", context=context
    )
    # then: the heading, then the greeting (no estimate or progress without a parcel)
    assert rendered.text.startswith("Your order #1001 is on its way\n\nHi there,\n")
    assert "shipped." in rendered.text
    assert " with ." not in rendered.text


def test_unknown_locale_falls_back_to_english(shop):
    # when
    rendered = template_render(
        shop=shop, key="delivered", channel="email", locale="pt", context=sample_context()
    )
    # then
    assert rendered.subject == "Your order #1001 has been delivered"


def test_regional_locale_falls_back_to_its_language(shop):
    # when
    rendered = template_render(
        shop=shop, key="delivered", channel="email", locale="es-MX", context=sample_context()
    )
    # then
    assert rendered.subject == "Tu pedido #1001 ha sido entregado"


def test_shop_template_wins_over_default_and_its_english_over_other_defaults(shop):
    # given: the merchant edited the English "shipped" email only
    MessageTemplate.objects.create(
        shop=shop,
        key="shipped",
        channel="email",
        locale="en",
        subject="Shipped from {{ shop.name }}",
        html_body="<p>Hi</p>",
        text_body="Hi",
    )
    # when
    english = template_render(
        shop=shop, key="shipped", channel="email", locale="en-GB", context=sample_context()
    )
    portuguese = template_render(
        shop=shop, key="shipped", channel="email", locale="pt", context=sample_context()
    )
    # then
    assert english.subject == "Shipped from Your Store"
    assert portuguese.subject == "Shipped from Your Store"


def test_shop_template_in_the_locale_wins_over_its_english_one(shop):
    # given
    for locale, subject in (("en", "English"), ("fr", "Français")):
        MessageTemplate.objects.create(
            shop=shop, key="delivered", channel="email", locale=locale, subject=subject
        )
    # when
    rendered = template_render(
        shop=shop, key="delivered", channel="email", locale="fr-CA", context=sample_context()
    )
    # then
    assert rendered.subject == "Français"


def test_another_shops_template_is_never_used(shop):
    # given
    other = Shop.objects.create(myshopify_domain="bravo.myshopify.com")
    MessageTemplate.objects.create(
        shop=other, key="delivered", channel="email", locale="en", subject="Bravo's"
    )
    # when
    rendered = template_render(
        shop=shop, key="delivered", channel="email", locale="en", context=sample_context()
    )
    # then
    assert rendered.subject == "Your order #1001 has been delivered"


def test_unknown_key_is_a_clear_error(shop):
    # when / then
    with pytest.raises(TemplateRenderError, match="No template 'nope' for email"):
        template_render(shop=shop, key="nope", channel="email", locale="en", context={})


def test_html_body_escapes_shopper_data():
    # given
    context = {**sample_context(), "customer": {"first_name": "<script>alert(1)</script>"}}
    source = TemplateSource(
        key="custom",
        channel="email",
        locale="en",
        subject="Hi {{ customer.first_name }}",
        html_body="<p>Hi {{ customer.first_name }}</p>",
        text_body="Hi {{ customer.first_name }}",
    )
    # when
    rendered = template_source_render(source=source, context=context)
    # then: escaped in HTML, as typed in the plain-text parts
    assert rendered.html == "<p>Hi &lt;script&gt;alert(1)&lt;/script&gt;</p>"
    assert rendered.text == "Hi <script>alert(1)</script>\n"
    assert rendered.subject == "Hi <script>alert(1)</script>"


def test_default_html_escapes_shopper_data(shop):
    # given
    context = {**sample_context(), "customer": {"first_name": "<img src=x onerror=alert(1)>"}}
    # when
    rendered = template_render(
        shop=shop, key="shipped", channel="email", locale="en", context=context
    )
    # then
    assert "<img src=x" not in rendered.html
    assert "&lt;img src=x onerror=alert(1)&gt;" in rendered.html


@pytest.mark.parametrize(
    "source",
    ["{% include 'secrets' %}", "{% render 'secrets' %}", "{% include '/etc/passwd' %}"],
)
def test_include_and_render_tags_are_refused(source):
    # when / then
    with pytest.raises(TemplateRenderError, match="is not available in message templates"):
        render_source("email", subject="x", html_body=source)


def test_huge_loop_is_refused_quickly():
    # given
    source = "{% for i in (1..100000000) %}{{ i }}{% endfor %}"
    started = time.monotonic()
    # when / then
    with pytest.raises(TemplateRenderError, match="A loop runs too many times"):
        render_source("email", subject="x", text_body=source)
    assert time.monotonic() - started < 1.0


def test_many_side_by_side_loops_are_refused():
    # given: each loop is under the nesting limit, their sum is not
    source = "{% for i in (1..9000) %}{% endfor %}" * 10
    # when / then
    with pytest.raises(TemplateRenderError, match="A loop runs too many times"):
        render_source("email", subject="x", text_body=source)


GROWING = '{{ "aaaaaaaaaa"' + ' | replace: "", "aaaaaaaaaa"' * 7 + " }}"


@pytest.mark.parametrize(
    "source",
    [
        pytest.param(GROWING, id="replace-chain"),  # ×11 per filter: 214 MB after 7
        pytest.param(
            '{{ "' + "a" * 20 + '" | split: "" | join: "' + "-" * 20_000 + '" }}', id="join"
        ),
        pytest.param("{{ 99999999" + " | times: 99999999" * 40 + " }}", id="times-chain"),
        pytest.param('{{ "' + "a" * 5000 + '" | replace: "a", "' + "b" * 100 + '" }}', id="one"),
    ],
)
def test_a_value_that_would_grow_too_large_is_refused_before_it_exists(source):
    started = time.monotonic()

    with pytest.raises(TemplateRenderError, match="Text body: A value grows too large"):
        render_source("email", subject="x", text_body=source)

    assert time.monotonic() - started < 1.0


def test_a_render_over_its_time_budget_is_refused_even_without_loops(monkeypatch):
    # given a budget of 50 ms, and 4,000 filters over a 200,000-character value, no loop
    monkeypatch.setattr("notifications.rendering.RENDER_DEADLINE_SECONDS", 0.05)
    big = '"' + "a" * 100 + '" | replace: "a", "' + "a" * 2000 + '"'
    source = "{{ " + big + " | upcase | downcase" * 2000 + " | size }}"
    started = time.monotonic()

    with pytest.raises(TemplateRenderError, match="Text body: Render time limit reached"):
        render_source("email", subject="x", text_body=source)

    assert time.monotonic() - started < 1.0


def test_validate_refuses_a_growing_value_at_save_time():
    problems = template_validate(subject="x", text_body=GROWING, channel="email")

    assert [(p.field, p.message) for p in problems] == [("text_body", "A value grows too large.")]


def test_filters_keep_working_within_the_bounds():
    source = (
        '{{ "a,b" | split: "," | join: "+" | append: "!" | prepend: "<" | replace: "+", "-" }}'
        " {{ 6 | times: 7 | plus: 1 | minus: 1 }} {{ order.name | upcase }}"
    )

    rendered = render_source("email", subject="x", text_body=source)

    assert rendered.text == "<a-b! 42 #1001\n"


def test_huge_output_is_refused():
    # given: 9,000 × 40 bytes = 360 KB > 256 KiB
    source = "{% for i in (1..9000) %}" + "x" * 40 + "{% endfor %}"
    # when / then
    with pytest.raises(TemplateRenderError, match="HTML body: The message is too long"):
        render_source("email", subject="x", html_body=source)


def test_sms_over_1600_characters_is_refused():
    # given
    source = "{% for i in (1..200) %}0123456789{% endfor %}"
    # when / then
    with pytest.raises(TemplateRenderError, match="SMS body"):
        render_source("sms", sms_body=source)


@pytest.mark.parametrize(
    "probe",
    [
        "{{ order.__class__ }}",
        "{{ order.__class__.__mro__ }}",
        "{{ shop.__dict__ }}",
        "{{ order.line_items.__len__ }}",
        "{{ customer.first_name.__class__ }}",
        "{{ settings.SECRET_KEY }}",
        "{{ request.META }}",
        "{{ shop.access_token_encrypted }}",
        "{{ order._state }}",
    ],
)
def test_probes_outside_the_context_render_nothing(probe):
    # when
    rendered = render_source("email", subject="s", text_body=f"[{probe}]")
    # then
    assert rendered.text == "[]\n"


def test_model_instances_in_the_context_are_dropped(shop):
    # given: a careless caller passes the Shop model itself
    context = {**sample_context(), "shop": shop, "order": {"name": "#7", "shop": shop}}
    # when
    rendered = render_source_with(context, "[{{ shop.myshopify_domain }}|{{ order.shop }}]")
    # then
    assert rendered.text == "[|]\n"


def render_source_with(context, text_body):
    source = TemplateSource(
        key="custom", channel="email", locale="en", subject="s", text_body=text_body
    )
    return template_source_render(source=source, context=context)


def test_variables_outside_the_contract_are_not_passed():
    # given
    context = {**sample_context(), "secret": "hunter2"}
    # when
    rendered = render_source_with(context, "[{{ secret }}]")
    # then
    assert rendered.text == "[]\n"


def test_subject_newlines_are_folded():
    # when
    rendered = render_source("email", subject="Hello\r\nBcc: evil@example.com")
    # then
    assert rendered.subject == "Hello Bcc: evil@example.com"


def test_validate_reports_syntax_error_with_line_and_message():
    # when
    problems = template_validate(
        subject="Order {{ order.name }}",
        html_body="<p>one</p>\n<p>two</p>\n{% if order.name %}\n<p>three",
        text_body="fine\n{{ order.name | nosuchfilter }}",
        channel="email",
    )
    # then
    errors = [(p.field, p.line, p.message) for p in problems if not p.is_warning]
    assert errors == [
        ("html_body", 4, "Expected tag endif, found end of expression"),
        ("text_body", 2, "Unknown filter 'nosuchfilter'"),
    ]


def test_validate_reports_unclosed_output_on_its_line():
    # when
    problems = template_validate(subject="a", text_body="a\nb\n{{ order.name", channel="email")
    # then
    assert [(p.field, p.line) for p in problems] == [("text_body", 3)]
    assert problems[0].message


def test_validate_warns_about_unknown_variables_without_refusing():
    # when
    problems = template_validate(
        subject="{{ order.name }}",
        text_body="{{ discount_code }} {{ customer.first_name }}",
        channel="email",
    )
    # then
    assert [(p.field, p.message, p.is_warning) for p in problems] == [
        ("text_body", "Unknown variable 'discount_code' renders as nothing.", True)
    ]


def test_validate_refuses_include_and_limits_at_save_time():
    # when
    problems = template_validate(
        subject="x",
        html_body="{% include 'a' %}",
        text_body="{% for i in (1..100000000) %}{% endfor %}",
        channel="email",
    )
    # then
    assert [(p.field, p.message) for p in problems] == [
        ("html_body", "The 'include' tag is not available in message templates."),
        ("text_body", "A loop runs too many times."),
    ]


def test_validate_needs_a_subject_for_email_and_a_body_for_sms():
    # when
    email = template_validate(subject="  ", html_body="<p>x</p>", channel="email")
    sms = template_validate(sms_body="", channel="sms")
    # then
    assert [(p.field, p.message) for p in email] == [("subject", "An email needs a subject.")]
    assert [(p.field, p.message) for p in sms] == [("sms_body", "An SMS needs a body.")]
