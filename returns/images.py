"""Images from outside (shoppers' photos, merchants' labels), decoded before anything keeps them.

    bytes ─ Image.open (JPEG, PNG, WebP only; the header alone) ─ width × height ≤ the pixel
          budget ─ decode every pixel (truncated or corrupt: refused) ─ upright (EXIF
          orientation applied) ─ at most PHOTO_MAX_EDGE on the long side ─ encoded afresh:
          JPEG, or PNG where there is transparency ─▶ the bytes that are stored

Magic bytes and a size limit are not enough: a 30,000 × 30,000 PNG is 875 KB and would take
2.7 GB to decode in the merchant's browser or any worker that opens it, and a phone's photo
carries the GPS position of the shopper's home in its EXIF. Encoding afresh from the pixels
keeps nothing but the pixels: no EXIF, GPS, XMP, comments, or bytes appended after the image.
The ICC colour profile goes too (a few wide-gamut photos shift slightly; a return photo is
evidence, not art).
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from typing import IO

from django.conf import settings
from PIL import Image, ImageOps, UnidentifiedImageError

# Formats a phone or a carrier's site produce; every other decoder Pillow has stays unused.
_FORMATS: dict[str, tuple[str, str]] = {
    "JPEG": ("image/jpeg", "jpg"),
    "PNG": ("image/png", "png"),
    "WEBP": ("image/webp", "webp"),
}
# 40 megapixels: more than any phone camera (a 200 MP sensor bins to 12 MP by default).
DEFAULT_MAX_PIXELS = 40_000_000
# A stored photo's long side: plenty to see a scratch, a tenth of the bytes of 12 MP.
PHOTO_MAX_EDGE = 3000
THUMBNAIL_EDGE = 320
PHOTO_JPEG_QUALITY = 85
THUMBNAIL_JPEG_QUALITY = 80
# Labels carry barcodes: re-encoded with as little loss as JPEG allows.
LABEL_JPEG_QUALITY = 95


class ImageRefused(Exception):
    """Not an image that may be kept; ``code``: "format", "too_large" or "corrupt"."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass(frozen=True)
class CleanImage:
    content: bytes
    content_type: str
    ext: str
    width: int
    height: int


def max_pixels() -> int:
    return int(getattr(settings, "RETURNS_PHOTO_MAX_PIXELS", DEFAULT_MAX_PIXELS))


def image_decode(
    source: bytes | IO[bytes], *, formats: tuple[str, ...] = tuple(_FORMATS)
) -> Image.Image:
    """Every pixel of ``source``, decoded, within the pixel budget; raises ImageRefused.

    The budget is checked on the header's size before any pixel is decoded; Pillow's own
    decompression-bomb guard is made an error too, for anything the header understates.
    """
    stream = io.BytesIO(source) if isinstance(source, bytes) else source
    budget = max_pixels()
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(stream, formats=list(formats))
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
            raise ImageRefused("format") from None
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise ImageRefused("too_large") from None
        if image.width * image.height > budget or image.width < 1 or image.height < 1:
            raise ImageRefused("too_large")
        try:
            # The first frame only (an animated WebP or PNG): what a photo shows.
            image.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise ImageRefused("too_large") from None
        except (OSError, ValueError, SyntaxError, EOFError, MemoryError):
            raise ImageRefused("corrupt") from None
    return image


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in {"RGBA", "LA", "PA"} or (
        image.mode == "P" and "transparency" in image.info
    )


def _encode(image: Image.Image, *, quality: int) -> CleanImage:
    """The pixels of ``image`` and nothing else: PNG when it has transparency, else JPEG."""
    out = io.BytesIO()
    if _has_alpha(image):
        image.convert("RGBA").save(out, format="PNG", optimize=False)
        kind = "PNG"
    else:
        pixels = image if image.mode in {"RGB", "L"} else image.convert("RGB")
        pixels.save(out, format="JPEG", quality=quality, optimize=True)
        kind = "JPEG"
    content_type, ext = _FORMATS[kind]
    return CleanImage(out.getvalue(), content_type, ext, image.width, image.height)


def _upright(image: Image.Image) -> Image.Image:
    try:
        return ImageOps.exif_transpose(image) or image
    except (OSError, ValueError, SyntaxError, KeyError, TypeError):
        # A garbled EXIF block: keep the pixels as they are.
        return image


def photo_clean(source: bytes | IO[bytes]) -> CleanImage:
    """A shopper's photo as it may be stored: decoded, upright, at most PHOTO_MAX_EDGE on its
    long side, encoded afresh without metadata. Raises ImageRefused."""
    image = _upright(image_decode(source))
    if max(image.size) > PHOTO_MAX_EDGE:
        image.thumbnail((PHOTO_MAX_EDGE, PHOTO_MAX_EDGE), Image.Resampling.LANCZOS)
    return _encode(image, quality=PHOTO_JPEG_QUALITY)


def photo_thumbnail(source: bytes | IO[bytes]) -> CleanImage:
    """A small copy for the admin's list (THUMBNAIL_EDGE on the long side)."""
    image = _upright(image_decode(source))
    image.thumbnail((THUMBNAIL_EDGE, THUMBNAIL_EDGE), Image.Resampling.LANCZOS)
    return _encode(image, quality=THUMBNAIL_JPEG_QUALITY)


def label_image_clean(source: bytes | IO[bytes]) -> CleanImage:
    """A PNG or JPEG return label, checked like a photo and encoded afresh in its own format
    (PNG stays lossless for the barcode; JPEG at LABEL_JPEG_QUALITY). Raises ImageRefused."""
    decoded = image_decode(source, formats=("PNG", "JPEG"))
    was_png = decoded.format == "PNG"
    image = _upright(decoded)
    out = io.BytesIO()
    if was_png or _has_alpha(image):
        image.save(out, format="PNG")
        kind = "PNG"
    else:
        pixels = image if image.mode in {"RGB", "L"} else image.convert("RGB")
        pixels.save(out, format="JPEG", quality=LABEL_JPEG_QUALITY)
        kind = "JPEG"
    content_type, ext = _FORMATS[kind]
    return CleanImage(out.getvalue(), content_type, ext, image.width, image.height)
