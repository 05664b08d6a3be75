"""The notifications pages of the embedded admin, under /app/notifications/.

    GET  pages            document loads: ``id_token`` in the URL, as everywhere under /app/
    POST actions          ``Authorization: Bearer`` only (notifications/static/…/admin.js sends
                          the form with fetch); success → 303 to the page, a refused form →
                          the page again with its errors (422), nothing changed

Each view parses, checks, calls one selector or service, and renders in the shop's admin shell.
Another shop's sequence, step, template, message or suppression answers 404, like a missing one.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlencode

from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, HttpResponseRedirect, JsonResponse
from django.urls import reverse
from django.utils.translation import gettext, gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from notifications import admin_services, selectors, services
from notifications.defaults import LANGUAGE_NAMES, LANGUAGES, default_template_get, sample_context
from notifications.forms import (
    LOCALE_PATTERN,
    TEMPLATE_KEY_PATTERN,
    MessageFilterForm,
    NotificationSettingsForm,
    StepForm,
    TemplateForm,
    delay_label,
)
from notifications.models import Channel, Message, MessageTemplate, Sequence, Trigger
from notifications.rendering import (
    Rendered,
    TemplateRenderError,
    TemplateSource,
    template_source_render,
    template_validate,
)
from shopapp.auth.session import session_token_required
from shopapp.embedded.views import embedded_redirect, embedded_render, nav_query, staff_user_id
from shopapp.http import ShopRequest
from shopapp.orders.selectors import order_get

logger = logging.getLogger(__name__)

MESSAGES_PER_PAGE = 50
SUPPRESSIONS_PER_PAGE = 50
# Statuses a merchant may send again: the engine gave up on them or chose not to send.
RESENDABLE = frozenset({Message.Status.FAILED, Message.Status.SKIPPED})

NOTICES = {
    "sequence_enabled": gettext_lazy("Sequence turned on."),
    "sequence_disabled": gettext_lazy("Sequence turned off."),
    "step_saved": gettext_lazy("Step saved."),
    "template_saved": gettext_lazy("Template saved."),
    "template_reset": gettext_lazy("Template reset to the default."),
    "test_sent": gettext_lazy("Test email sent to your store's email address."),
    "resent": gettext_lazy("Message queued to be sent again."),
    "suppression_removed": gettext_lazy("Address removed from the suppression list."),
    "settings_saved": gettext_lazy("Settings saved."),
}


# The editor's fields as the page names them (notifications.rendering keeps its own English
# names for the engine's messages).
EDITOR_FIELD_LABELS = {
    "subject": gettext_lazy("Subject"),
    "html_body": gettext_lazy("HTML body"),
    "text_body": gettext_lazy("Text body"),
    "sms_body": gettext_lazy("SMS body"),
}


def _trigger_label(value: str) -> str:
    try:
        return str(Trigger(value).label)
    except ValueError:
        return value.replace("_", " ")


def _starts_when(sequence: Sequence) -> str:
    """ "Shipped or In transit": the sequence's triggers in the admin's language."""
    text = _trigger_label(sequence.trigger)
    for extra in sequence.extra_triggers or []:
        text = gettext("%(triggers)s or %(trigger)s") % {
            "triggers": text,
            "trigger": _trigger_label(extra),
        }
    return text


def _redirect(request: ShopRequest, name: str, *args: Any, notice: str = "") -> HttpResponse:
    query = nav_query(request)
    if notice:
        query += "&" + urlencode({"notice": notice})
    return HttpResponseRedirect(f"{reverse(name, args=args)}?{query}", status=303)


def _page(request: ShopRequest, template: str, context: dict, status: int = 200) -> HttpResponse:
    notice = str(NOTICES.get(request.GET.get("notice", ""), ""))
    return embedded_render(
        request,
        f"notifications/admin/{template}",
        {"nav": "notifications", "notice": notice, **context},
        status=status,
    )


# -- sequences --------------------------------------------------------------------------------


def _template_choices(request: ShopRequest) -> list[tuple[str, str]]:
    return [
        (key, selectors.template_key_label(key))
        for key in selectors.template_keys(shop=request.shop)
    ]


@session_token_required
@require_GET
def sequence_list(request: ShopRequest) -> HttpResponse:
    rows = [
        {
            "sequence": sequence,
            "name": selectors.sequence_display_name(sequence),
            "starts_when": _starts_when(sequence),
            "steps": [
                {"step": step, "delay": delay_label(step.delay_minutes)}
                for step in sequence.steps.all()
            ],
        }
        for sequence in selectors.sequence_list(shop=request.shop)
    ]
    return _page(request, "sequence_list.html", {"rows": rows, "tab": "sequences"})


@session_token_required
@require_POST
def sequence_toggle(request: ShopRequest, sequence_id: int) -> HttpResponse:
    sequence = selectors.sequence_get(shop=request.shop, sequence_id=sequence_id)
    if sequence is None:
        raise Http404("No such sequence")
    is_enabled = request.POST.get("is_enabled") == "1"
    admin_services.sequence_enabled_set(shop=request.shop, sequence=sequence, is_enabled=is_enabled)
    notice = "sequence_enabled" if is_enabled else "sequence_disabled"
    back = request.POST.get("next") == "detail"
    if back:
        return _redirect(
            request, "embedded:notifications_admin:sequence_detail", sequence.pk, notice=notice
        )
    return _redirect(request, "embedded:notifications_admin:sequence_list", notice=notice)


def _sequence_page(
    request: ShopRequest, sequence, *, bound: StepForm | None = None, bound_id: int | None = None
) -> HttpResponse:
    choices = _template_choices(request)
    steps = []
    for step in selectors.sequence_step_list(shop=request.shop, sequence=sequence):
        if bound is not None and step.pk == bound_id:
            form = bound
        else:
            form = StepForm(
                initial=StepForm.initial_for(step),
                template_keys=choices,
                prefix=f"step-{step.pk}",
            )
        steps.append({"step": step, "form": form})
    return _page(
        request,
        "sequence_detail.html",
        {
            "sequence": sequence,
            "name": selectors.sequence_display_name(sequence),
            "starts_when": _starts_when(sequence),
            "steps": steps,
            "tab": "sequences",
        },
        status=422 if bound is not None else 200,
    )


@session_token_required
@require_GET
def sequence_detail(request: ShopRequest, sequence_id: int) -> HttpResponse:
    sequence = selectors.sequence_get(shop=request.shop, sequence_id=sequence_id)
    if sequence is None:
        raise Http404("No such sequence")
    return _sequence_page(request, sequence)


@session_token_required
@require_POST
def sequence_step_update(request: ShopRequest, sequence_id: int, step_id: int) -> HttpResponse:
    step = selectors.sequence_step_get(shop=request.shop, sequence_id=sequence_id, step_id=step_id)
    if step is None:
        raise Http404("No such step")
    form = StepForm(
        request.POST, template_keys=_template_choices(request), prefix=f"step-{step.pk}"
    )
    if not form.is_valid():
        return _sequence_page(request, step.sequence, bound=form, bound_id=step.pk)
    data = form.cleaned_data
    admin_services.sequence_step_update(
        shop=request.shop,
        step=step,
        change=admin_services.StepChange(
            delay_minutes=data["delay_minutes"],
            delay_from=data["delay_from"],
            channel=data["channel"],
            template_key=data["template_key"],
            conditions=list(data["conditions"]),
            is_enabled=data["is_enabled"],
        ),
    )
    return _redirect(
        request,
        "embedded:notifications_admin:sequence_detail",
        step.sequence_id,
        notice="step_saved",
    )


# -- templates --------------------------------------------------------------------------------


def _template_target(request: ShopRequest, key: str, channel: str, locale: str) -> None:
    """404 for anything that is not a template of this shop (or a built-in one)."""
    if channel not in Channel.values:
        raise Http404("No such channel")
    if not TEMPLATE_KEY_PATTERN.match(key) or not LOCALE_PATTERN.match(locale):
        raise Http404("No such template")
    if key not in selectors.template_keys(shop=request.shop):
        raise Http404("No such template")


def _saved_source(request: ShopRequest, key: str, channel: str, locale: str) -> TemplateSource:
    """The shop's row for exactly this locale, else the built-in default it starts from."""
    row: MessageTemplate | TemplateSource | None = selectors.template_get(
        shop=request.shop, key=key, channel=channel, locale=locale
    )
    is_default = row is None
    if is_default:
        row = default_template_get(key=key, channel=channel, locale=locale)
    if row is None:
        row = default_template_get(key=key, channel=channel, locale="en")
    if row is None:
        return TemplateSource(key=key, channel=channel, locale=locale, is_default=True)
    return TemplateSource(
        key=key,
        channel=channel,
        locale=locale,
        subject=row.subject,
        html_body=row.html_body,
        text_body=row.text_body,
        sms_body=row.sms_body,
        is_default=is_default,
    )


def _source_from(form_data: dict, *, key: str, channel: str, locale: str) -> TemplateSource:
    return TemplateSource(
        key=key,
        channel=channel,
        locale=locale,
        subject=form_data.get("subject", ""),
        html_body=form_data.get("html_body", ""),
        text_body=form_data.get("text_body", ""),
        sms_body=form_data.get("sms_body", ""),
        is_default=False,
    )


def _preview(request: ShopRequest, source: TemplateSource) -> tuple[Rendered | None, str]:
    try:
        rendered = template_source_render(source=source, context=sample_context(shop=request.shop))
    except TemplateRenderError as exc:
        return None, str(exc)
    return rendered, ""


def _editor(
    request: ShopRequest,
    *,
    key: str,
    channel: str,
    locale: str,
    form: TemplateForm,
    source: TemplateSource,
    problems: list | None = None,
    show_preview: bool = True,
    test_error: str = "",
    status: int = 200,
) -> HttpResponse:
    saved = selectors.template_get(shop=request.shop, key=key, channel=channel, locale=locale)
    preview, preview_error = _preview(request, source) if show_preview else (None, "")
    problems = problems or []
    return _page(
        request,
        "template_edit.html",
        {
            "tab": "templates",
            "key": key,
            "label": selectors.template_key_label(key),
            "channel": channel,
            "locale": locale,
            "locale_name": LANGUAGE_NAMES.get(locale, locale),
            "languages": [(code, LANGUAGE_NAMES[code]) for code in LANGUAGES],
            "channels": Channel.choices,
            "is_customized": saved is not None,
            "form": form,
            "errors": [p for p in problems if not p.is_warning],
            "warnings": [p for p in problems if p.is_warning],
            "field_labels": EDITOR_FIELD_LABELS,
            "preview": preview,
            "preview_error": preview_error,
            "test_error": test_error,
        },
        status=status,
    )


@session_token_required
@require_GET
def template_list(request: ShopRequest) -> HttpResponse:
    rows = selectors.template_overview(shop=request.shop)
    return _page(
        request,
        "template_list.html",
        {"rows": rows, "tab": "templates", "language_names": LANGUAGE_NAMES},
    )


@session_token_required
@require_http_methods(["GET", "HEAD", "POST"])
def template_edit(request: ShopRequest, key: str, channel: str, locale: str) -> HttpResponse:
    _template_target(request, key, channel, locale)
    if request.method != "POST" and request.GET.get("mode") != "html":
        # Emails open in the block editor unless the merchant edits (or edited) the HTML.
        from notifications import block_views
        from notifications.blocks import blocks_supported

        saved = selectors.template_get(shop=request.shop, key=key, channel=channel, locale=locale)
        if blocks_supported(key, channel) and (saved is None or saved.blocks):
            blocks, _ = block_views.saved_blocks(request, key, locale)
            return block_views.blocks_editor(request, key=key, locale=locale, blocks=blocks)
    if request.method != "POST":
        source = _saved_source(request, key, channel, locale)
        form = TemplateForm(
            initial={
                "subject": source.subject,
                "html_body": source.html_body,
                "text_body": source.text_body,
                "sms_body": source.sms_body,
            }
        )
        return _editor(request, key=key, channel=channel, locale=locale, form=form, source=source)

    form = TemplateForm(request.POST)
    if not form.is_valid():
        source = _saved_source(request, key, channel, locale)
        return _editor(
            request,
            key=key,
            channel=channel,
            locale=locale,
            form=form,
            source=source,
            show_preview=False,
            status=422,
        )
    try:
        _template, _warnings = admin_services.template_save(
            shop=request.shop, key=key, channel=channel, locale=locale, **form.cleaned_data
        )
    except admin_services.TemplateInvalid as exc:
        return _editor(
            request,
            key=key,
            channel=channel,
            locale=locale,
            form=form,
            source=_source_from(form.cleaned_data, key=key, channel=channel, locale=locale),
            problems=exc.problems,
            show_preview=False,
            status=422,
        )
    return _redirect(
        request,
        "embedded:notifications_admin:template_edit",
        key,
        channel,
        locale,
        notice="template_saved",
    )


@session_token_required
@require_http_methods(["GET", "HEAD", "POST"])
def template_preview(request: ShopRequest, key: str, channel: str, locale: str) -> HttpResponse:
    """Render what is in the editor with the sample order, without saving.

    GET (the Preview button, no JavaScript needed): the editor page again, with the fields as
    sent and the preview below. POST (the live preview's fetch): JSON for the preview pane.
    """
    _template_target(request, key, channel, locale)
    data = request.POST if request.method == "POST" else request.GET
    form = TemplateForm(data)
    if not form.is_valid():
        if request.method == "POST":
            return JsonResponse({"error": gettext("The template is too long.")}, status=422)
        source = _saved_source(request, key, channel, locale)
        return _editor(
            request, key=key, channel=channel, locale=locale, form=form, source=source, status=422
        )
    source = _source_from(form.cleaned_data, key=key, channel=channel, locale=locale)
    problems = template_validate(
        subject=source.subject,
        html_body=source.html_body,
        text_body=source.text_body,
        sms_body=source.sms_body,
        channel=channel,
    )
    if request.method == "POST":
        rendered, error = _preview(request, source)
        return JsonResponse(
            {
                "subject": rendered.subject if rendered else "",
                "html": rendered.html if rendered else "",
                "text": rendered.text if rendered else "",
                "body": rendered.body if rendered else "",
                "error": error,
                "problems": [
                    {
                        "field": EDITOR_FIELD_LABELS.get(p.field, p.field),
                        "line": p.line,
                        "message": p.message,
                        "is_warning": p.is_warning,
                    }
                    for p in problems
                ],
            }
        )
    return _editor(
        request,
        key=key,
        channel=channel,
        locale=locale,
        form=form,
        source=source,
        problems=problems,
    )


@session_token_required
@require_POST
def template_reset(request: ShopRequest, key: str, channel: str, locale: str) -> HttpResponse:
    _template_target(request, key, channel, locale)
    admin_services.template_reset(shop=request.shop, key=key, channel=channel, locale=locale)
    return _redirect(
        request,
        "embedded:notifications_admin:template_edit",
        key,
        channel,
        locale,
        notice="template_reset",
    )


@session_token_required
@require_POST
def template_test(request: ShopRequest, key: str, channel: str, locale: str) -> HttpResponse:
    """Send the editor's content (or, without fields, the saved template) to the shop's email."""
    _template_target(request, key, channel, locale)
    form = TemplateForm(request.POST)
    has_fields = any(name in request.POST for name in form.fields)
    if has_fields and form.is_valid():
        source = _source_from(form.cleaned_data, key=key, channel=channel, locale=locale)
    else:
        source = _saved_source(request, key, channel, locale)
        form = TemplateForm(
            initial={
                "subject": source.subject,
                "html_body": source.html_body,
                "text_body": source.text_body,
                "sms_body": source.sms_body,
            }
        )
    try:
        admin_services.template_test_send(shop=request.shop, source=source)
    except admin_services.TestSendUnavailable as exc:
        # The reason goes on the page, not in a redirect's URL.
        return _editor(
            request,
            key=key,
            channel=channel,
            locale=locale,
            form=form,
            source=source,
            test_error=str(exc),
            status=422,
        )
    return _redirect(
        request,
        "embedded:notifications_admin:template_edit",
        key,
        channel,
        locale,
        notice="test_sent",
    )


# -- message log ------------------------------------------------------------------------------


@session_token_required
@require_GET
def message_list(request: ShopRequest) -> HttpResponse:
    filters = MessageFilterForm(request.GET)
    cleaned = filters.cleaned_data if filters.is_valid() else {}
    messages = selectors.message_list(
        shop=request.shop,
        status=cleaned.get("status", ""),
        channel=cleaned.get("channel", ""),
        order_query=cleaned.get("order", ""),
    )
    page = Paginator(messages, MESSAGES_PER_PAGE).get_page(request.GET.get("page"))
    filter_query = urlencode({k: v for k, v in cleaned.items() if v})
    return _page(
        request,
        "message_list.html",
        {
            "tab": "messages",
            "filters": filters,
            "page": page,
            "rows": [
                {
                    "message": message,
                    "sequence_name": selectors.sequence_display_name(message.step.sequence),
                }
                for message in page.object_list
            ],
            "filter_query": filter_query,
            "counts": selectors.message_status_counts(shop=request.shop),
            "resendable": {s.value for s in RESENDABLE},
            "statuses": Message.Status.choices,
        },
    )


@session_token_required
@require_POST
def message_resend(request: ShopRequest, message_id: int) -> HttpResponse:
    message = selectors.message_get(shop=request.shop, message_id=message_id)
    if message is None:
        raise Http404("No such message")
    if message.status not in RESENDABLE:
        return HttpResponse(
            gettext("Only failed or skipped messages can be sent again."), status=409
        )
    # The engine owns sending (claims, retries, exactly-once): resend goes through it.
    try:
        services.message_resend(shop=request.shop, message_id=message.pk)
    except ValueError:
        return HttpResponse(gettext("This message is already on its way."), status=409)
    return _redirect(request, "embedded:notifications_admin:message_list", notice="resent")


@session_token_required
@require_POST
def order_resend_last(request: ShopRequest, order_id: int) -> HttpResponse:
    """ "Resend the last message" on the order page (``order_id``: Shopify's, as in its URL);
    back to the order page with the outcome."""
    order = order_get(shop=request.shop, order_id=order_id)
    if order is None:
        raise Http404("No such order")
    try:
        admin_services.message_resend_last(
            shop=request.shop,
            order_id=order.pk,
            user_id=staff_user_id(request),
            submission_id=request.POST.get("submission_id", ""),
        )
    except admin_services.NothingToResend as refused:
        return HttpResponse(refused.message, status=409, content_type="text/plain")
    return embedded_redirect(
        request, "embedded:order_detail", order.shopify_id, notice="resent", fragment="timeline"
    )


# -- settings ---------------------------------------------------------------------------------


@session_token_required
@require_http_methods(["GET", "POST"])
def settings_page(request: ShopRequest) -> HttpResponse:
    row = admin_services.notification_settings_get(shop=request.shop)
    has_token = bool(row.twilio_auth_token_encrypted)
    if request.method == "POST":
        form = NotificationSettingsForm(request.POST, has_stored_token=has_token)
        if form.is_valid():
            admin_services.notification_settings_update(
                shop=request.shop,
                values={name: form.cleaned_data[name] for name in admin_services.SETTINGS_FIELDS},
                twilio_auth_token=form.cleaned_data["twilio_auth_token"],
            )
            return _redirect(
                request, "embedded:notifications_admin:settings", notice="settings_saved"
            )
        status = 400
    else:
        form = NotificationSettingsForm(
            initial={name: getattr(row, name) for name in admin_services.SETTINGS_FIELDS},
            has_stored_token=has_token,
        )
        status = 200
    return _page(
        request,
        "settings.html",
        {"tab": "settings", "form": form, "has_token": has_token},
        status=status,
    )


# -- suppressions -----------------------------------------------------------------------------


@session_token_required
@require_GET
def suppression_list(request: ShopRequest) -> HttpResponse:
    query = request.GET.get("q", "")[:255]
    suppressions = selectors.suppression_list(shop=request.shop, query=query)
    page = Paginator(suppressions, SUPPRESSIONS_PER_PAGE).get_page(request.GET.get("page"))
    return _page(
        request,
        "suppression_list.html",
        {"tab": "suppressions", "page": page, "query": query},
    )


@session_token_required
@require_POST
def suppression_remove(request: ShopRequest, suppression_id: int) -> HttpResponse:
    suppression = selectors.suppression_get(shop=request.shop, suppression_id=suppression_id)
    if suppression is None:
        raise Http404("No such suppression")
    admin_services.suppression_remove(shop=request.shop, suppression=suppression)
    return _redirect(
        request, "embedded:notifications_admin:suppression_list", notice="suppression_removed"
    )
