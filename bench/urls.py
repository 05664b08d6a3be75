"""The app's URLs plus the baselines the benchmarks measure against: ``/bench/bare`` (Django
answering 200) and ``/bench/insert`` (one committed INSERT of the body)."""

from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt

FLOOR_TABLE = "bench_floor"


@csrf_exempt
def bare(request: HttpRequest) -> HttpResponse:
    # Reads the body like the intake does, so the ratio shows the intake's own work (HMAC,
    # JSON, one INSERT, one enqueue), not the cost of receiving the same bytes.
    request.body  # noqa: B018
    return HttpResponse(status=200, content_type="text/plain")


@csrf_exempt
def insert(request: HttpRequest) -> HttpResponse:
    # The floor for anything that stores a row: one INSERT of the body, committed (autocommit,
    # so durable before the answer), nothing else.
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {FLOOR_TABLE} (body) VALUES (%s)", [request.body])
    return HttpResponse(status=200, content_type="text/plain")


def floor_table_create() -> None:
    key = "bigserial PRIMARY KEY" if connection.vendor == "postgresql" else "integer PRIMARY KEY"
    kind = "bytea" if connection.vendor == "postgresql" else "blob"
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {FLOOR_TABLE}")
        cursor.execute(f"CREATE TABLE {FLOOR_TABLE} (id {key}, body {kind} NOT NULL)")


def floor_table_drop() -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {FLOOR_TABLE}")


urlpatterns = [
    path("bench/bare", bare),
    path("bench/insert", insert),
    path("", include("shopapp.urls")),
]
