"""The branding screen of the embedded admin (/app/branding) and the public logo.

GET  /app/branding                      the form and a live preview (a storefront card and
                                        an email, restyled in the browser as fields change)
POST /app/branding                      Authorization: Bearer (sent by fetch, as every admin
                                        form); saved → 303 back; refused → 422, nothing kept
GET  /brand/logo/<shop>/<digest>.png    public: emails and storefront pages load it; a new
                                        logo is a new digest, so it is cached for a year
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.translation import gettext
from django.views.decorators.http import require_GET, require_http_methods

from shopapp.auth.session import session_token_required
from shopapp.branding import selectors
from shopapp.branding.forms import BrandingForm
from shopapp.branding.look import FONT_STACKS, look_build
from shopapp.branding.services import BrandingChange, BrandingInvalid, branding_save
from shopapp.embedded.views import embedded_render, nav_query
from shopapp.http import ShopRequest

LOGO_CACHE_SECONDS = 365 * 24 * 3600


def _initial(request: ShopRequest) -> dict[str, object]:
    row = selectors.branding_get(shop=request.shop)
    if row is None:
        default = look_build()
        return {
            "accent_color": default.accent,
            "text_color": default.text,
            "background_color": default.background,
            "font": default.font,
            "support_email": request.shop.email or "",
            "follows_theme": True,
        }
    # While following the theme the fields show its colours (what the preview shows).
    accent, text, background = row.colours_in_use()
    return {
        "follows_theme": row.follows_theme,
        "accent_color": accent,
        "text_color": text,
        "background_color": background,
        "font": row.font,
        "support_email": row.support_email,
        "support_phone": row.support_phone,
        "footer_text": row.footer_text,
    }


def _page(
    request: ShopRequest,
    form: BrandingForm,
    *,
    problems: dict[str, str] | None = None,
    status: int = 200,
) -> HttpResponse:
    look = selectors.brand_look(shop=request.shop)
    saved = selectors.branding_get(shop=request.shop)
    return embedded_render(
        request,
        "shopapp/embedded/branding.html",
        {
            "nav": "branding",
            "form": form,
            "problems": problems or {},
            "fonts": [(key, label, stack) for key, (label, stack) in FONT_STACKS.items()],
            "look": look or look_build(),
            "logo_url": look.logo_url if look else "",
            "is_saved": saved is not None,
            "theme_name": saved.theme_name if saved else "",
            "theme_read_at": saved.theme_read_at if saved else None,
            "theme_has_colours": bool(saved and saved.theme_accent_color),
            "notice": gettext("Branding saved.") if request.GET.get("notice") == "saved" else "",
        },
        status=status,
    )


@session_token_required
@require_http_methods(["GET", "HEAD", "POST"])
def branding_edit(request: ShopRequest) -> HttpResponse:
    if request.method != "POST":
        return _page(request, BrandingForm(initial=_initial(request)))
    form = BrandingForm(request.POST, request.FILES)
    if not form.is_valid():
        return _page(request, form, status=422)
    data = form.cleaned_data
    try:
        branding_save(
            shop=request.shop,
            change=BrandingChange(
                accent_color=data["accent_color"],
                text_color=data["text_color"],
                background_color=data["background_color"],
                font=data["font"],
                support_email=data["support_email"],
                support_phone=data["support_phone"],
                footer_text=data["footer_text"],
                logo=data["logo"],
                remove_logo=data["remove_logo"],
                follows_theme=data["follows_theme"],
            ),
        )
    except BrandingInvalid as exc:
        for field, message in exc.problems.items():
            form.add_error(field if field in form.fields else None, message)
        return _page(request, form, problems=exc.problems, status=422)
    query = nav_query(request) + "&" + urlencode({"notice": "saved"})
    return HttpResponseRedirect(f"{reverse('embedded:branding')}?{query}", status=303)


@require_GET
def brand_logo(request: HttpRequest, shop_id: int, digest: str) -> HttpResponse:
    found = selectors.brand_logo_get(shop_id=shop_id, digest=digest)
    if found is None:
        raise Http404("No such logo")
    content, content_type = found
    response = HttpResponse(content, content_type=content_type)
    response["Cache-Control"] = f"public, max-age={LOGO_CACHE_SECONDS}, immutable"
    response["X-Content-Type-Options"] = "nosniff"
    # Loaded by mail clients and the shop's storefront, never framed or run.
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cross-Origin-Resource-Policy"] = "cross-origin"
    return response
