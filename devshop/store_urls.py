from django.urls import path

from devshop import oauth
from devshop.graphql import views as graphql_views

urlpatterns = [
    path("admin/oauth/authorize", oauth.authorize),
    path("admin/oauth/access_token", oauth.access_token),
    path("admin/api/<str:version>/graphql.json", graphql_views.graphql_endpoint),
]
