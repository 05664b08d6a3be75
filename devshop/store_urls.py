from django.urls import path

from devshop import oauth

urlpatterns = [
    path("admin/oauth/authorize", oauth.authorize),
    path("admin/oauth/access_token", oauth.access_token),
]
