"""Public notification endpoints, mounted at /notifications/ on APP_URL (not under /app/: the
shopper and their mail provider call them without a session token)."""

from django.urls import path

from notifications import views

app_name = "notifications"

urlpatterns = [
    path("unsubscribe/<str:token>", views.unsubscribe, name="unsubscribe"),
]
