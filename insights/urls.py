"""The insights pages of the embedded admin, mounted at /app/insights/ (the report itself is
the admin's home, /app/)."""

from django.urls import path

from insights import views

app_name = "insights"

urlpatterns = [
    path("", views.home, name="home"),
    path("<slug:key>.csv", views.table_csv, name="table_csv"),
]
