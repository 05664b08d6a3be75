"""Session tokens (App Bridge JWT) for everything under /app/.

INTERIM: verifies the token and sets ``request.shop`` for an installed shop. The auth work
completes it (bounce page, token exchange on first load, CSP, retry header).

    @session_token_required
    def view(request): request.shop  # the Shop the token was signed for, and nothing else
"""

from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from shopify import session_token

from shopapp.models import Shop


def session_token_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        header = request.headers.get("Authorization", "")
        if not header and request.GET.get("id_token"):
            header = "Bearer " + request.GET["id_token"]
        try:
            claims = session_token.decode_from_header(
                header, settings.SHOPIFY_API_KEY, settings.SHOPIFY_API_SECRET
            )
        except session_token.SessionTokenError:
            response = HttpResponse("Unauthorized", status=401)
            response["X-Shopify-Retry-Invalid-Session-Request"] = "1"
            return response
        domain = claims["dest"].removeprefix("https://")
        shop = Shop.objects.filter(myshopify_domain=domain, is_active=True).first()
        if shop is None:
            return HttpResponse("Shop not installed", status=401)
        request.shop = shop
        request.session_token_claims = claims
        return view(request, *args, **kwargs)

    return wrapper
