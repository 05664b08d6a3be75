"""Product pictures, standing in for Shopify's CDN (cdn.shopify.com/s/files/…).

The devshop's catalogue has no photos, so it draws one per product: a soft colour from the
product's title, a shape, and the title's initials. Shopify's ``Image.url(transform:)`` is
answered with a link here carrying the transform the way Shopify's CDN URLs do
(``?width=…&height=…``):

    GET /cdn/products/<product id>.png?width=128&height=128   a square PNG of that size

Only for products that have a picture (DevProduct.has_image, no image_url of their own); a
product unknown or without one is a 404, as a deleted file is on the CDN.
"""

from __future__ import annotations

import hashlib
import io
from typing import Any

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import path
from django.views.decorators.http import require_GET
from PIL import Image, ImageDraw, ImageFont

from devshop.models import DevProduct

PREFIX = "cdn/products"
# The size of the "original" upload: Image.width/height when no transform is asked for.
ORIGINAL_PX = 800
# Shopify's CDN serves transforms from 1 px up; the devshop draws at most the original.
MIN_PX = 1


def product_image_src(product: DevProduct, *, size: int | None = None) -> str:
    """The product's picture URL, ``size`` px square when given (Shopify's transform)."""
    if product.image_url:
        return product.image_url
    url = f"{settings.DEVSHOP_URL}/{PREFIX}/{product.shopify_id}.png"
    return f"{url}?width={size}&height={size}" if size else url


def product_image(product: DevProduct | None) -> dict[str, Any] | None:
    """The product's ``Image`` as Admin GraphQL answers it, or None when it has none."""
    if product is None or not product.has_image:
        return None
    return {
        "id": f"gid://shopify/ProductImage/{product.shopify_id}",
        "altText": product.title,
        "width": ORIGINAL_PX,
        "height": ORIGINAL_PX,
        "_product": product,
    }


def _colours(title: str) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    digest = hashlib.sha256(title.encode()).digest()
    hue = [80 + digest[0] % 140, 80 + digest[1] % 140, 80 + digest[2] % 140]
    background = tuple(min(255, 150 + c // 2) for c in hue)
    shape = tuple(max(0, c - 40) for c in hue)
    return background, shape  # type: ignore[return-value]


def _draw(title: str, size: int) -> bytes:
    background, shape = _colours(title)
    image = Image.new("RGB", (size, size), background)
    draw = ImageDraw.Draw(image)
    inset = size // 5
    draw.ellipse((inset, inset, size - inset, size - inset), fill=shape)
    initials = "".join(word[0] for word in title.split()[:2]).upper() or "?"
    font = ImageFont.load_default(size=max(8, size // 4))
    draw.text((size / 2, size / 2), initials, fill=(255, 255, 255), font=font, anchor="mm")
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def _size(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return max(MIN_PX, min(ORIGINAL_PX, int(value)))
    except ValueError:
        return None


@require_GET
def product_image_view(request: HttpRequest, product_id: int) -> HttpResponse:
    product = DevProduct.objects.filter(shopify_id=product_id, has_image=True).first()
    if product is None or product.image_url:
        raise Http404("no such image")
    sizes = [s for s in (_size(request.GET.get("width")), _size(request.GET.get("height"))) if s]
    response = HttpResponse(
        _draw(product.title, min(sizes) if sizes else ORIGINAL_PX), content_type="image/png"
    )
    # A day: pages and emails showing it twice fetch it once.
    response["Cache-Control"] = "public, max-age=86400"
    return response


urlpatterns = [path(f"{PREFIX}/<int:product_id>.png", product_image_view)]
