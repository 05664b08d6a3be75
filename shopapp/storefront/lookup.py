"""Finding a shopper's order from what they typed: one lookup for the tracking page and the
returns portal.

    typed order number ─ order_number_parse ─▶ OrderNumber (normalised once: its name, its
                                               number, its rate-limit key)
    typed email, phone or postal code ─ proof_parse ─▶ Proof
    storefront_order_lookup(shop, number, proof) ─▶ the order, or None

The number is normalised once, and the same value keys the rate limit and the query: "1011",
"#1011", "01011", "０１０１１" (fullwidth) and "١٠١١" (Arabic-Indic) are one order, so a lookup
limit cannot be stepped around by spelling. A wrong number and a wrong proof take the same
path and give the same answer (constant-time comparison, a dummy when nothing matched).
"""

from __future__ import annotations

import hmac
import unicodedata
from dataclasses import dataclass

from django.db.models import QuerySet

from shopapp.models import Order, Shop
from shopapp.rawsql import rows_fetch

# Fewer digits than this cannot tell two phone numbers apart.
MIN_PHONE_DIGITS = 7
# Compare the last nine digits: the subscriber number, whatever country code or trunk prefix
# was typed ("+33 6 12 34 56 78" and "06 12 34 56 78", "+1 555 123 4567" and "555-123-4567"
# are the same phone). Nine is the shortest common national length (France, Spain); with the
# order number beside it, a collision gains nothing.
PHONE_COMPARED_DIGITS = 9
# Shorter postal codes exist (Iceland's three digits); nothing shorter is a postal code.
MIN_POSTAL_CHARS = 3
# Order names are short ("#1001", "EU-1001-B").
MAX_ORDER_LENGTH = 40
# Shopify's order numbers fit in a bigint; longer digit strings are no order number.
MAX_ORDER_DIGITS = 18
# More than a few orders answering one typed number means a number shared across name
# formats ("1001" and "#1001" in a migrated shop); no more than this many are compared.
MAX_LOOKUP_CANDIDATES = 5
# Compared when no order matched, so a wrong number costs what a wrong proof costs.
_DUMMY_PROOF = b"email:nobody@invalid.example"


def _ascii_digits(text: str) -> str:
    """Every decimal digit of any script as its ASCII digit (NFKC leaves Arabic-Indic and
    Devanagari digits alone)."""
    return "".join(
        str(unicodedata.decimal(ch)) if ch.isdecimal() and not ch.isascii() else ch for ch in text
    )


def _fold(text: str) -> str:
    return _ascii_digits(unicodedata.normalize("NFKC", text or ""))


@dataclass(frozen=True)
class OrderNumber:
    """A typed order number, normalised once."""

    # As an order name, upper case, without a leading "#": "1011", "EU-1011-B".
    name: str
    # Its value when it is all digits (leading zeros dropped), else None.
    number: int | None

    @property
    def key(self) -> str:
        """What the per-order rate limit counts: one key per order whatever the spelling."""
        return f"number:{self.number}" if self.number is not None else f"name:{self.name}"


def order_number_parse(typed: str) -> OrderNumber | None:
    """The order number in what a shopper typed, or None when there is none."""
    text = _fold(typed).strip().lstrip("#").strip().upper()
    if not text or len(text) > MAX_ORDER_LENGTH:
        return None
    if text.isdigit() and len(text.lstrip("0")) <= MAX_ORDER_DIGITS:
        number = int(text)
        return OrderNumber(name=str(number), number=number)
    return OrderNumber(name=text, number=None)


@dataclass(frozen=True)
class Proof:
    """What shows the shopper owns the order: its email, phone or shipping postal code."""

    kind: str  # "email", "phone" or "postal"
    value: str

    @property
    def token(self) -> bytes:
        return f"{self.kind}:{self.value}".encode()

    @property
    def is_weak(self) -> bool:
        """A postal code is guessable (10^5 US ZIP codes): it gets a tighter limit."""
        return self.kind == "postal"


def normalise_email(value: str) -> str:
    return unicodedata.normalize("NFKC", value or "").strip().lower()


def normalise_phone(value: str) -> str:
    """Digits only, the last ``PHONE_COMPARED_DIGITS`` of them."""
    digits = "".join(ch for ch in _fold(value) if ch.isdigit())
    return digits[-PHONE_COMPARED_DIGITS:]


def normalise_postal_code(value: str) -> str:
    """Postal codes are typed with or without spaces and dashes, in any case."""
    return "".join(ch for ch in _fold(value) if ch.isalnum()).upper()


def proof_parse(typed: str, *, kinds: tuple[str, ...]) -> Proof | None:
    """An email (anything with "@"), else a phone or a postal code, as ``kinds`` allow."""
    raw = (typed or "").strip()
    if "@" in raw:
        return Proof("email", normalise_email(raw)) if "email" in kinds else None
    digits = "".join(ch for ch in _fold(raw) if ch.isdigit())
    if "phone" in kinds and len(digits) >= MIN_PHONE_DIGITS:
        return Proof("phone", normalise_phone(raw))
    postal = normalise_postal_code(raw)
    if "postal" in kinds and len(postal) >= MIN_POSTAL_CHARS:
        return Proof("postal", postal)
    return None


def storefront_orders(shop: Shop) -> QuerySet[Order]:
    """The orders a storefront page may show: deleted ones are kept for the admin's timeline,
    redacted ones have lost what a shopper would recognise them by."""
    return Order.objects.filter(shop=shop, deleted_at__isnull=True, redacted_at__isnull=True)


def _proofs_of(order: Order) -> list[bytes]:
    proofs = []
    if order.email.strip():
        proofs.append(Proof("email", normalise_email(order.email)).token)
    phone = normalise_phone(order.phone)
    if len(phone) >= MIN_PHONE_DIGITS:
        proofs.append(Proof("phone", phone).token)
    postal = normalise_postal_code(order.shipping_zip)
    if len(postal) >= MIN_POSTAL_CHARS:
        proofs.append(Proof("postal", postal).token)
    return proofs


# What ``storefront_orders`` keeps, in plain SQL.
_SHOWN = '"shop_id" = %s AND "deleted_at" IS NULL AND "redacted_at" IS NULL'
_ORDER_IDS = 'SELECT "id" FROM "shopapp_order" WHERE ' + _SHOWN  # noqa: S608 - constants
_BY_NAME = _ORDER_IDS + ' AND UPPER("name") = UPPER(%s)'
_BY_NUMBER = _ORDER_IDS + ' AND "order_number" = %s'


def _candidates(shop: Shop, number: OrderNumber) -> list[Order]:
    # Each way a name can match is its own equality on one of Order's indexes, (shop,
    # UPPER(name)) or (shop, order_number), joined by UNION: one statement that never reads
    # the whole table. An OR of the same tests leaves the choice to the planner's statistics:
    # SQLite without ANALYZE reads every order of the shop through its shop_id index.
    # Plain SQL (shopapp.rawsql): the tracking page's and the returns portal's lookups run it
    # on every request, and compiling the UNION queryset cost a third of the portal's lookup.
    ways = [_BY_NAME, _BY_NAME]
    params: list[object] = [shop.pk, number.name, shop.pk, "#" + number.name]
    if number.number is not None:
        ways.append(_BY_NUMBER)
        params += [shop.pk, number.number]
    where = f'{_SHOWN} AND "id" IN ({" UNION ".join(ways)}) ORDER BY "id" DESC LIMIT %s'  # noqa: S608
    found = rows_fetch(Order, where, [shop.pk, *params, MAX_LOOKUP_CANDIDATES])
    for order in found:
        order.shop = shop  # the caller's instance: no second query for it
    return found


def storefront_order_lookup(*, shop: Shop, number: OrderNumber, proof: Proof) -> Order | None:
    """The shop's order named ``number`` whose email, phone or postal code is ``proof``.

    One query whatever the input; the proof is compared in constant time against every
    candidate, or against a dummy when there is none.
    """
    wanted = proof.token
    found: Order | None = None
    compared = False
    for candidate in _candidates(shop, number):
        for key in _proofs_of(candidate):
            if not key.startswith(proof.kind.encode() + b":"):
                continue
            compared = True
            # compare_digest takes as long for a near miss as for a wild one.
            if hmac.compare_digest(key, wanted) and found is None:
                found = candidate
    if not compared:
        hmac.compare_digest(_DUMMY_PROOF, wanted)
    return found
