"""Finding a shopper's personal data in free text and JSON, in any spelling, and erasing it.

customers/redact names the shopper by email and phone; the app has written them into
timeline lines, message snapshots, error texts and payloads in whatever form they came:
"Ada@Example.com", "+1 212-555-0123", "(212) 555 0123", "12125550123". ``Needles`` holds the
shopper's identifiers once, normalised, and ``scrub_text`` replaces each occurrence (not the
whole text: "Email sent to [redacted]" stays readable for support).

    emails   case-insensitive
    phones   any run of digits with spaces, dots, dashes, brackets or a leading + whose
             digits end with the number's national significant number (7+ digits)
    names    whole words, case-insensitive (two letters or more)
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import phonenumbers

REDACTED = "[redacted]"

# Keys whose values are a shopper's personal data wherever they appear in stored JSON.
PII_KEYS = frozenset(
    {
        "email",
        "phone",
        "first_name",
        "last_name",
        "name",
        "customer_name",
        "customer_email",
        "customer_phone",
        "to",
        "recipient",
        "address",
        "address1",
        "address2",
        "city",
        "zip",
        "postal_code",
        "shipping_address",
        "billing_address",
        "latitude",
        "longitude",
        "ip",
        "browser_ip",
    }
)

# A phone number as people and systems write it: digits with separators, maybe a leading +.
_PHONE_RUN = re.compile(r"\+?\d[\d\s().\-]{5,}\d")
_MIN_PHONE_DIGITS = 7


def phone_digit_forms(phone: str, *, region: str | None = None) -> set[str]:
    """The digit strings a number may be written as: its national significant number, and
    everything (with the country code) the raw text holds."""
    digits = re.sub(r"\D", "", phone or "")
    forms = {digits} if len(digits) >= _MIN_PHONE_DIGITS else set()
    for guess in (region, None, "US"):
        try:
            parsed = phonenumbers.parse(phone, (guess or "").upper() or None)
        except phonenumbers.NumberParseException:
            continue
        national = str(parsed.national_number)
        if len(national) >= _MIN_PHONE_DIGITS:
            forms.add(national)
            forms.add(f"{parsed.country_code}{national}")
        break
    return forms


@dataclass(frozen=True)
class Needles:
    emails: tuple[str, ...] = ()
    # Digit forms (see phone_digit_forms).
    phones: tuple[str, ...] = ()
    names: tuple[str, ...] = ()

    @classmethod
    def build(
        cls,
        *,
        emails: Iterable[str] = (),
        phones: Iterable[str] = (),
        names: Iterable[str] = (),
        region: str | None = None,
    ) -> Needles:
        forms: set[str] = set()
        for phone in phones:
            forms |= phone_digit_forms(phone, region=region)
        return cls(
            emails=tuple(sorted({e.strip().lower() for e in emails if e and e.strip()})),
            phones=tuple(sorted(forms)),
            names=tuple(sorted({n.strip() for n in names if n and len(n.strip()) >= 2})),
        )

    def __bool__(self) -> bool:
        return bool(self.emails or self.phones or self.names)


def _phone_match(run: str, phones: tuple[str, ...]) -> bool:
    digits = re.sub(r"\D", "", run)
    return len(digits) >= _MIN_PHONE_DIGITS and any(
        digits == form or digits.endswith(form) or (form.endswith(digits) and len(digits) >= 10)
        for form in phones
    )


def scrub_text(text: str, needles: Needles) -> str:
    """``text`` with every occurrence of the shopper's identifiers replaced by REDACTED."""
    if not text or not needles:
        return text
    for email in needles.emails:
        text = re.sub(re.escape(email), REDACTED, text, flags=re.IGNORECASE)
    if needles.phones:
        text = _PHONE_RUN.sub(
            lambda m: REDACTED if _phone_match(m.group(0), needles.phones) else m.group(0), text
        )
    for name in needles.names:
        text = re.sub(rf"\b{re.escape(name)}\b", REDACTED, text, flags=re.IGNORECASE)
    return text


def scrub_json(value: Any, needles: Needles) -> Any:
    """A copy of a JSON value: personal keys emptied, every string scrubbed."""
    if isinstance(value, dict):
        return {
            key: REDACTED
            if str(key).lower() in PII_KEYS and value[key] not in (None, "", [], {})
            else scrub_json(value[key], needles)
            for key in value
        }
    if isinstance(value, list):
        return [scrub_json(item, needles) for item in value]
    if isinstance(value, str):
        return scrub_text(value, needles)
    return value


def text_holds(text: str, needles: Needles) -> bool:
    """Whether ``text`` still holds one of the identifiers (for checks and tests)."""
    return scrub_text(text, needles) != text
