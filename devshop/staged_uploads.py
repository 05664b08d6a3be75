"""Staged uploads (``stagedUploadsCreate``), as Shopify runs them for files such as return
labels: the mutation hands back a target (``url`` with form ``parameters``) the app sends the
file to, and a ``resourceUrl`` it then passes to another mutation (for a label:
``reverseDeliveryCreateWithShipping(labelInput: {fileUrl})``).

Shopify's targets live on its storage bucket; the devshop's live on the store itself:

    POST <url>                 multipart form: the parameters, then ``file`` (201)
    PUT  <url>                 the raw file, Content-Type as staged (200)
    GET  <resourceUrl>         the file, once uploaded (404 before)
"""

import uuid
from typing import Any
from urllib.parse import quote, urlsplit

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from devshop.knobs import clock_now
from devshop.models import DevShop, DevStagedUpload

PREFIX = "staged-uploads"
# Uploads the devshop keeps; Shopify's own limit for files is 20 MB.
MAX_UPLOAD_BYTES = 20 * 1024 * 1024


def staged_upload_url(upload: DevStagedUpload) -> str:
    return f"{settings.DEVSHOP_URL}/{PREFIX}/{upload.key}"


def staged_upload_resource_url(upload: DevStagedUpload) -> str:
    return f"{staged_upload_url(upload)}/{quote(upload.filename)}"


def staged_upload_create(*, shop: DevShop, target: dict[str, Any]) -> dict[str, Any]:
    """One StagedMediaUploadTarget for a StagedUploadInput ({"filename", "mimeType",
    "resource", "httpMethod"})."""
    method = (target.get("httpMethod") or "PUT").upper()
    upload = DevStagedUpload.objects.create(
        shop=shop,
        key=uuid.uuid4().hex,
        filename=target["filename"],
        mime_type=target["mimeType"],
        resource=target["resource"],
        http_method=method,
    )
    storage_key = f"tmp/{shop.shopify_id}/{upload.key}/{upload.filename}"
    if method == "POST":
        parameters = [
            {"name": "Content-Type", "value": upload.mime_type},
            {"name": "success_action_status", "value": "201"},
            {"name": "acl", "value": "private"},
            {"name": "key", "value": storage_key},
        ]
    else:
        parameters = [
            {"name": "content_type", "value": upload.mime_type},
            {"name": "acl", "value": "private"},
        ]
    return {
        "url": staged_upload_url(upload),
        "resourceUrl": staged_upload_resource_url(upload),
        "parameters": parameters,
    }


def staged_upload_for_url(url: str) -> tuple[bool, DevStagedUpload | None]:
    """(is a devshop staged upload URL, the upload if it exists)."""
    base = urlsplit(settings.DEVSHOP_URL)
    parts = urlsplit(url)
    segments = [s for s in parts.path.split("/") if s]
    if parts.netloc != base.netloc or len(segments) < 2 or segments[0] != PREFIX:
        return False, None
    return True, DevStagedUpload.objects.filter(key=segments[1]).first()


@csrf_exempt
def staged_upload_target(request: HttpRequest, key: str, filename: str = "") -> HttpResponse:
    upload = DevStagedUpload.objects.filter(key=key).first()
    if upload is None:
        return HttpResponse("NoSuchUpload", status=404, content_type="text/plain")
    if request.method == "GET":
        if upload.uploaded_at is None:
            return HttpResponse("NoSuchKey", status=404, content_type="text/plain")
        response = HttpResponse(bytes(upload.content or b""), content_type=upload.mime_type)
        response["Content-Disposition"] = f'inline; filename="{upload.filename}"'
        return response
    if filename:
        return HttpResponse("MethodNotAllowed", status=405, content_type="text/plain")
    if request.method == "POST":
        sent = request.FILES.get("file")
        if sent is None:
            return HttpResponse("a multipart 'file' field is required", status=400)
        content = sent.read()
        status = int(request.POST.get("success_action_status") or 204)
    elif request.method == "PUT":
        content = request.body
        status = 200
    else:
        return HttpResponse("MethodNotAllowed", status=405, content_type="text/plain")
    if len(content) > MAX_UPLOAD_BYTES:
        return HttpResponse("EntityTooLarge", status=400, content_type="text/plain")
    upload.content = content
    upload.uploaded_at = clock_now()
    upload.save(update_fields=["content", "uploaded_at"])
    return HttpResponse(b"", status=status)


urlpatterns = [
    path(f"{PREFIX}/<str:key>", staged_upload_target),
    path(f"{PREFIX}/<str:key>/<path:filename>", staged_upload_target),
]
