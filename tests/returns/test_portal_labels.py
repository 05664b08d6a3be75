"""The return label a shopper downloads from the status page is sent as what it is: a PNG as
``return-label-<id>.png`` with ``image/png``, a PDF as ``.pdf`` with ``application/pdf``,
whatever the merchant attached (returns.admin_forms keeps PDFs, PNGs and JPEGs)."""

import uuid

import pytest
from django.core.files.base import ContentFile

from returns import portal
from returns.models import Resolution, ReturnRequest
from shopapp.models import Order, Shop
from tests.returns.test_portal import JPEG, PNG, proxy_get

pytestmark = pytest.mark.django_db

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


@pytest.fixture
def open_return(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    shop = Shop.objects.create(
        myshopify_domain=f"lbl-{uuid.uuid4().hex[:8]}.myshopify.com", is_active=True
    )
    order = Order.objects.create(shop=shop, shopify_id=1001, name="#1001", email="a@example.com")

    def make(content: bytes, name: str, status: str = ReturnRequest.Status.OPEN) -> ReturnRequest:
        rr = ReturnRequest.objects.create(
            shop=shop, order=order, status=status, resolution=Resolution.REFUND
        )
        rr.label_file.save(name, ContentFile(content), save=True)
        return rr

    return make


@pytest.mark.parametrize(
    ("content", "stored_as", "ext", "content_type"),
    [
        (PNG, "label.png", "png", "image/png"),
        (JPEG, "label.jpg", "jpg", "image/jpeg"),
        (PDF, "label.pdf", "pdf", "application/pdf"),
        # An older label stored under the wrong name is still told by its bytes.
        (PNG, "label.pdf", "png", "image/png"),
    ],
)
def test_a_label_is_sent_with_its_real_type_and_extension(
    client, open_return, content, stored_as, ext, content_type
):
    # given an approved return whose merchant attached this label
    rr = open_return(content, stored_as)

    # when the shopper downloads it from the status page
    response = proxy_get(client, rr.shop, f"/{portal.return_status_token(rr)}/label")

    # then it comes as what it is, byte for byte
    assert response.status_code == 200
    assert response["Content-Type"] == content_type
    assert f'filename="return-label-{rr.pk}.{ext}"' in response["Content-Disposition"]
    assert b"".join(response.streaming_content) == content
    assert response["Cache-Control"] == "private, no-store"


def test_a_label_of_a_return_not_approved_is_not_served(client, open_return):
    rr = open_return(PNG, "label.png", status=ReturnRequest.Status.REQUESTED)

    response = proxy_get(client, rr.shop, f"/{portal.return_status_token(rr)}/label")

    assert response.status_code == 404


def test_unknown_bytes_are_never_sent_as_a_type_they_are_not():
    assert portal.label_file_type(b"GIF89a....") == ("bin", "application/octet-stream")
    assert portal.label_file_type(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == ("webp", "image/webp")
