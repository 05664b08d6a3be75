from django.urls import path

from devshop import control

urlpatterns = [
    path("shops", control.shop_create),
    path("shops/<str:shop>", control.shop_detail),
    path("shops/<str:shop>/session-token", control.session_token_create),
    path("knobs", control.knobs),
]
