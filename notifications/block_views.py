"""The block editor of an email (/app/notifications/templates/<key>/email/<locale>/blocks):
subject, heading, text, button label and colour, with Liquid, and a live preview per language
with the sample order. The HTML editor (admin_views.template_edit) stays for full control.

    GET   the editor, with the saved blocks (or the built-in copy as blocks) and its preview
    POST  Authorization: Bearer; saved → 303 back; a broken block → 422, named, nothing saved
    POST  …/blocks/preview: JSON for the preview pane (never saves)
    POST  …/blocks/test: the blocks as typed, sent with the sample order to the shop's email
"""

from __future__ import annotations

from django import forms
from django.http import Http404, HttpResponse, JsonResponse
from django.utils.translation import gettext
from django.views.decorators.http import require_http_methods, require_POST

from notifications import admin_services, selectors
from notifications.admin_views import NOTICES, _page, _preview, _redirect, _template_target
from notifications.blocks import (
    BLOCK_LABELS,
    BLOCK_MAX_CHARS,
    EmailBlocks,
    blocks_compose,
    blocks_default,
    blocks_supported,
    blocks_validate,
)
from notifications.defaults import LANGUAGE_NAMES, LANGUAGES
from notifications.models import Channel
from notifications.rendering import TemplateProblem
from shopapp.auth.session import session_token_required
from shopapp.branding.selectors import brand_look_or_default
from shopapp.http import ShopRequest


class BlocksForm(forms.Form):
    subject = forms.CharField(max_length=BLOCK_MAX_CHARS["subject"], strip=False)
    heading = forms.CharField(max_length=BLOCK_MAX_CHARS["heading"], strip=False)
    text = forms.CharField(
        required=False, max_length=BLOCK_MAX_CHARS["text"], strip=False, widget=forms.Textarea
    )
    button_label = forms.CharField(required=False, max_length=BLOCK_MAX_CHARS["button_label"])
    accent_color = forms.CharField(required=False, max_length=BLOCK_MAX_CHARS["accent_color"])

    def blocks(self) -> EmailBlocks:
        return EmailBlocks.from_dict(self.cleaned_data)


def _target(request: ShopRequest, key: str, locale: str) -> None:
    _template_target(request, key, Channel.EMAIL, locale)
    if not blocks_supported(key, Channel.EMAIL):
        raise Http404("This email is edited as HTML")


def saved_blocks(request: ShopRequest, key: str, locale: str) -> tuple[EmailBlocks, bool]:
    """The shop's blocks for this email and language, else the built-in copy; and whether the
    shop has its own version."""
    row = selectors.template_get(shop=request.shop, key=key, channel=Channel.EMAIL, locale=locale)
    if row is not None and row.blocks:
        return EmailBlocks.from_dict(row.blocks), True
    return blocks_default(key, locale), row is not None


def blocks_editor(
    request: ShopRequest,
    *,
    key: str,
    locale: str,
    blocks: EmailBlocks,
    problems: list[TemplateProblem] | None = None,
    test_error: str = "",
    status: int = 200,
) -> HttpResponse:
    row = selectors.template_get(shop=request.shop, key=key, channel=Channel.EMAIL, locale=locale)
    problems = problems or []
    errors = [p for p in problems if not p.is_warning]
    preview, preview_error = (None, "")
    if not errors:
        preview, preview_error = _preview(
            request, blocks_compose(key=key, locale=locale, blocks=blocks)
        )
    return _page(
        request,
        "template_blocks.html",
        {
            "tab": "templates",
            "key": key,
            "label": selectors.template_key_label(key),
            "channel": Channel.EMAIL,
            "locale": locale,
            "locale_name": LANGUAGE_NAMES.get(locale, locale),
            "languages": [(code, LANGUAGE_NAMES[code]) for code in LANGUAGES],
            "blocks": blocks,
            "block_labels": BLOCK_LABELS,
            "is_customized": row is not None,
            "is_html_edited": row is not None and not row.blocks,
            "brand_accent": brand_look_or_default(shop=request.shop).accent,
            "errors": errors,
            "warnings": [p for p in problems if p.is_warning],
            "preview": preview,
            "preview_error": preview_error,
            "test_error": test_error,
        },
        status=status,
    )


@session_token_required
@require_http_methods(["GET", "HEAD", "POST"])
def template_blocks_edit(request: ShopRequest, key: str, locale: str) -> HttpResponse:
    _target(request, key, locale)
    if request.method != "POST":
        blocks, _ = saved_blocks(request, key, locale)
        return blocks_editor(request, key=key, locale=locale, blocks=blocks)
    form = BlocksForm(request.POST)
    if not form.is_valid():
        problems = [
            TemplateProblem(
                field,
                None,
                gettext("%(block)s: %(problem)s")
                % {"block": BLOCK_LABELS.get(field, field), "problem": message},
            )
            for field, messages in form.errors.items()
            for message in messages
        ]
        blocks = EmailBlocks.from_dict({k: request.POST.get(k, "") for k in BLOCK_LABELS})
        return blocks_editor(
            request, key=key, locale=locale, blocks=blocks, problems=problems, status=422
        )
    try:
        admin_services.template_blocks_save(
            shop=request.shop, key=key, locale=locale, blocks=form.blocks()
        )
    except admin_services.TemplateInvalid as exc:
        return blocks_editor(
            request,
            key=key,
            locale=locale,
            blocks=form.blocks(),
            problems=exc.problems,
            status=422,
        )
    return _redirect(
        request,
        "embedded:notifications_admin:template_blocks_edit",
        key,
        locale,
        notice="template_saved",
    )


@session_token_required
@require_POST
def template_blocks_preview(request: ShopRequest, key: str, locale: str) -> HttpResponse:
    _target(request, key, locale)
    form = BlocksForm(request.POST)
    if not form.is_valid():
        return JsonResponse({"error": gettext("A block is too long or missing.")}, status=422)
    blocks = form.blocks()
    problems = blocks_validate(blocks)
    errors = [p for p in problems if not p.is_warning]
    rendered, error = (None, "")
    if not errors:
        rendered, error = _preview(request, blocks_compose(key=key, locale=locale, blocks=blocks))
    return JsonResponse(
        {
            "subject": rendered.subject if rendered else "",
            "html": rendered.html if rendered else "",
            "text": rendered.text if rendered else "",
            "error": error or "\n".join(p.message for p in errors),
            "problems": [],
        }
    )


@session_token_required
@require_POST
def template_blocks_test(request: ShopRequest, key: str, locale: str) -> HttpResponse:
    _target(request, key, locale)
    form = BlocksForm(request.POST)
    if not form.is_valid():
        blocks = EmailBlocks.from_dict({k: request.POST.get(k, "") for k in BLOCK_LABELS})
        return blocks_editor(
            request,
            key=key,
            locale=locale,
            blocks=blocks,
            test_error=gettext("A block is missing."),
            status=422,
        )
    blocks = form.blocks()
    errors = [p for p in blocks_validate(blocks) if not p.is_warning]
    if errors:
        return blocks_editor(
            request, key=key, locale=locale, blocks=blocks, problems=errors, status=422
        )
    try:
        admin_services.template_test_send(
            shop=request.shop, source=blocks_compose(key=key, locale=locale, blocks=blocks)
        )
    except admin_services.TestSendUnavailable as exc:
        return blocks_editor(
            request, key=key, locale=locale, blocks=blocks, test_error=str(exc), status=422
        )
    return _redirect(
        request,
        "embedded:notifications_admin:template_blocks_edit",
        key,
        locale,
        notice="test_sent",
    )


__all__ = ["NOTICES", "template_blocks_edit", "template_blocks_preview", "template_blocks_test"]
