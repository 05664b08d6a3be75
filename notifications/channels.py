"""The two ways a message leaves: email through Django's email framework, SMS through Twilio.

Each sender takes a rendered message, calls ``before_handover()`` at the last moment before the
provider can see the message (after rendering and after the connection is open, so a crash
before it provably sent nothing), and returns the provider's id. Failures are classified:

    TransientSendError   retry with backoff (SMTP 4xx, connection errors, Twilio 5xx/429)
    PermanentSendError   never retried; ``suppress`` names a Suppression reason when the
                         address itself is bad (SMTP 5xx on the recipient, Twilio 21211/21610)

Neither SMTP nor Twilio's Messages API has an idempotency key: a provider that accepted the
message and a worker that died before recording it means the next attempt sends it again. The
stable Message-ID lets receiving systems and humans recognise the duplicate; see
notifications.services for how the window is kept small.
"""

from __future__ import annotations

import logging
import select
import smtplib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import formataddr
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection

logger = logging.getLogger(__name__)

# Twilio answers in well under a second; 10 s covers a slow edge without holding a worker.
TWILIO_TIMEOUT_SECONDS = 10.0
# Used when EMAIL_TIMEOUT is unset: an SMTP server that hangs must not hold a worker forever.
SMTP_TIMEOUT_SECONDS = 10
# https://www.twilio.com/docs/api/errors: 21211 invalid 'To' number, 21610 recipient replied
# STOP (unsubscribed), 21614 not a mobile number, 21612 cannot route to this number.
TWILIO_SUPPRESS_CODES = {21211: "invalid", 21610: "unsubscribed", 21614: "invalid"}
# A body is capped to this many segments: longer texts cost the merchant per segment and
# arrive reassembled badly on some handsets.
SMS_MAX_SEGMENTS = 3


class SendError(Exception):
    def __init__(
        self,
        message: str,
        *,
        code: str = "",
        suppress: str | None = None,
        maybe_delivered: bool = False,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.suppress = suppress
        # The provider may have accepted it before the error (a connection dropped mid-DATA,
        # a read timeout): the next attempt is recorded as a possible duplicate.
        self.maybe_delivered = maybe_delivered


class TransientSendError(SendError):
    """Worth retrying later: the provider or the network had a bad moment."""


class PermanentSendError(SendError):
    """Retrying would fail the same way."""


@dataclass
class EmailToSend:
    to: str
    subject: str
    text: str
    html: str
    from_name: str
    reply_to: str
    message_id: str
    unsubscribe_url: str
    extra_headers: dict[str, str] = field(default_factory=dict)


def email_message_id(message_pk: int) -> str:
    """The Message-ID of a message, the same on every attempt (RFC 5322 §3.6.4)."""
    host = urlsplit(settings.APP_URL).hostname or "localhost"
    return f"<message-{message_pk}@{host}>"


def email_build(email: EmailToSend, *, connection=None) -> EmailMultiAlternatives:
    headers = {
        "Message-ID": email.message_id,
        # RFC 2369 + RFC 8058: the https URL accepts a POST that unsubscribes at once.
        "List-Unsubscribe": f"<{email.unsubscribe_url}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        # RFC 3834: an automated message, so out-of-office replies stay quiet.
        "Auto-Submitted": "auto-generated",
        **email.extra_headers,
    }
    message = EmailMultiAlternatives(
        subject=email.subject,
        body=email.text,
        from_email=formataddr((email.from_name, settings.DEFAULT_FROM_EMAIL))
        if email.from_name
        else settings.DEFAULT_FROM_EMAIL,
        to=[email.to],
        reply_to=[email.reply_to] if email.reply_to else None,
        headers=headers,
        connection=connection,
    )
    if email.html:
        message.attach_alternative(email.html, "text/html")
    return message


def _smtp_error(exc: smtplib.SMTPException) -> SendError:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        code = max(codes) if codes else 0
        if code >= 500:
            # The mailbox does not exist or refuses us: a hard bounce, never retried.
            return PermanentSendError(
                f"recipient refused ({code})", code=f"smtp.{code}", suppress="bounced"
            )
        return TransientSendError(f"recipient deferred ({code})", code=f"smtp.{code}")
    if isinstance(exc, smtplib.SMTPResponseException):
        code = int(exc.smtp_code)
        if 400 <= code < 500:
            return TransientSendError(f"smtp {code}", code=f"smtp.{code}")
        return PermanentSendError(f"smtp {code}", code=f"smtp.{code}")
    # SMTPServerDisconnected and friends: the connection, not the message.
    return TransientSendError(type(exc).__name__, code="smtp.connection")


# SMTP connections are kept open per worker process (and thread) between sends: a send costs a
# MAIL/RCPT/DATA exchange, not a TCP + EHLO (+ STARTTLS + AUTH) handshake. Before a send on a
# connection idle for a while, NOOP checks that the server has not dropped it; if it has, a new
# one is opened, which is safe because nothing of this message was sent yet. Once the message
# is handed over nothing is retried on another connection here (never two sends of one
# message in one attempt): an error drops the connection and goes to the caller as before.
SMTP_PROBE_AFTER_IDLE_S = 2.0
# Providers close long-lived connections or cap messages per connection (Gmail ~100):
# a connection is closed after this many messages or this long, whichever comes first.
SMTP_MAX_MESSAGES_PER_CONNECTION = 100
SMTP_MAX_CONNECTION_AGE_S = 300.0


class _SmtpConnection(threading.local):
    backend: Any = None
    key: tuple = ()
    opened_at: float = 0.0
    last_used_at: float = 0.0
    sent: int = 0


_smtp = _SmtpConnection()


def _smtp_key() -> tuple:
    return (
        settings.EMAIL_BACKEND,
        getattr(settings, "EMAIL_HOST", ""),
        getattr(settings, "EMAIL_PORT", 0),
        getattr(settings, "EMAIL_HOST_USER", ""),
        getattr(settings, "EMAIL_HOST_PASSWORD", ""),
        getattr(settings, "EMAIL_USE_TLS", False),
        getattr(settings, "EMAIL_USE_SSL", False),
        getattr(settings, "EMAIL_TIMEOUT", None),
    )


def smtp_connection_drop() -> None:
    """Close this process's kept connection (quietly: it may be broken already)."""
    backend, _smtp.backend = _smtp.backend, None
    if backend is None:
        return
    try:
        backend.close()
    except Exception:  # noqa: BLE001 - closing a broken connection must not hide the result
        logger.debug("notifications.email.close_failed")


def _smtp_open():
    connection = get_connection(
        fail_silently=False,
        timeout=getattr(settings, "EMAIL_TIMEOUT", None) or SMTP_TIMEOUT_SECONDS,
    )
    try:
        connection.open()
    except smtplib.SMTPException as exc:
        raise _smtp_error(exc) from exc
    except (TimeoutError, OSError) as exc:
        raise TransientSendError(type(exc).__name__, code="smtp.connection") from exc
    now = time.monotonic()
    _smtp.backend, _smtp.key, _smtp.opened_at, _smtp.last_used_at, _smtp.sent = (
        connection,
        _smtp_key(),
        now,
        now,
        0,
    )
    return connection


def _smtp_alive(connection, *, probe: bool) -> bool:
    smtp = getattr(connection, "connection", None)
    if smtp is None:
        # Not an SMTP backend (locmem, console): nothing to lose.
        return True
    sock = getattr(smtp, "sock", None)
    if sock is None:
        return False
    try:
        # Between our commands the server has nothing to say: anything readable is its
        # goodbye (a 421 on idle timeout, or the connection closed). No round trip.
        readable, _, _ = select.select([sock], [], [], 0)
        if readable:
            return False
        if not probe:
            return True
        code, _ = smtp.noop()
    except (smtplib.SMTPException, OSError, ValueError):
        return False
    return code == 250


def smtp_connection_get():
    """This process's open connection to the configured email backend, opened if needed.
    Raises TransientSendError when none can be opened (nothing was sent)."""
    connection = _smtp.backend
    now = time.monotonic()
    if connection is not None and (
        _smtp.key != _smtp_key()
        or now - _smtp.opened_at > SMTP_MAX_CONNECTION_AGE_S
        or _smtp.sent >= SMTP_MAX_MESSAGES_PER_CONNECTION
        or not _smtp_alive(connection, probe=now - _smtp.last_used_at > SMTP_PROBE_AFTER_IDLE_S)
    ):
        smtp_connection_drop()
        connection = None
    return connection if connection is not None else _smtp_open()


def email_send(email: EmailToSend, *, before_handover: Callable[[], None]) -> str:
    """Send one email through the configured backend; returns its Message-ID."""
    # Open (or check) first: a refused or slow connection fails here, before the handover mark.
    connection = smtp_connection_get()
    message = email_build(email, connection=connection)
    before_handover()
    try:
        sent = connection.send_messages([message])
    except smtplib.SMTPServerDisconnected as exc:
        smtp_connection_drop()
        raise TransientSendError(
            type(exc).__name__, code="smtp.disconnected", maybe_delivered=True
        ) from exc
    except smtplib.SMTPException as exc:
        smtp_connection_drop()
        raise _smtp_error(exc) from exc
    except (TimeoutError, OSError) as exc:
        smtp_connection_drop()
        raise TransientSendError(
            type(exc).__name__, code="smtp.connection", maybe_delivered=True
        ) from exc
    except BaseException:
        # RQ's job timeout (or a shutdown) mid-conversation: the connection's state is unknown.
        smtp_connection_drop()
        raise
    if not sent:
        smtp_connection_drop()
        raise TransientSendError("backend sent nothing", code="smtp.not_sent")
    _smtp.sent += 1
    _smtp.last_used_at = time.monotonic()
    return email.message_id


# --- SMS ---------------------------------------------------------------------------------

# GSM 03.38 basic character set (one septet each) and its extension table (two septets).
_GSM7_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENDED = set("^{}\\[~]|€\f")


def _gsm7_length(text: str) -> int | None:
    """Septets needed in GSM-7, or None when the text needs UCS-2."""
    total = 0
    for char in text:
        if char in _GSM7_BASIC:
            total += 1
        elif char in _GSM7_EXTENDED:
            total += 2
        else:
            return None
    return total


def _ucs2_length(text: str) -> int:
    # UTF-16 code units: an emoji outside the BMP takes two.
    return len(text.encode("utf-16-le")) // 2


def sms_segments(text: str) -> int:
    """How many SMS segments ``text`` takes (GSM-7: 160 single / 153 per part; UCS-2: 70 / 67)."""
    septets = _gsm7_length(text)
    if septets is not None:
        return 1 if septets <= 160 else -(-septets // 153)
    units = _ucs2_length(text)
    return 1 if units <= 70 else -(-units // 67)


def sms_body_fit(text: str, *, max_segments: int = SMS_MAX_SEGMENTS) -> str:
    """``text`` cut to at most ``max_segments`` segments, ending with an ellipsis if cut."""
    text = text.strip()
    if sms_segments(text) <= max_segments:
        return text
    is_gsm = _gsm7_length(text) is not None
    # "…" is not in GSM-7: using it would turn the whole text into UCS-2 and halve the room.
    ellipsis = "..." if is_gsm else "…"
    limit = max_segments * (153 if is_gsm else 67)
    measure = _gsm7_length if is_gsm else _ucs2_length
    # Walk back from a safe upper bound; texts here are at most a few hundred characters.
    cut = min(len(text), limit)
    while cut > 0:
        candidate = text[:cut].rstrip() + ellipsis
        if (measure(candidate) or 0) <= limit:
            return candidate
        cut -= 1
    return ellipsis


@dataclass
class SmsToSend:
    to: str
    body: str
    account_sid: str
    auth_token: str
    from_number: str


def _twilio_http_client():
    from twilio.http.http_client import TwilioHttpClient

    base_url = (getattr(settings, "TWILIO_API_BASE_URL", "") or "").rstrip("/")

    class _Client(TwilioHttpClient):
        """Twilio's client with its host swapped: twilio 9.x builds absolute URLs on
        api.twilio.com (edge/region only change the subdomain), so tests and local runs point
        it elsewhere by rewriting the URL here."""

        def request(self, method, url, *args, **kwargs):
            if base_url:
                parts = urlsplit(url)
                url = f"{base_url}{parts.path}" + (f"?{parts.query}" if parts.query else "")
            return super().request(method, url, *args, **kwargs)

    quiet = logging.getLogger("notifications.twilio_http")
    # Twilio's client logs requests at INFO; keep them out of our logs (numbers in URLs).
    quiet.setLevel(logging.WARNING)
    return _Client(timeout=TWILIO_TIMEOUT_SECONDS, logger=quiet)


def sms_send(sms: SmsToSend, *, before_handover: Callable[[], None]) -> str:
    """Send one SMS through Twilio's Messages API; returns the message SID."""
    from twilio.base.exceptions import TwilioRestException
    from twilio.rest import Client

    client = Client(sms.account_sid, sms.auth_token, http_client=_twilio_http_client())
    before_handover()
    try:
        created = client.messages.create(to=sms.to, from_=sms.from_number, body=sms.body)
    except TwilioRestException as exc:
        status = int(exc.status or 0)
        code = int(exc.code or 0)
        if status == 429 or status >= 500:
            raise TransientSendError(f"twilio {status}", code=f"twilio.{code}") from exc
        raise PermanentSendError(
            f"twilio {code or status}",
            code=f"twilio.{code or status}",
            suppress=TWILIO_SUPPRESS_CODES.get(code),
        ) from exc
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise TransientSendError(
            type(exc).__name__,
            code="twilio.connection",
            # A read timeout: Twilio may have queued the message before we stopped waiting.
            maybe_delivered=isinstance(exc, requests.ReadTimeout),
        ) from exc
    return str(created.sid)
