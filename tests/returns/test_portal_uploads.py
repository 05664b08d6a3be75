"""Photos on the items step: the type read from the bytes, the size and the count bounded, and
a refused upload leaves nothing behind (no request, no stashed file)."""

import io

import pytest
from django.core.files.storage import default_storage
from PIL import Image

from returns import portal
from returns.models import ReturnPhoto, ReturnPolicy, ReturnRequest
from tests.returns import test_portal
from tests.returns.test_portal import (
    JPEG,
    PNG,
    WEBP,
    body,
    choose,
    delivered_order,
    image_bytes,
    lookup,
    photo,
    state_of,
    submit,
)

pytestmark = pytest.mark.django_db(transaction=True)

# The portal tests' fixtures: an installed shop with its own MEDIA_ROOT, fresh Redis keys.
shop = test_portal.shop
_fresh_redis = test_portal._fresh_redis


def pending_files(shop) -> list[str]:
    folder = f"{portal.PENDING_PHOTO_PREFIX}/{shop.pk}"
    if not default_storage.exists(folder):
        return []
    return default_storage.listdir(folder)[1]


@pytest.fixture
def defective_order(devshop, shop):
    """An order whose "defective" reason needs a photo."""
    ReturnPolicy.objects.create(shop=shop, reasons_requiring_photo=["DEFECTIVE"])
    order = delivered_order(devshop, shop, line_items=1)
    return order, order.line_items.get()


def test_a_renamed_executable_is_refused(client, shop, defective_order):
    order, line = defective_order
    state = state_of(lookup(client, shop, order))
    exe = photo("shoe.jpg", b"MZ\x90\x00\x03\x00\x00\x00" + b"\x00" * 64, "image/jpeg")

    response = choose(client, shop, state, {line: (1, "DEFECTIVE", "", exe)})

    assert "Photos must be JPEG, PNG or WebP images." in body(response)
    assert pending_files(shop) == []
    assert ReturnRequest.objects.count() == 0


def test_a_photo_over_5_mb_is_refused(client, shop, defective_order):
    order, line = defective_order
    state = state_of(lookup(client, shop, order))
    big = photo("big.jpg", JPEG + b"\x00" * (6 * 1024 * 1024))

    response = choose(client, shop, state, {line: (1, "DEFECTIVE", "", big)})

    assert "Each photo must be 5 MB or smaller." in body(response)
    assert pending_files(shop) == []


def test_more_than_five_photos_are_refused(client, shop, defective_order):
    order, line = defective_order
    state = state_of(lookup(client, shop, order))
    six = [photo(f"p{n}.jpg") for n in range(6)]

    response = choose(client, shop, state, {line: (1, "DEFECTIVE", "", six)})

    assert "Attach at most 5 photos per item." in body(response)
    assert pending_files(shop) == []


def test_a_required_photo_is_asked_for(client, shop, defective_order):
    order, line = defective_order
    state = state_of(lookup(client, shop, order))

    response = choose(client, shop, state, {line: (1, "DEFECTIVE", "Torn seam")})

    assert "Add at least one photo of this item." in body(response)
    assert 'aria-invalid="true"' in body(response)


def test_jpeg_png_and_webp_are_kept_and_stored_with_the_request(client, shop, defective_order):
    # given three photos of the three accepted kinds, named and typed misleadingly, one PNG
    # with transparency
    order, line = defective_order
    state = state_of(lookup(client, shop, order))
    photos = [
        photo("a.png", JPEG, "image/png"),
        photo("b.jpg", image_bytes("PNG", mode="RGBA"), "image/jpeg"),
        photo("c.gif", WEBP, "image/gif"),
    ]

    review = choose(client, shop, state, {line: (1, "DEFECTIVE", "Torn seam", photos)})
    assert "3 photos" in body(review), body(review)[:2000]
    assert len(pending_files(shop)) == 3
    done = submit(client, shop, state_of(review))

    # then the request holds them encoded afresh (PNG where there is transparency, else
    # JPEG), each with its thumbnail, and the stash is empty
    assert done.status_code == 201, body(done)[:2000]
    stored = ReturnPhoto.objects.filter(shop=shop).order_by("id")
    assert [p.content_type for p in stored] == ["image/jpeg", "image/png", "image/jpeg"]
    for kept in stored:
        with kept.image.open("rb") as handle:
            assert Image.open(handle).format == kept.content_type.split("/")[1].upper()
        assert kept.thumbnail
    assert pending_files(shop) == []


def _refused_photo(client, shop, defective_order, content: bytes) -> str:
    order, line = defective_order
    state = state_of(lookup(client, shop, order))
    response = choose(client, shop, state, {line: (1, "DEFECTIVE", "", photo("p.png", content))})
    assert response.status_code == 200
    assert pending_files(shop) == []
    assert not ReturnRequest.objects.exists()
    return body(response)


def test_a_small_file_of_30000_by_30000_pixels_is_refused_before_it_is_decoded(
    client, shop, defective_order
):
    # 900 megapixels in a few hundred kilobytes: 2.7 GB once decoded
    bomb = image_bytes("PNG", size=(30000, 30000), mode="1", optimize=True)
    assert len(bomb) < 1024 * 1024

    page = _refused_photo(client, shop, defective_order, bomb)

    assert "This photo is too large to open (at most 40 megapixels)" in page


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(JPEG[: len(JPEG) // 2], id="truncated-jpeg"),
        pytest.param(PNG[:40] + b"\x00" * 200, id="png-header-then-garbage"),
        pytest.param(
            b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"<?php system($_GET[c]); ?>", id="polyglot"
        ),
    ],
)
def test_a_damaged_or_disguised_image_is_refused(client, shop, defective_order, content):
    page = _refused_photo(client, shop, defective_order, content)

    assert (
        "couldn&#x27;t be read" in page
        or "couldn't be read" in page
        or "must be JPEG, PNG or WebP" in page
    )


def test_a_photo_keeps_its_pixels_upright_and_loses_its_gps_position(client, shop, defective_order):
    # given a phone photo held sideways (EXIF orientation 6) that says where the shopper lives
    order, line = defective_order
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90° clockwise to view
    exif[0x010F] = "PhoneMaker"
    exif[0x8825] = {1: "N", 2: (40.0, 44.0, 54.36), 3: "W", 4: (73.0, 59.0, 8.5)}  # GPS
    original = image_bytes("JPEG", size=(40, 20), exif=exif.tobytes())
    assert Image.open(io.BytesIO(original)).getexif().get_ifd(0x8825)
    state = state_of(lookup(client, shop, order))

    review = choose(client, shop, state, {line: (1, "DEFECTIVE", "", photo("p.jpg", original))})
    assert submit(client, shop, state_of(review)).status_code == 201

    # then the stored photo is upright (20 × 40) and carries no EXIF at all, nor the bytes
    (kept,) = ReturnPhoto.objects.filter(shop=shop)
    with kept.image.open("rb") as handle:
        stored = handle.read()
    image = Image.open(io.BytesIO(stored))
    assert image.size == (20, 40)
    assert not image.getexif()
    assert b"PhoneMaker" not in stored
    assert b"Exif" not in stored


def test_a_body_over_the_request_limit_is_refused_before_reading(
    client, shop, defective_order, monkeypatch
):
    order, line = defective_order
    state = state_of(lookup(client, shop, order))
    monkeypatch.setattr(portal, "REQUEST_MAX_BYTES", 1024)

    big = photo("p.jpg", JPEG + b"\x00" * 4096)

    response = choose(client, shop, state, {line: (1, "DEFECTIVE", "", big)})

    assert response.status_code == 413
    assert "too much to upload" in body(response)
    assert pending_files(shop) == []
