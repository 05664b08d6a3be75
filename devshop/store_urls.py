from django.urls import include, path

from devshop import admin_frame, oauth
from devshop import graphql as admin_graphql

urlpatterns = [
    path("admin/oauth/authorize", oauth.authorize),
    path("admin/oauth/access_token", oauth.access_token),
    path("admin/api/<str:version>/graphql.json", admin_graphql.graphql_endpoint),
    # The store admin and the app embedded in it, as Shopify's admin frames it.
    path("admin", admin_frame.admin_home, name="devshop_admin_home"),
    path("admin/apps/app", admin_frame.app_frame, name="devshop_admin_app"),
    path("admin/apps/app/token", admin_frame.app_token, name="devshop_admin_app_token"),
    # The storefront: home, fake customer login and the app proxy (devshop.storefront).
    path("", include("devshop.storefront")),
]
