"""Who receives a message and when: the recipient's address, time zone and quiet hours.

The time zone comes from the shipping address (one zone for most countries, by state or
province where a country spans several), else the shop's. Quiet hours are wall-clock hours in
that zone: a message due inside them waits until they end.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers

from notifications.models import Channel, NotificationSettings
from shopapp.branding.selectors import brand_look
from shopapp.models import Order, Shop


class SkipReason:
    NO_EMAIL = "no email address on the order"
    NO_PHONE = "no phone number on the order"
    INVALID_PHONE = "phone number is not valid"
    SUPPRESSED = "recipient suppressed"
    SMS_DISABLED = "SMS is not enabled for this shop"
    CANCELLED = "order cancelled"
    RETURNED = "a return was started"
    DELIVERED = "shipment already delivered"
    OUT_FOR_DELIVERY = "shipment already out for delivery"
    NO_MARKETING = "customer does not accept marketing"
    STEP_DISABLED = "sequence or step disabled"
    SHOP_INACTIVE = "shop uninstalled the app"
    REDACTED = "customer data redacted"
    NO_SHOP_EMAIL = "the shop has no support email address"


# The recipient's time zone from the shipping address: one zone for most countries, by state
# or province where a country spans several. Unknown places fall back to the shop's zone.
_COUNTRY_ZONE = {
    "GB": "Europe/London",
    "IE": "Europe/Dublin",
    "FR": "Europe/Paris",
    "DE": "Europe/Berlin",
    "ES": "Europe/Madrid",
    "IT": "Europe/Rome",
    "NL": "Europe/Amsterdam",
    "BE": "Europe/Brussels",
    "LU": "Europe/Luxembourg",
    "AT": "Europe/Vienna",
    "CH": "Europe/Zurich",
    "SE": "Europe/Stockholm",
    "NO": "Europe/Oslo",
    "DK": "Europe/Copenhagen",
    "FI": "Europe/Helsinki",
    "PL": "Europe/Warsaw",
    "CZ": "Europe/Prague",
    "PT": "Europe/Lisbon",
    "GR": "Europe/Athens",
    "JP": "Asia/Tokyo",
    "KR": "Asia/Seoul",
    "SG": "Asia/Singapore",
    "HK": "Asia/Hong_Kong",
    "IN": "Asia/Kolkata",
    "AE": "Asia/Dubai",
    "IL": "Asia/Jerusalem",
    "NZ": "Pacific/Auckland",
    "ZA": "Africa/Johannesburg",
    "PR": "America/Puerto_Rico",
}
_US = {
    **dict.fromkeys(
        [
            "CT",
            "DE",
            "DC",
            "FL",
            "GA",
            "IN",
            "KY",
            "ME",
            "MD",
            "MA",
            "MI",
            "NH",
            "NJ",
            "NY",
            "NC",
            "OH",
            "PA",
            "RI",
            "SC",
            "VT",
            "VA",
            "WV",
        ],
        "America/New_York",
    ),
    **dict.fromkeys(
        [
            "AL",
            "AR",
            "IL",
            "IA",
            "KS",
            "LA",
            "MN",
            "MS",
            "MO",
            "NE",
            "ND",
            "OK",
            "SD",
            "TN",
            "TX",
            "WI",
        ],
        "America/Chicago",
    ),
    **dict.fromkeys(["CO", "MT", "NM", "UT", "WY"], "America/Denver"),
    "ID": "America/Boise",
    "AZ": "America/Phoenix",
    **dict.fromkeys(["CA", "NV", "OR", "WA"], "America/Los_Angeles"),
    "AK": "America/Anchorage",
    "HI": "Pacific/Honolulu",
    "PR": "America/Puerto_Rico",
}
_PROVINCE_ZONE = {
    "US": (_US, "America/New_York"),
    "CA": (
        {
            "BC": "America/Vancouver",
            "AB": "America/Edmonton",
            "NT": "America/Edmonton",
            "SK": "America/Regina",
            "MB": "America/Winnipeg",
            "ON": "America/Toronto",
            "QC": "America/Toronto",
            "NB": "America/Halifax",
            "NS": "America/Halifax",
            "PE": "America/Halifax",
            "NL": "America/St_Johns",
            "YT": "America/Whitehorse",
            "NU": "America/Iqaluit",
        },
        "America/Toronto",
    ),
    "AU": (
        {
            "NSW": "Australia/Sydney",
            "ACT": "Australia/Sydney",
            "VIC": "Australia/Melbourne",
            "QLD": "Australia/Brisbane",
            "SA": "Australia/Adelaide",
            "WA": "Australia/Perth",
            "TAS": "Australia/Hobart",
            "NT": "Australia/Darwin",
        },
        "Australia/Sydney",
    ),
    "MX": ({"BCN": "America/Tijuana", "SON": "America/Hermosillo"}, "America/Mexico_City"),
    "BR": ({"AM": "America/Manaus", "AC": "America/Rio_Branco"}, "America/Sao_Paulo"),
}


def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def recipient_timezone(*, shop: Shop, order: Order) -> ZoneInfo:
    """The shopper's time zone, from the shipping country and province; else the shop's."""
    country = (order.shipping_country_code or "").upper()
    province = (order.shipping_province_code or "").upper()
    name = None
    if country in _PROVINCE_ZONE:
        table, default = _PROVINCE_ZONE[country]
        # Shopify sends "US-NY" style codes in some payloads and "NY" in others.
        name = table.get(province.split("-")[-1], default)
    elif country in _COUNTRY_ZONE:
        name = _COUNTRY_ZONE[country]
    zone = _zone(name) if name else None
    return zone or _zone(shop.timezone or "UTC") or ZoneInfo("UTC")


def phone_to_e164(phone: str, *, region: str | None) -> str | None:
    """``phone`` in E.164, reading national numbers in the shipping country; None if invalid."""
    if not phone:
        return None
    try:
        parsed = phonenumbers.parse(phone, (region or "").upper() or None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def recipient_for(channel: str, order: Order) -> tuple[str, str | None]:
    """(recipient, skip reason)."""
    if channel == Channel.SMS:
        if not order.phone:
            return "", SkipReason.NO_PHONE
        number = phone_to_e164(order.phone, region=order.shipping_country_code)
        return (number, None) if number else ("", SkipReason.INVALID_PHONE)
    email = (order.email or "").strip().lower()
    return (email, None) if email else ("", SkipReason.NO_EMAIL)


def merchant_recipient(*, shop: Shop, channel: str) -> tuple[str, str | None]:
    """(recipient, skip reason) of a message for the merchant: the support email of the
    shop's branding, else the notifications' reply-to, else the shop's own email. Email only
    (the merchant's phone number is not known)."""
    if channel != Channel.EMAIL:
        return "", SkipReason.NO_SHOP_EMAIL
    look = brand_look(shop=shop)
    row = NotificationSettings.objects.filter(shop=shop).only("reply_to").first()
    for candidate in (
        look.support_email if look else "",
        row.reply_to if row else "",
        shop.email or "",
    ):
        email = (candidate or "").strip().lower()
        if email:
            return email, None
    return "", SkipReason.NO_SHOP_EMAIL


def address_normalise(channel: str, address: str) -> str:
    return address.strip() if channel == Channel.SMS else address.strip().lower()


# --- quiet hours ---------------------------------------------------------------------------


def notification_settings_for(*, shop: Shop) -> NotificationSettings:
    """The shop's settings row, or unsaved defaults (reading never writes). A shop loaded
    with ``select_related("notification_settings")`` is answered without a query."""
    if Shop.notification_settings.is_cached(shop):
        try:
            return shop.notification_settings
        except NotificationSettings.DoesNotExist:
            return NotificationSettings(shop=shop)
    row = NotificationSettings.objects.filter(shop=shop).first()
    return row or NotificationSettings(shop=shop)


def _parse_hhmm(value: str) -> time | None:
    try:
        hours, minutes = value.strip().split(":")
        return time(int(hours), int(minutes))
    except (ValueError, AttributeError):
        return None


def quiet_hours_end(*, at: datetime, zone: ZoneInfo, start: str, end: str) -> datetime | None:
    """When the quiet hours around ``at`` end (UTC), or None if ``at`` is outside them.

    Wall-clock times in ``zone``: across a DST change the window keeps its local hours, so
    21:00-08:00 in New York is 11 hours long the night clocks fall back (zoneinfo resolves
    the local end time with the offset in force then).
    """
    quiet_start, quiet_end = _parse_hhmm(start), _parse_hhmm(end)
    if quiet_start is None or quiet_end is None or quiet_start == quiet_end:
        return None
    local = at.astimezone(zone)
    now_local = local.time().replace(tzinfo=None)
    if quiet_start < quiet_end:
        if not quiet_start <= now_local < quiet_end:
            return None
        day = local.date()
    elif now_local >= quiet_start:
        day = local.date() + timedelta(days=1)
    elif now_local < quiet_end:
        day = local.date()
    else:
        return None
    return datetime.combine(day, quiet_end, tzinfo=zone).astimezone(UTC)


def quiet_window(row: NotificationSettings, channel: str) -> tuple[str, str]:
    if channel == Channel.SMS:
        return row.sms_quiet_start, row.sms_quiet_end
    return row.email_quiet_start, row.email_quiet_end


def outside_quiet_hours(
    *, at: datetime, zone: ZoneInfo, row: NotificationSettings, channel: str
) -> datetime:
    start, end = quiet_window(row, channel)
    return quiet_hours_end(at=at, zone=zone, start=start, end=end) or at
