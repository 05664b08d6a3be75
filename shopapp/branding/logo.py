"""A merchant's logo, decoded and encoded afresh before it is kept (as returns/images.py does
for shoppers' photos).

    upload ─ size ≤ LOGO_MAX_BYTES ─ Image.open (PNG, JPEG, WebP; the header alone) ─ width ×
           height ≤ LOGO_MAX_PIXELS ─ decode every pixel (truncated: refused) ─ at most
           LOGO_MAX_EDGE on the long side ─ PNG afresh (transparency kept) ─▶ stored bytes

Encoding from the pixels keeps nothing else: no EXIF, comments, or a script appended after the
image (an SVG is refused outright: it can carry script). PNG because a logo is flat colour and
text, where JPEG smears edges; LOGO_MAX_EDGE keeps it a few tens of KB in every email.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

_FORMATS = ["PNG", "JPEG", "WEBP"]
# An upload larger than this is refused before Pillow sees it.
LOGO_MAX_BYTES = 2 * 1024 * 1024
# 16 megapixels: far beyond any logo, far below what would tie up a worker decoding it.
LOGO_MAX_PIXELS = 16_000_000
# Twice the largest size it is shown at (about 300 CSS px wide in an email): sharp on HiDPI.
LOGO_MAX_EDGE = 600


class LogoRefused(Exception):
    """``str(exc)`` is the reason, for the merchant."""


@dataclass(frozen=True)
class CleanLogo:
    content: bytes
    content_type: str
    digest: str
    width: int
    height: int


def logo_clean(data: bytes) -> CleanLogo:
    if len(data) > LOGO_MAX_BYTES:
        raise LogoRefused(f"The logo is too large: at most {LOGO_MAX_BYTES // (1024 * 1024)} MB.")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data), formats=_FORMATS)
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
            raise LogoRefused("The logo must be a PNG, JPEG or WebP image.") from None
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise LogoRefused("The logo has too many pixels.") from None
        if image.width * image.height > LOGO_MAX_PIXELS or min(image.size) < 1:
            raise LogoRefused("The logo has too many pixels.")
        try:
            image.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise LogoRefused("The logo has too many pixels.") from None
        except (OSError, ValueError, SyntaxError, EOFError):
            raise LogoRefused("The logo file is damaged or incomplete.") from None
    has_alpha = image.mode in {"RGBA", "LA", "PA"} or (
        image.mode == "P" and "transparency" in image.info
    )
    pixels = image.convert("RGBA" if has_alpha else "RGB")
    if max(pixels.size) > LOGO_MAX_EDGE:
        pixels.thumbnail((LOGO_MAX_EDGE, LOGO_MAX_EDGE), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    pixels.save(out, format="PNG", optimize=True)
    content = out.getvalue()
    return CleanLogo(
        content=content,
        content_type="image/png",
        digest=hashlib.sha256(content).hexdigest(),
        width=pixels.width,
        height=pixels.height,
    )
