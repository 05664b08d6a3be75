"""``POST /webhooks/`` answered before the middleware that only browsers need.

    FramingHeaders ─ Security ─ WebhookIntake ─┬ POST /webhooks/ ─> webhook_receive
                                               └ anything else ─> whitenoise, sessions, CSRF,
                                                                  auth, messages, the URLconf

Shopify sends no cookie, no session and no static file request; the intake view is CSRF-exempt
and reads neither ``request.user`` nor messages. Those middlewares cost about as much per
request as the intake's own Python, at Shopify's busiest (bench/webhooks.py). The host is
still checked against ALLOWED_HOSTS (CommonMiddleware's job on the long way), and the outer
middlewares (SSL redirect, security and framing headers) still run.
"""

from collections.abc import Callable

from django.http import HttpRequest
from django.http.response import HttpResponseBase

from shopapp.webhooks.views import webhook_receive

# DESIGN's public surface: one URL for every topic (shopapp/urls.py routes the same path). Not
# reversed: a test's own URLconf may leave the webhooks out, and this must not break it.
WEBHOOK_PATH = "/webhooks/"


class WebhookIntakeMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if request.method != "POST" or request.path_info != WEBHOOK_PATH:
            return self.get_response(request)
        # DisallowedHost for a host not in ALLOWED_HOSTS: a 400, as on the long way.
        request.get_host()
        return webhook_receive(request)
