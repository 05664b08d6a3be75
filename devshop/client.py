"""A small client for the devshop's control API, for tests, the simulator and the demo."""

from typing import Any

import requests

TIMEOUT_SECONDS = 10


class DevshopClient:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = requests.Session()

    # The URL template the app uses to reach a shop on this store.
    @property
    def admin_url_template(self) -> str:
        return f"{self.base_url}/store/{{shop}}"

    def shop_url(self, shop: str) -> str:
        return f"{self.base_url}/store/{shop}"

    def _post(self, path: str, data: dict[str, Any] | None = None) -> Any:
        response = self.http.post(
            f"{self.base_url}{path}", json=data or {}, timeout=TIMEOUT_SECONDS
        )
        response.raise_for_status()
        return response.json()

    def _get(self, path: str) -> Any:
        response = self.http.get(f"{self.base_url}{path}", timeout=TIMEOUT_SECONDS)
        response.raise_for_status()
        return response.json()

    def shop_create(self, myshopify_domain: str, **fields: Any) -> dict[str, Any]:
        return self._post("/_devshop/shops", {"myshopify_domain": myshopify_domain, **fields})

    def shop_get(self, myshopify_domain: str) -> dict[str, Any]:
        return self._get(f"/_devshop/shops/{myshopify_domain}")

    def admin_api_requests(self, myshopify_domain: str) -> int:
        """Admin API requests the store has answered so far (any outcome)."""
        return int(self.shop_get(myshopify_domain)["admin_api_requests"])

    def session_token(self, myshopify_domain: str, **fields: Any) -> str:
        return self._post(f"/_devshop/shops/{myshopify_domain}/session-token", fields)["id_token"]

    def knobs_get(self) -> dict[str, Any]:
        return self._get("/_devshop/knobs")

    def knobs_set(self, **values: Any) -> dict[str, Any]:
        return self._post("/_devshop/knobs", values)

    def app_install(self, myshopify_domain: str, scopes: str | None = None) -> dict[str, Any]:
        body = {"scopes": scopes} if scopes is not None else {}
        return self._post(f"/_devshop/shops/{myshopify_domain}/app/install", body)

    def app_uninstall(self, myshopify_domain: str) -> dict[str, Any]:
        return self._post(f"/_devshop/shops/{myshopify_domain}/app/uninstall")

    def access_token_valid(self, myshopify_domain: str, access_token: str) -> bool:
        path = f"/_devshop/shops/{myshopify_domain}/access-token/check"
        return bool(self._post(path, {"access_token": access_token})["valid"])

    # -- orders, direct install and Admin API knobs (devshop.orders, devshop.graphql) --------

    def app_install_with_token(
        self, myshopify_domain: str, *, expiring: bool = True
    ) -> dict[str, Any]:
        """Install the app without OAuth; returns Shopify's token response."""
        return self._post(f"/_devshop/shops/{myshopify_domain}/install", {"expiring": expiring})

    def orders_create(self, myshopify_domain: str, count: int = 1, **overrides: Any) -> list[int]:
        """Create realistic fake orders; returns their numeric ids."""
        body = {"count": count, **overrides}
        return self._post(f"/_devshop/shops/{myshopify_domain}/orders", body)["ids"]

    def order_update(self, myshopify_domain: str, order_id: int, **fields: Any) -> dict[str, Any]:
        return self._post(f"/_devshop/shops/{myshopify_domain}/orders/{order_id}", fields)

    def variant_update(
        self,
        myshopify_domain: str,
        variant_id: int,
        *,
        available_for_sale: bool | None = None,
        price: str | None = None,
    ) -> dict[str, Any]:
        path = f"/_devshop/shops/{myshopify_domain}/variants/{variant_id}"
        fields: dict[str, Any] = {"available_for_sale": available_for_sale, "price": price}
        return self._post(path, {k: v for k, v in fields.items() if v is not None})

    def product_update(
        self,
        myshopify_domain: str,
        product_id: int,
        *,
        tags: str | None = None,
        product_type: str | None = None,
        image_url: str | None = None,
        has_image: bool | None = None,
    ) -> dict[str, Any]:
        """Edit a product's tags ("a, b"), type and/or picture, as a merchant would in their
        admin (``has_image=False`` removes it; ``image_url`` puts one hosted elsewhere)."""
        fields = {
            "tags": tags,
            "product_type": product_type,
            "image_url": image_url,
            "has_image": has_image,
        }
        path = f"/_devshop/shops/{myshopify_domain}/products/{product_id}"
        return self._post(path, {k: v for k, v in fields.items() if v is not None})

    def theme_publish(self, myshopify_domain: str, name: str, **colours: str) -> dict[str, Any]:
        """Publish a new theme with these colours (background, text, button): themes/publish."""
        path = f"/_devshop/shops/{myshopify_domain}/themes/publish"
        return self._post(path, {"name": name, **colours})

    def theme_colours_save(self, myshopify_domain: str, **colours: str) -> dict[str, Any]:
        """Save colours in the published theme's editor: themes/update."""
        return self._post(f"/_devshop/shops/{myshopify_domain}/themes/main/colours", colours)

    def product_status_set(self, myshopify_domain: str, product_id: int, status: str) -> Any:
        path = f"/_devshop/shops/{myshopify_domain}/products/{product_id}/status"
        return self._post(path, {"status": status})

    def admin_api_fail_next(
        self, count: int, *, status: int = 503, retry_after: float | None = None
    ) -> None:
        """Answer the next ``count`` Admin API calls with ``status`` (5xx or 429)."""
        self.knobs_set(
            admin_api_fail_next={"count": count, "status": status, "retry_after": retry_after}
        )

    def oauth_fail_next(self, count: int, *, status: int = 503) -> None:
        """Answer the next ``count`` token requests (/admin/oauth/access_token) with ``status``."""
        self.knobs_set(oauth_fail_next={"count": count, "status": status})

    def graphql_throttle_set(
        self, *, bucket_size: float | None = None, restore_rate: float | None = None
    ) -> None:
        """Override the shop plan's GraphQL bucket (None: back to the plan's)."""
        # 0 means "not set": the knob store keeps JSON values, and 0 is never a real size.
        self.knobs_set(graphql_bucket_size=bucket_size or 0, graphql_restore_rate=restore_rate or 0)

    # Webhooks (devshop.webhooks).
    def webhook_emit(
        self, myshopify_domain: str, topic: str, payload: dict[str, Any], **fields: Any
    ) -> dict[str, Any]:
        """Queue one event ({"event_id", "deliveries": […]}); fields: event_id, test."""
        return self._post(
            f"/_devshop/shops/{myshopify_domain}/webhooks/emit",
            {"topic": topic, "payload": payload, **fields},
        )

    def webhooks_flush(self) -> dict[str, int]:
        """Deliver everything due now; counts of delivered, failed, gave_up, duplicates, pending."""
        return self._post("/_devshop/webhooks/flush")

    def webhook_deliveries(self, **filters: str) -> list[dict[str, Any]]:
        """Deliveries with status and attempts; filters: shop, topic, status, limit."""
        query = "&".join(f"{key}={value}" for key, value in filters.items())
        return self._get(f"/_devshop/webhooks?{query}")["deliveries"]

    def webhook_subscription_create(
        self, myshopify_domain: str, topic: str, uri: str, **fields: Any
    ) -> list[dict[str, Any]]:
        path = f"/_devshop/shops/{myshopify_domain}/webhooks/subscriptions"
        return self._post(path, {"topic": topic, "uri": uri, **fields})["subscriptions"]

    # The store's life (devshop.simulation, devshop.returns).
    def order_fulfil(
        self,
        myshopify_domain: str,
        order_id: int,
        *,
        split: bool = False,
        carrier: str | None = None,
        line_items: list[dict[str, int]] | None = None,
    ) -> list[dict[str, Any]]:
        """Ship an order (all of it, split per item, or ``line_items`` [{"id", "quantity"}]);
        returns the fulfillments made ({"id", "name", "tracking_company", …})."""
        body: dict[str, Any] = {"split": split, "carrier": carrier}
        if line_items:
            body["line_items"] = line_items
        path = f"/_devshop/shops/{myshopify_domain}/orders/{order_id}/fulfil"
        return self._post(path, body)["fulfillments"]

    def order_state(self, myshopify_domain: str, order_id: int) -> dict[str, Any]:
        return self._get(f"/_devshop/shops/{myshopify_domain}/orders/{order_id}/state")

    def order_cancel(
        self, myshopify_domain: str, order_id: int, reason: str = "CUSTOMER"
    ) -> dict[str, Any]:
        path = f"/_devshop/shops/{myshopify_domain}/orders/{order_id}/cancel"
        return self._post(path, {"reason": reason})

    def order_refund(
        self, myshopify_domain: str, order_id: int, line_items: list[dict[str, int]]
    ) -> dict[str, Any]:
        """Refund units without a return ([{"id": line item id, "quantity": n}])."""
        path = f"/_devshop/shops/{myshopify_domain}/orders/{order_id}/refund"
        return self._post(path, {"line_items": line_items})

    def fulfillment_event(
        self, myshopify_domain: str, fulfillment_id: int, status: str, **place: Any
    ) -> dict[str, Any]:
        """One carrier scan (FulfillmentEventStatus, e.g. "IN_TRANSIT"); place: city, …"""
        path = f"/_devshop/shops/{myshopify_domain}/fulfillments/{fulfillment_id}/events"
        return self._post(path, {"status": status, **place})

    def fulfillment_advance(
        self, myshopify_domain: str, fulfillment_id: int, to: str
    ) -> dict[str, Any]:
        """Every plausible scan from where the shipment is up to ``to`` (e.g. "DELIVERED")."""
        path = f"/_devshop/shops/{myshopify_domain}/fulfillments/{fulfillment_id}/events"
        return self._post(path, {"to": to})

    def return_get(self, myshopify_domain: str, return_id: int) -> dict[str, Any]:
        """A return's status, decline and the money moved: {"refunded_amount",
        "store_credit_amount", "exchange_amount_due"} as decimal strings."""
        return self._get(f"/_devshop/shops/{myshopify_domain}/returns/{return_id}")

    def return_action(
        self, myshopify_domain: str, return_id: int, action: str, **fields: Any
    ) -> dict[str, Any]:
        """The merchant's side of a return: approve, decline, process, cancel, close, reopen;
        pay_exchange: the buyer pays what a buyer-owes exchange left due."""
        return self._post(
            f"/_devshop/shops/{myshopify_domain}/returns/{return_id}/{action}", fields
        )

    def simulate_tick(
        self, myshopify_domain: str, pace: str | dict[str, float] | None = None
    ) -> dict[str, Any]:
        """One step of the store's background life (the demo calls this every few seconds
        with ``pace="demo"``: parcels move at a pace a person can follow)."""
        body = {} if pace is None else {"pace": pace}
        return self._post(f"/_devshop/shops/{myshopify_domain}/simulate/tick", body)

    def simulate_seed(self, myshopify_domain: str, orders: int = 36) -> dict[str, list[int]]:
        """Orders in every state; returns order ids by state."""
        path = f"/_devshop/shops/{myshopify_domain}/simulate/seed"
        response = self.http.post(f"{self.base_url}{path}", json={"orders": orders}, timeout=300)
        response.raise_for_status()
        return response.json()["orders"]

    def demo_seed(self, myshopify_domain: str, orders: int = 36) -> dict[str, list[int]]:
        """What the demo command calls to fill its shop."""
        return self.simulate_seed(myshopify_domain, orders=orders)

    def clock_set(
        self, *, speed: float | None = None, offset_seconds: float | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if speed is not None:
            body["speed"] = speed
        if offset_seconds is not None:
            body["offset_seconds"] = offset_seconds
        return self._post("/_devshop/clock", body)

    def clock(self) -> dict[str, Any]:
        return self._get("/_devshop/clock")

    # Storefront (devshop.storefront).
    def storefront_url(self, myshopify_domain: str, path: str = "/") -> str:
        return f"{self.base_url}/store/{myshopify_domain}{path}"

    def app_proxy_url(
        self, myshopify_domain: str, path: str = "", subpath: str = "postpurchase"
    ) -> str:
        """The storefront URL a shopper opens for the app's /proxy/<path>."""
        return self.storefront_url(myshopify_domain, f"/apps/{subpath}/{path.lstrip('/')}")
