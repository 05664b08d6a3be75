from django.urls import path

from shopapp.webhooks import views

urlpatterns = [
    path("", views.webhook_receive, name="webhook_receive"),
]
