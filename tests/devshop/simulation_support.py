"""Shared pieces for the simulation, mutation and returns tests: a devshop whose app
(APP_URL) is a capture server, so each test reads every webhook exactly as it left the store."""

import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.conftest import Devshop, start_devshop
from tests.devshop.capture_server import CaptureServer

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "shopify" / "webhooks"


@dataclass
class Hook:
    topic: str
    event_id: str
    webhook_id: str
    payload: dict[str, Any]


def capture_store(tmp_dir: Path, capture: CaptureServer) -> Devshop:
    return start_devshop(tmp_dir, {"APP_URL": capture.url})


def quiet(store: Devshop) -> None:
    """Deliveries wait for an explicit flush, so a test sees exactly what one action sent."""
    store.client.knobs_set(
        webhook_delivery_paused=True,
        webhook_chaos_duplicate=0.0,
        webhook_chaos_reorder=False,
        webhook_chaos_delay_seconds=0.0,
        clock_offset_seconds=0,
        clock_speed=1,
    )


def new_shop(store: Devshop, prefix: str) -> tuple[str, str]:
    """A fresh shop with the app installed; returns (domain, access token)."""
    domain = f"{prefix}-{uuid.uuid4().hex[:10]}.myshopify.com"
    store.client.shop_create(domain)
    token = store.client.app_install_with_token(domain)["access_token"]
    return domain, token


def hooks(store: Devshop, capture: CaptureServer, shop: str) -> list[Hook]:
    """Flush, then every webhook the shop's app received so far, in delivery order. The
    capture is cleared for the shop so the next call returns only what came after."""
    store.client.webhooks_flush()
    found = []
    for request in capture.received(x_shopify_shop_domain=shop):
        found.append(
            Hook(
                topic=request.header("X-Shopify-Topic") or "",
                event_id=request.header("X-Shopify-Event-Id") or "",
                webhook_id=request.header("X-Shopify-Webhook-Id") or "",
                payload=json.loads(request.body),
            )
        )
    with capture._lock:
        capture.requests[:] = [
            r for r in capture.requests if r.header("X-Shopify-Shop-Domain") != shop
        ]
    return found


def fixture_keys(name: str) -> set[str]:
    return set(json.loads((FIXTURES / f"{name}.json").read_text()))
