"""Reading the shop's branding: the look every page and email renders with."""

from __future__ import annotations

from django.conf import settings
from django.urls import reverse

from shopapp.branding.look import BrandLook, look_build
from shopapp.models import Shop, ShopBranding
from shopapp.rawsql import row_fetch_one


def branding_get(*, shop: Shop) -> ShopBranding | None:
    """The shop's row without the logo's bytes (pages only need its URL). Plain SQL: every
    storefront page reads it (shopapp.rawsql)."""
    row = row_fetch_one(ShopBranding, '"shop_id" = %s', [shop.pk], deferred=("logo",))
    if row is not None:
        row.shop = shop  # the caller's instance: no second query for it
    return row


def logo_url(*, shop: Shop, digest: str) -> str:
    """Absolute (emails are read far from the app), named by the logo's digest (a new logo is
    a new URL, so the old one may be cached for a year)."""
    if not digest:
        return ""
    path = reverse("brand_logo", kwargs={"shop_id": shop.pk, "digest": digest})
    return settings.APP_URL + path


def brand_look(*, shop: Shop, row: ShopBranding | None = None) -> BrandLook | None:
    """The merchant's look, or None when they never set one (each page keeps its defaults)."""
    row = row if row is not None else branding_get(shop=shop)
    if row is None:
        return None
    accent, text, background = row.colours_in_use()
    return look_build(
        accent=accent,
        text=text,
        background=background,
        font=row.font,
        logo_url=logo_url(shop=shop, digest=row.logo_digest),
        logo_width=row.logo_width,
        logo_height=row.logo_height,
        support_email=row.support_email,
        support_phone=row.support_phone,
        footer=row.footer_text,
    )


def brand_look_or_default(*, shop: Shop) -> BrandLook:
    return brand_look(shop=shop) or look_build(support_email=shop.email or "")


def brand_logo_get(*, shop_id: int, digest: str) -> tuple[bytes, str] | None:
    """The logo's bytes and type when ``digest`` is the shop's current logo."""
    row = (
        ShopBranding.objects.filter(shop_id=shop_id, logo_digest=digest)
        .exclude(logo_digest="")
        .values_list("logo", "logo_content_type")
        .first()
    )
    if row is None:
        return None
    return bytes(row[0]), row[1]
