from django.urls import include, path

from devshop import graphql as admin_graphql
from devshop import oauth

urlpatterns = [
    path("admin/oauth/authorize", oauth.authorize),
    path("admin/oauth/access_token", oauth.access_token),
    path("admin/api/<str:version>/graphql.json", admin_graphql.graphql_endpoint),
    # The storefront: home, fake customer login and the app proxy (devshop.storefront).
    path("", include("devshop.storefront")),
]
