"""The development store's URLs. Every shop lives under /store/<myshopify_domain>/, so the app
reaches it with SHOPIFY_ADMIN_URL_TEMPLATE=http://127.0.0.1:8001/store/{shop}.

/_devshop/… is the control API that tests, the simulator and the demo use (Shopify has no such
thing; it stands in for a merchant clicking around their admin).
"""

from django.urls import include, path

urlpatterns = [
    path("_devshop/", include("devshop.control_urls")),
    path("store/<str:shop>/", include("devshop.store_urls")),
    # Staged upload targets (stagedUploadsCreate), standing in for Shopify's storage bucket.
    path("", include("devshop.staged_uploads")),
    # Product pictures, standing in for Shopify's CDN (LineItem.image).
    path("", include("devshop.cdn")),
]
