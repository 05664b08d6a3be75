"""The deployment files agree with the code, and production refuses to start half-configured."""

import os
import subprocess
import sys
import tomllib
from pathlib import Path

from django.conf import settings

from shopapp.webhooks.handlers import TOPIC_HANDLERS

REPO = Path(__file__).resolve().parents[2]
COMPLIANCE_TOPICS = {"customers/data_request", "customers/redact", "shop/redact"}


def load_toml() -> dict:
    return tomllib.loads((REPO / "shopify.app.toml").read_text())


def test_toml_subscribes_to_exactly_the_topics_the_app_handles():
    config = load_toml()
    topics = set()
    compliance = set()
    for subscription in config["webhooks"]["subscriptions"]:
        topics.update(subscription.get("topics", []))
        compliance.update(subscription.get("compliance_topics", []))
        assert subscription["uri"] == "/webhooks/"

    assert compliance == COMPLIANCE_TOPICS
    assert topics | compliance == set(TOPIC_HANDLERS)


def test_toml_declares_the_scopes_and_version_the_app_checks():
    config = load_toml()

    assert set(config["access_scopes"]["scopes"].split(",")) == set(
        settings.SHOPIFY_SCOPES.split(",")
    )
    assert config["access_scopes"]["use_legacy_install_flow"] is False
    assert config["webhooks"]["api_version"] == settings.SHOPIFY_API_VERSION
    assert config["embedded"] is True
    assert config["app_proxy"]["subpath"] == settings.SHOPIFY_APP_PROXY_SUBPATH
    assert config["app_proxy"]["prefix"] == settings.SHOPIFY_APP_PROXY_PREFIX
    assert config["auth"]["redirect_urls"][0].endswith("/auth/callback")


def test_procfile_runs_web_worker_cron_and_release():
    processes = dict(
        line.split(":", 1) for line in (REPO / "Procfile").read_text().splitlines() if line.strip()
    )

    assert set(processes) == {"release", "web", "worker", "cron"}
    assert "migrate" in processes["release"]
    assert "gunicorn" in processes["web"]
    assert "rqworker" in processes["worker"]
    # Every queue by kind is taken by the worker (shopapp.background.queue.Queues).
    assert processes["worker"].split()[3:-1] == settings.RQ_WORKER_QUEUES
    assert "--with-scheduler" in processes["worker"]
    assert "rqcron shopapp.cron" in processes["cron"]


def _start_django(env: dict[str, str]) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in _SECRET_NAMES | {"DEBUG", "LOCAL_DEV"}}
    clean.update(env)
    clean["REDIS_URL"] = clean.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    clean.pop("PYTEST_CURRENT_TEST", None)
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); print('started')"],
        cwd=REPO,
        env={**clean, "DJANGO_SETTINGS_MODULE": "shopapp.settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )


_SECRET_NAMES = {"SECRET_KEY", "SHOPIFY_API_KEY", "SHOPIFY_API_SECRET", "TOKEN_ENCRYPTION_KEY"}


def test_production_refuses_to_start_without_its_secrets():
    result = _start_django({})

    assert result.returncode != 0
    assert "Missing required settings for production" in result.stderr
    for name in _SECRET_NAMES:
        assert name in result.stderr


def test_production_starts_with_its_secrets_and_debug_off():
    secrets = {name: "x" * 44 for name in _SECRET_NAMES}
    secrets["TOKEN_ENCRYPTION_KEY"] = "bG9jYWwtZGV2LW9ubHktdG9rZW4ta2V5LTMyYnl0ZXM="
    result = _start_django(
        {**secrets, "APP_URL": "https://app.example.com", "DATABASE_URL": "sqlite:///:memory:"}
    )
    assert result.returncode == 0, result.stderr
    assert "started" in result.stdout


def test_devshop_is_never_installed_in_production():
    secrets = {name: "x" * 44 for name in _SECRET_NAMES}
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from django.conf import settings; "
            "print('devshop' in settings.INSTALLED_APPS, settings.DEBUG)",
        ],
        cwd=REPO,
        env={
            **{k: v for k, v in os.environ.items() if k not in {"DEBUG", "LOCAL_DEV"}},
            **secrets,
            "DJANGO_SETTINGS_MODULE": "shopapp.settings",
            "DATABASE_URL": "sqlite:///:memory:",
            "REDIS_URL": "redis://127.0.0.1:6379/0",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout.strip() == "False False", result.stderr
