"""Journeys: from the development store's own events to what the shopper receives.

    devshop (its own process) ── signed webhooks over HTTP ──▶ live app (/webhooks/, intake)
         ▲                                                          │ rows, on commit
         └── Admin GraphQL, OAuth ◀── RQ worker (burst, real Redis) ◀┘
                                             │ cron's jobs run by hand: dispatch, sweeps
                                             ▼
                             aiosmtpd (SMTP) · the Twilio stand-in

No stand-in for any app of ours: the shop is installed through the real OAuth code grant, the
devshop's webhook deliveries are flushed to the live app, and the jobs run on a real RQ worker.
Stand-ins only for what is not ours: Shopify (the devshop), SMTP and Twilio.
"""

from __future__ import annotations

import os
import re
import subprocess
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from html import unescape
from typing import Any
from urllib.parse import urlsplit

import django_rq
import pytest
import requests
import time_machine
from django.conf import settings
from django.utils import timezone
from rq import SimpleWorker

from devshop.session_tokens import session_token_mint
from notifications.services import messages_dispatch_due
from shopapp.background.services import tasks_sweep
from shopapp.models import Order, Shop
from shopapp.webhooks.services import webhook_event_sweep
from tests.conftest import Devshop, start_devshop
from tests.notifications.engine_support import (  # noqa: F401 - fixtures
    SmtpSink,
    smtp_sink,
    twilio,
)

# The app and the devshop share 127.0.0.1 (the devshop's OAuth redirects there).
os.environ.setdefault("DJANGO_LIVE_TEST_SERVER_ADDRESS", "127.0.0.1")

QUEUES = tuple(settings.RQ_WORKER_QUEUES)
# The admin's `host` parameter: base64 of admin.shopify.com/store/<shop>.
ADMIN_HOST = "YWRtaW4uc2hvcGlmeS5jb20vc3RvcmUvam91cm5leQ"
HIDDEN = re.compile(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)">')
TIMELINE_ROW = re.compile(
    r'<li class="timeline__item[^"]*" data-kind="([^"]+)"[^>]*>.*?'
    r'<span class="timeline__summary">(.*?)</span>',
    re.S,
)
HTTP_TIMEOUT_S = 15


@pytest.fixture(scope="module")
def journey_devshop(live_server, tmp_path_factory):
    """A development store whose app is the live server; deliveries wait for ``flush``."""
    server = start_devshop(
        tmp_path_factory.mktemp("journey-devshop"),
        {"APP_URL": live_server.url, "DEVSHOP_AUTO_APPROVE": "1"},
    )
    yield server
    server.process.terminate()
    try:
        server.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.process.kill()


@dataclass
class Journey:
    """One shop on the devshop with the app installed, and the levers of the app's processes."""

    devshop: Devshop
    app_url: str
    domain: str
    smtp: SmtpSink
    redis: Any
    now_offset: timedelta = field(default=timedelta())

    @property
    def client(self) -> Any:
        return self.devshop.client

    @property
    def shop(self) -> Shop:
        return Shop.objects.get(myshopify_domain=self.domain)

    # -- the app's processes ---------------------------------------------------------------

    def work(self) -> None:
        """What the RQ workers would do now: every queued job, scheduled ones when due."""
        worker = SimpleWorker([django_rq.get_queue(name) for name in QUEUES], connection=self.redis)
        worker.work(burst=True, with_scheduler=True)

    def cron(self) -> None:
        """One round of the minute crons that hand work to RQ (sweeps, due messages)."""
        webhook_event_sweep()
        tasks_sweep()
        messages_dispatch_due()

    def pump(self, *, rounds: int = 12) -> None:
        """Deliver what the store sent, process it, and again, until the store is quiet."""
        for _ in range(rounds):
            counts = self.client.webhooks_flush()
            self.work()
            if not counts.get("delivered") and not counts.get("pending"):
                return
        raise AssertionError(f"the store kept sending webhooks: {counts}")

    def later(self, delta: timedelta) -> time_machine.travel:
        """The app's clock moved on (the devshop's stays): for messages due later."""
        self.now_offset += delta
        return time_machine.travel(timezone.now() + self.now_offset, tick=True)

    def send_due(self, *, after: timedelta = timedelta()) -> None:
        """The dispatcher and the workers, ``after`` from now."""
        with time_machine.travel(timezone.now() + after, tick=True):
            self.cron()
            self.work()

    # -- what the shopper and support see ---------------------------------------------------

    def emails_to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.smtp.messages if address.lower() in str(m["To"]).lower()]

    def admin_get(self, path: str, **params: str) -> requests.Response:
        """A page of the embedded admin, fetched over HTTP with a session token as the admin
        iframe sends it; must answer 200."""
        token = session_token_mint(
            shop_domain=self.domain,
            secret=settings.SHOPIFY_API_SECRET,
            audience=settings.SHOPIFY_API_KEY,
        )
        response = requests.get(
            f"{self.app_url}{path}",
            params={"shop": self.domain, "host": ADMIN_HOST, "id_token": token, **params},
            timeout=HTTP_TIMEOUT_S,
        )
        assert response.status_code == 200, response.status_code
        return response

    def admin_order_page(self, order: Order) -> str:
        """The order's page in the embedded admin."""
        # One list, newest first: the page groups lines by parcel and return by default.
        return self.admin_get(f"/app/orders/{order.shopify_id}", view="list").text

    def timeline(self, order: Order) -> list[tuple[str, str]]:
        """The order's timeline as support reads it in the admin, oldest first."""
        page = self.admin_order_page(order)
        rows = TIMELINE_ROW.findall(page)
        assert rows or "Nothing here yet." in page, "the page has no timeline"
        return [(kind, unescape(summary)) for kind, summary in reversed(rows)]

    def order(self, shopify_id: int) -> Order:
        return Order.objects.get(shop__myshopify_domain=self.domain, shopify_id=shopify_id)


def portal_submit(
    journey: Journey,
    order: Order,
    line: Any,
    *,
    contact: str,
    resolution: str,
    variant: str = "",
    note: str = "",
) -> str:
    """The shopper's way through the storefront returns portal (each request signed by the
    devshop as Shopify's app proxy does), one unit of ``line``; returns the confirmation page."""
    url = journey.client.app_proxy_url(journey.domain, "returns")
    with requests.Session() as shopper:
        page = shopper.get(url, timeout=HTTP_TIMEOUT_S)
        found = shopper.post(
            url,
            data={**hidden_fields(page.text), "order": order.name, "contact": contact},
            timeout=HTTP_TIMEOUT_S,
        )
        assert f'name="quantity-{line.pk}"' in found.text, found.text[-2000:]
        choice = {
            f"quantity-{line.pk}": "1",
            f"reason-{line.pk}": "SIZE_TOO_SMALL",
            "resolution": resolution,
        }
        if variant:
            choice[f"variant-{line.pk}"] = variant
        if note:
            choice[f"note-{line.pk}"] = note
        review = shopper.post(
            url, data={**hidden_fields(found.text), **choice}, timeout=HTTP_TIMEOUT_S
        )
        assert "Review your return" in review.text, review.text[-2000:]
        done = shopper.post(url, data=hidden_fields(review.text), timeout=HTTP_TIMEOUT_S)
    assert done.status_code == 201, done.text[-2000:]
    return done.text


def hidden_fields(html: str) -> dict[str, str]:
    form = html.split("<form")[1].split("</form>")[0]
    return {name: unescape(value) for name, value in HIDDEN.findall(form)}


def text_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    return part.get_content() if part is not None else ""


def html_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("html",))
    return part.get_content() if part is not None else ""


def _install(app_url: str, domain: str) -> None:
    """The merchant installs the app: the real authorization code grant, app → store → app."""
    response = requests.get(
        f"{app_url}/auth/install", params={"shop": domain}, timeout=HTTP_TIMEOUT_S
    )
    response.raise_for_status()
    # The last hop is the app inside the store's admin (on the devshop): nothing else.
    assert urlsplit(response.url).hostname == "127.0.0.1", response.url


@pytest.fixture
def journey(
    live_server,
    journey_devshop,
    settings,
    transactional_db,
    smtp_sink,  # noqa: F811 - the imported fixture, used here
    redis_conn,
) -> Journey:
    devshop = journey_devshop
    settings.APP_URL = live_server.url
    settings.ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
    settings.SHOPIFY_ADMIN_URL_TEMPLATE = devshop.admin_url_template
    settings.SHOPIFY_EMBEDDED_APP_URL_TEMPLATE = f"{devshop.base_url}/store/{{shop}}/admin/apps/app"
    settings.SHOPIFY_STOREFRONT_URL_TEMPLATE = f"{devshop.base_url}/store/{{shop}}"
    settings.SHOPIFY_EXTRA_FRAME_ANCESTORS = [devshop.base_url]
    devshop.client.knobs_set(
        access_token_ttl=3600,
        refresh_token_ttl=90 * 86400,
        auto_approve=True,
        webhook_delivery_paused=True,
        webhook_chaos_duplicate=0.0,
        webhook_chaos_reorder=False,
    )
    domain = f"journey-{uuid.uuid4().hex[:10]}.myshopify.com"
    devshop.client.shop_create(domain, name="Journey Goods")
    _install(live_server.url, domain)
    journey = Journey(
        devshop=devshop,
        app_url=live_server.url,
        domain=domain,
        smtp=smtp_sink,
        redis=redis_conn,
    )
    # The install's own work: the shop's details and a first reconciliation, on the worker.
    journey.pump()
    assert Shop.objects.get(myshopify_domain=domain).is_active
    return journey


def moment(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
