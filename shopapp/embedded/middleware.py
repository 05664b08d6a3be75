"""The embedded admin in the staff member's admin language.

Shopify adds ``locale`` to the app's URL (the language the staff member uses the admin in:
"fr", "pt-BR"), and every in-app link and form passes it on (``nav_query``). For the admin's
paths, this activates it for the whole request (the view builds sentences too, not only the
template) when the app speaks it (English, Spanish, French, German); anything else is English.
"""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.utils import translation

from shopapp.storefront.pages import supported_language

ADMIN_PREFIX = "/app/"


def admin_language(request: HttpRequest) -> str:
    return supported_language(request.GET.get("locale")) or "en"


class AdminLanguageMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith(ADMIN_PREFIX):
            return self.get_response(request)
        language = admin_language(request)
        with translation.override(language):
            response = self.get_response(request)
        response.headers.setdefault("Content-Language", language)
        return response
