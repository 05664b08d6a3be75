from django.urls import path

from devshop import graphql as admin_graphql
from devshop import oauth

urlpatterns = [
    path("admin/oauth/authorize", oauth.authorize),
    path("admin/oauth/access_token", oauth.access_token),
    path("admin/api/<str:version>/graphql.json", admin_graphql.graphql_endpoint),
]
