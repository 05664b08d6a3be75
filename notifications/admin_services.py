"""What the notifications admin changes: templates, sequences and their steps, suppressions.

Kept apart from ``notifications.services`` (the engine: triggers, scheduling, sending) so the
two can move independently; every function takes the shop first and touches only its rows.
Templates are checked by ``template_validate`` before anything is written: a template with a
syntax error is refused with nothing saved.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext

from notifications import selectors
from notifications.blocks import EmailBlocks, blocks_compose, blocks_validate
from notifications.defaults import sample_context
from notifications.models import (
    Channel,
    Message,
    MessageTemplate,
    NotificationSettings,
    Sequence,
    SequenceStep,
    Suppression,
)
from notifications.rendering import (
    TemplateProblem,
    TemplateRenderError,
    TemplateSource,
    template_source_render,
    template_validate,
)
from notifications.sending import message_resend
from notifications.timeline import describe, message_timeline_record
from shopapp.auth.tokens import token_encrypt
from shopapp.models import OrderEvent, Shop

logger = logging.getLogger(__name__)

# A test email is one SMTP exchange from a web request: never hold the request longer.
TEST_EMAIL_TIMEOUT_SECONDS = 10


class TemplateInvalid(Exception):
    def __init__(self, problems: list[TemplateProblem]) -> None:
        super().__init__("; ".join(p.message for p in problems))
        self.problems = problems


class TestSendUnavailable(Exception):
    """The test cannot be sent (no shop email, the template does not render, SMTP refused)."""


@dataclass(frozen=True)
class StepChange:
    delay_minutes: int
    delay_from: str
    channel: str
    template_key: str
    conditions: list[str]
    is_enabled: bool


def template_save(
    *,
    shop: Shop,
    key: str,
    channel: str,
    locale: str,
    subject: str,
    html_body: str,
    text_body: str,
    sms_body: str,
) -> tuple[MessageTemplate, list[TemplateProblem]]:
    """Store the shop's template for key/channel/locale; returns it and the warnings.

    Raises ``TemplateInvalid`` (nothing written) when any field has an error.
    """
    if channel == Channel.SMS:
        subject = html_body = text_body = ""
    else:
        sms_body = ""
    problems = template_validate(
        subject=subject,
        html_body=html_body,
        text_body=text_body,
        sms_body=sms_body,
        channel=channel,
    )
    errors = [p for p in problems if not p.is_warning]
    if errors:
        raise TemplateInvalid(errors)
    template, _ = MessageTemplate.objects.update_or_create(
        shop=shop,
        key=key,
        channel=channel,
        locale=locale,
        defaults={
            "subject": subject,
            "html_body": html_body,
            "text_body": text_body,
            "sms_body": sms_body,
            "blocks": {},
        },
    )
    logger.info(
        "notifications.template.saved",
        extra={"shop": shop.myshopify_domain, "key": key, "channel": channel, "locale": locale},
    )
    return template, [p for p in problems if p.is_warning]


def template_reset(*, shop: Shop, key: str, channel: str, locale: str) -> bool:
    """Drop the shop's version so the built-in default applies again; True if one existed."""
    deleted, _ = MessageTemplate.objects.filter(
        shop=shop, key=key, channel=channel, locale=locale
    ).delete()
    if deleted:
        logger.info(
            "notifications.template.reset",
            extra={
                "shop": shop.myshopify_domain,
                "key": key,
                "channel": channel,
                "locale": locale,
            },
        )
    return bool(deleted)


def template_test_send(*, shop: Shop, source: TemplateSource) -> str:
    """Render ``source`` with the sample order and email it to the shop's own address.

    An SMS template is emailed too (as its text): the merchant's phone number is not known,
    and a test must not cost an SMS. Returns the address it went to.
    """
    to = (shop.email or "").strip()
    if not to:
        raise TestSendUnavailable(gettext("Your store has no email address yet."))
    try:
        rendered = template_source_render(source=source, context=sample_context(shop=shop))
    except TemplateRenderError as exc:
        raise TestSendUnavailable(str(exc)) from None
    if source.channel == Channel.SMS:
        subject, text, html = f"[Test SMS] {source.key}", rendered.body, ""
    else:
        subject, text, html = f"[Test] {rendered.subject}", rendered.text, rendered.html
    connection = get_connection(timeout=TEST_EMAIL_TIMEOUT_SECONDS)
    message = EmailMultiAlternatives(
        subject=subject,
        body=text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[to],
        connection=connection,
        headers={"Auto-Submitted": "auto-generated"},
    )
    if html:
        message.attach_alternative(html, "text/html")
    try:
        message.send()
    except OSError as exc:
        # smtplib's errors are OSError subclasses; the detail stays in the log.
        logger.warning(
            "notifications.template.test_send_failed",
            extra={"shop": shop.myshopify_domain, "error": type(exc).__name__},
        )
        raise TestSendUnavailable(gettext("The email server refused the test email.")) from None
    logger.info(
        "notifications.template.test_sent",
        extra={"shop": shop.myshopify_domain, "key": source.key, "channel": source.channel},
    )
    return to


def sequence_enabled_set(*, shop: Shop, sequence: Sequence, is_enabled: bool) -> Sequence:
    if sequence.shop_id != shop.pk:
        raise Sequence.DoesNotExist
    sequence.is_enabled = is_enabled
    sequence.save(update_fields=["is_enabled", "updated_at"])
    logger.info(
        "notifications.sequence.toggled",
        extra={"shop": shop.myshopify_domain, "sequence": sequence.key, "enabled": is_enabled},
    )
    return sequence


def sequence_step_update(*, shop: Shop, step: SequenceStep, change: StepChange) -> SequenceStep:
    if step.shop_id != shop.pk:
        raise SequenceStep.DoesNotExist
    with transaction.atomic():
        step.delay_minutes = change.delay_minutes
        step.delay_from = change.delay_from
        step.channel = change.channel
        step.template_key = change.template_key
        step.conditions = list(change.conditions)
        step.is_enabled = change.is_enabled
        step.save()
        # Touch the sequence so its list shows when it last changed.
        Sequence.objects.filter(pk=step.sequence_id, shop=shop).update(updated_at=timezone.now())
    logger.info(
        "notifications.sequence.step_updated",
        extra={"shop": shop.myshopify_domain, "sequence_id": step.sequence_id, "step": step.pk},
    )
    return step


def suppression_remove(*, shop: Shop, suppression: Suppression) -> None:
    if suppression.shop_id != shop.pk:
        raise Suppression.DoesNotExist
    suppression.delete()
    # The address itself is a shopper's: only the channel and reason are logged.
    logger.info(
        "notifications.suppression.removed",
        extra={
            "shop": shop.myshopify_domain,
            "channel": suppression.channel,
            "reason": suppression.reason,
        },
    )


def template_blocks_save(
    *, shop: Shop, key: str, locale: str, blocks: EmailBlocks
) -> tuple[MessageTemplate, list[TemplateProblem]]:
    """Store an email edited as blocks (the blocks and the email composed from them).

    Raises ``TemplateInvalid`` (nothing written) when a block has an error, named by block.
    """
    problems = blocks_validate(blocks)
    errors = [p for p in problems if not p.is_warning]
    if errors:
        raise TemplateInvalid(errors)
    source = blocks_compose(key=key, locale=locale, blocks=blocks)
    # The composition is ours; a failure here is a bug, still refused rather than stored.
    composed = [
        p
        for p in template_validate(
            subject=source.subject,
            html_body=source.html_body,
            text_body=source.text_body,
            channel=Channel.EMAIL,
        )
        if not p.is_warning
    ]
    if composed:
        raise TemplateInvalid(composed)
    template, _ = MessageTemplate.objects.update_or_create(
        shop=shop,
        key=key,
        channel=Channel.EMAIL,
        locale=locale,
        defaults={
            "subject": source.subject,
            "html_body": source.html_body,
            "text_body": source.text_body,
            "sms_body": "",
            "blocks": blocks.as_dict(),
        },
    )
    logger.info(
        "notifications.template.blocks_saved",
        extra={"shop": shop.myshopify_domain, "key": key, "locale": locale},
    )
    return template, [p for p in problems if p.is_warning]


class NothingToResend(ValueError):
    """The order has no message that was sent or failed, or it is already on its way."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def message_resend_last(
    *, shop: Shop, order_id: int, user_id: str, submission_id: str
) -> Message | None:
    """Send the order's last message again (support's "resend", from the order page).

    Once per ``submission_id`` (the button's one-time id): a double click or a retried
    request resends once, and the repeat returns None. The staff request is a line on the
    order's timeline, written in the same transaction as the resend, so a refusal leaves no
    line. Sending goes through the engine's own ``message_resend`` (claims, retries,
    at most one send in flight). Raises NothingToResend when there is nothing to send.
    """
    submission_id = submission_id.strip()[:64]
    if not submission_id:
        raise NothingToResend(gettext("The form is incomplete; reload the page and try again."))
    dedupe_key = f"resend:{order_id}:{submission_id}"
    with transaction.atomic():
        if OrderEvent.objects.filter(shop=shop, dedupe_key=dedupe_key).exists():
            # This click was handled (its message is on its way, no longer "sent").
            return None
        message = selectors.message_last_for_order(shop=shop, order_id=order_id)
        if message is None:
            raise NothingToResend(gettext("No message has been sent for this order yet."))
        recorded = message_timeline_record(
            message,
            kind="notification.resend_requested",
            summary=f"Staff asked to send {describe(message)} again",
            dedupe_key=dedupe_key,
            user_id=user_id[:64],
        )
        if recorded is None:
            return None
        try:
            message = message_resend(shop=shop, message_id=message.pk)
        except ValueError:
            raise NothingToResend(gettext("That message is already on its way.")) from None
    logger.info(
        "notifications.admin.resend_last",
        extra={"shop": shop.myshopify_domain, "message_id": message.pk},
    )
    return message


SETTINGS_FIELDS = (
    "sender_name",
    "reply_to",
    "email_quiet_start",
    "email_quiet_end",
    "sms_quiet_start",
    "sms_quiet_end",
    "combine_shipments_minutes",
    "is_sms_enabled",
    "twilio_account_sid",
    "twilio_from_number",
    "review_page_url",
)


def notification_settings_get(*, shop: Shop) -> NotificationSettings:
    """The shop's settings row, with the defaults when it has none yet (not saved)."""
    return NotificationSettings.objects.filter(shop=shop).first() or NotificationSettings(shop=shop)


def notification_settings_update(
    *, shop: Shop, values: dict, twilio_auth_token: str = ""
) -> NotificationSettings:
    """Save the merchant's settings (``values``: SETTINGS_FIELDS, already validated by
    NotificationSettingsForm). A new Twilio auth token is stored encrypted; an empty one
    keeps what is stored. The token never reaches a log line."""
    with transaction.atomic():
        row, _created = NotificationSettings.objects.select_for_update().get_or_create(shop=shop)
        for name in SETTINGS_FIELDS:
            setattr(row, name, values[name])
        if twilio_auth_token:
            row.twilio_auth_token_encrypted = token_encrypt(plain=twilio_auth_token)
        row.save()
    logger.info(
        "notifications.admin.settings_saved",
        extra={
            "shop": shop.myshopify_domain,
            "sms": row.is_sms_enabled,
            "token_changed": bool(twilio_auth_token),
        },
    )
    return row
