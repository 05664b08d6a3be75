from django.urls import path

from devshop.graphql import views as graphql_views

urlpatterns = [
    path("admin/api/<str:version>/graphql.json", graphql_views.graphql_endpoint),
]
