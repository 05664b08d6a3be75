"""GET /healthz: database and Redis reachability as JSON, 503 when either is down."""

import json
import time

import pytest

from tests.conftest import free_port, need

pytestmark = pytest.mark.django_db

SECRET_MARKERS = ("password", "secret", "redis://", "postgres", "sqlite", "127.0.0.1")


@pytest.fixture
def redis_reachable(settings):
    import redis

    try:
        redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError as exc:
        need(f"Redis unreachable: {exc}")


def test_healthz_ok_when_database_and_redis_answer(client, redis_reachable):
    # when
    response = client.get("/healthz")
    # then
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"]["ok"] is True
    assert body["redis"]["ok"] is True
    assert body["database"]["latency_ms"] >= 0
    assert body["redis"]["latency_ms"] >= 0
    assert response["Cache-Control"].startswith("max-age=0")


def test_healthz_degraded_when_redis_is_down(client, settings):
    # given: Redis pointed at a port nothing listens on, with a password in the URL
    settings.REDIS_URL = f"redis://:hunter2-password@127.0.0.1:{free_port()}/0"
    # when
    started = time.monotonic()
    response = client.get("/healthz")
    elapsed = time.monotonic() - started
    # then
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "degraded"
    assert body["database"]["ok"] is True
    assert body["redis"] == {
        "ok": False,
        "latency_ms": body["redis"]["latency_ms"],
        "error": "ConnectionError",
    }
    # the probe gives up fast instead of holding the load balancer's request
    assert elapsed < 3
    # and nothing of the URL, let alone its password, is echoed back
    text = json.dumps(body)
    assert "hunter2" not in text
    for marker in SECRET_MARKERS:
        assert marker not in text


def test_healthz_degraded_when_the_database_fails(client, redis_reachable, monkeypatch):
    # given: a database that refuses queries
    from django.db import OperationalError
    from django.db.backends.utils import CursorWrapper

    def refuse(self, sql, params=None):
        raise OperationalError("connection to server at 10.0.0.1 failed: password incorrect")

    monkeypatch.setattr(CursorWrapper, "execute", refuse)
    # when
    response = client.get("/healthz")
    # then
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "degraded"
    assert body["database"]["ok"] is False
    assert body["database"]["error"] == "OperationalError"
    assert "password" not in response.content.decode()
    assert body["redis"]["ok"] is True


def test_healthz_needs_no_session_token_and_answers_get_only(client):
    # when
    response = client.post("/healthz")
    # then
    assert response.status_code == 405
