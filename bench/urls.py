"""The app's URLs plus ``/bench/bare``, the baseline the webhook intake is measured against."""

from django.http import HttpRequest, HttpResponse
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt


@csrf_exempt
def bare(request: HttpRequest) -> HttpResponse:
    # Reads the body like the intake does, so the ratio shows the intake's own work (HMAC,
    # JSON, one INSERT, one enqueue), not the cost of receiving the same bytes.
    request.body  # noqa: B018
    return HttpResponse(status=200, content_type="text/plain")


urlpatterns = [
    path("bench/bare", bare),
    path("", include("shopapp.urls")),
]
