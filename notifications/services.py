"""Notifications' state changes, by stage of a message's life:

    triggers.py   news from tracking, returns and the platform ─▶ Message rows (scheduled)
    dispatch.py   cron, every minute: due rows claimed and handed to RQ
    sending.py    one job per message: checks, quiet hours, render, provider, outcome
    facts.py      the latest news about each parcel and return (what sends check against)
    recipients.py addresses, time zones, quiet hours
    privacy.py, subscribers.py   what the platform's subscriber tables call

Other apps call ``notification_trigger`` with a typed fact from ``notifications.news``; this
module names the public API in one place.
"""

from notifications.dispatch import (
    DISPATCH_BATCH,
    QUEUE_LEASE,
    RETRY_INTERVALS_SECONDS,
    SEND_JOB_TIMEOUT_SECONDS,
    SEND_LEASE,
    SEND_QUEUE,
    messages_dispatch_due,
    messages_enqueue,
)
from notifications.recipients import (
    SkipReason,
    notification_settings_for,
    phone_to_e164,
    quiet_hours_end,
    recipient_timezone,
)
from notifications.sending import (
    ClaimLost,
    message_resend,
    message_send,
    message_send_attempt_failed,
    suppression_add,
)
from notifications.triggers import messages_cancel, notification_news_record, notification_trigger

__all__ = [
    "DISPATCH_BATCH",
    "QUEUE_LEASE",
    "RETRY_INTERVALS_SECONDS",
    "SEND_JOB_TIMEOUT_SECONDS",
    "SEND_LEASE",
    "SEND_QUEUE",
    "ClaimLost",
    "SkipReason",
    "message_resend",
    "message_send",
    "message_send_attempt_failed",
    "messages_cancel",
    "messages_dispatch_due",
    "messages_enqueue",
    "notification_news_record",
    "notification_settings_for",
    "notification_trigger",
    "phone_to_e164",
    "quiet_hours_end",
    "recipient_timezone",
    "suppression_add",
]
