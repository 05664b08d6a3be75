from django.urls import path

from shopapp.auth import views

urlpatterns = [
    path("install", views.install, name="auth_install"),
    path("callback", views.callback, name="auth_callback"),
    path("session-token", views.session_token_bounce, name="auth_session_token"),
]
