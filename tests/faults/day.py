"""One day of a shop, the same in every scenario: orders placed, shipped (one in two parcels),
one cancelled, parcels scanned to delivered, out for delivery, in transit and delayed. A fault
is injected between two steps; the day ends when the store, the queues and the app are quiet,
and its outcome is compared with the same day run without the fault.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests
from rq import Queue

from tests.faults.stack import HTTP_TIMEOUT_S, Stack, busy_workers, wait_for

QUEUES = ("webhooks", "sends", "syncs", "maintenance", "default")
CARRIER = "UPS"


@dataclass
class Day:
    stack: Stack
    domain: str
    orders: list[int] = field(default_factory=list)
    emails: set[str] = field(default_factory=set)
    parcels: dict[str, int] = field(default_factory=dict)  # "o1.1" → fulfillment id

    @property
    def client(self) -> Any:
        return self.stack.devshop.client

    # -- the day's steps ---------------------------------------------------------------------

    def place_orders(self) -> None:
        for n in range(1, 5):
            address = f"shopper{n}.{self.domain.split('.')[0]}@example.com"
            [order_id] = self.client.orders_create(
                self.domain,
                1,
                line_items=2,
                country_code="US",
                financial_status="paid",
                customer_locale="en",
                email=address,
                phone="",
                buyer_accepts_marketing=False,
            )
            self.orders.append(order_id)
            self.emails.add(address)

    def ship(self) -> None:
        first = self.client.order_fulfil(self.domain, self.orders[0], split=True, carrier=CARRIER)
        assert len(first) == 2, first
        self.parcels["o1.1"], self.parcels["o1.2"] = first[0]["id"], first[1]["id"]
        for n in (2, 3):
            [parcel] = self.client.order_fulfil(self.domain, self.orders[n - 1], carrier=CARRIER)
            self.parcels[f"o{n}.1"] = parcel["id"]

    def cancel(self) -> None:
        self.client.order_cancel(self.domain, self.orders[3])

    def scan_first(self) -> None:
        self.client.fulfillment_advance(self.domain, self.parcels["o1.1"], "DELIVERED")
        self.client.fulfillment_advance(self.domain, self.parcels["o1.2"], "IN_TRANSIT")

    def scan_second(self) -> None:
        self.client.fulfillment_advance(self.domain, self.parcels["o2.1"], "OUT_FOR_DELIVERY")
        self.client.fulfillment_advance(self.domain, self.parcels["o3.1"], "IN_TRANSIT")
        self.client.fulfillment_event(self.domain, self.parcels["o3.1"], "DELAYED")

    @property
    def steps(self) -> list[Callable[[], None]]:
        return [self.place_orders, self.ship, self.cancel, self.scan_first, self.scan_second]

    def run(
        self,
        *,
        before: dict[int, Callable[[], None]] | None = None,
        after: dict[int, Callable[[], None]] | None = None,
    ) -> None:
        """The day's steps in order; ``before[i]`` / ``after[i]`` run around step ``i``."""
        for index, step in enumerate(self.steps):
            if before and index in before:
                before[index]()
            step()
            if after and index in after:
                after[index]()

    # -- waiting for quiet -----------------------------------------------------------------

    def store_pending(self) -> int:
        return len(self.client.webhook_deliveries(shop=self.domain, status="pending"))

    def queues_busy(self) -> int:
        try:
            conn = self.stack.redis_client()
            # Jobs waiting to start. Running ones hold a row the app counts as outstanding (a
            # pending event or task, a message being sent); a killed worker's job stays in
            # RQ's started registry until RQ's own cleanup, which settles nothing.
            return sum(Queue(name, connection=conn).count for name in QUEUES)
        except Exception:  # Redis down: not quiet
            return 1

    def processed(self, *, timeout: float = 90) -> None:
        """Until the store has delivered the day's webhooks and the app processed them (its
        messages then exist, due in their combine window)."""

        def done() -> bool:
            if self.store_pending():
                return False
            return self.stack.ops("outstanding")["webhook_events"] == 0

        wait_for(done, timeout=timeout, what="the day's webhooks processed", every=0.5)

    def settle(self, *, timeout: float = 150) -> dict[str, Any]:
        """Until the store has nothing left to deliver, the queues are empty and the app has no
        work outstanding, twice in a row; each round runs the crons an hour ahead (sweeps, due
        messages and expired leases as an hour later would find them)."""
        deadline = time.monotonic() + timeout
        quiet = 0
        rounds = 0
        while time.monotonic() < deadline:
            rounds += 1
            self.stack.workers_keep()
            if self.queues_busy() or busy_workers(self.stack):
                # The cron runs an hour ahead only while no job runs: an hour ahead, the lease
                # of a send in flight looks expired and the dispatcher would hand it out again,
                # a duplicate the real clock (leases longer than job timeouts) never makes.
                time.sleep(0.3)
                continue
            answer = self.stack.ops("round", "--ahead", "3600")
            outstanding = sum(answer["outstanding"].values())
            if not outstanding and not self.store_pending() and not self.queues_busy():
                quiet += 1
                if quiet >= 2:
                    return {"rounds": rounds}
            else:
                quiet = 0
            time.sleep(0.5)
        raise AssertionError(
            f"not quiet after {timeout:.0f} s: store pending {self.store_pending()}, "
            f"queues {self.queues_busy()}, app {self.stack.ops('outstanding')}"
        )

    # -- what the day left -----------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        return self.stack.ops("snapshot", self.domain)

    def outcome(self) -> dict[str, Any]:
        """The app's state for the shop without ids and clock times, checked against the
        store's own record first: every scan the store made is an event in the app."""
        snapshot = self.stack.ops("snapshot", self.domain)
        by_id = {order["shopify_id"]: order for order in snapshot["orders"]}
        assert sorted(by_id) == sorted(self.orders), "orders missing or extra in the app"
        for order_id in self.orders:
            truth = self.client.order_state(self.domain, order_id)
            mine = by_id[order_id]
            assert len(mine["shipments"]) == len(truth["fulfillments"]), (truth, mine)
            for parcel, shipment in zip(truth["fulfillments"], mine["shipments"], strict=True):
                assert shipment["events"] == sorted(e["id"] for e in parcel["events"]), (
                    parcel["name"],
                    shipment,
                )
            assert mine["line_items"] == len(truth["line_items"])
        orders = []
        for order in snapshot["orders"]:
            order = dict(order)
            order.pop("shopify_id")
            order["shipments"] = [{**s, "events": len(s["events"])} for s in order["shipments"]]
            # What the shopper was sent or is still owed. A message scheduled and then skipped
            # (the parcel was delivered first) and one never scheduled (the delivery was known
            # first) are the same to them: how many such rows exist depends on arrival order.
            # Likewise a parcel delivered by the time a message about an earlier stage went
            # out: the message says nothing of it (news about it was old, see
            # notifications.facts.stage_moved_past) whether or not the row lists it.
            delivered = {s["name"] for s in order["shipments"] if s["stage"] == "delivered"}
            order["messages"] = [
                {**m, "parcels": _live(m, delivered)}
                for m in order["messages"]
                if m["status"] not in {"skipped", "cancelled"}
            ]
            orders.append(order)
        return {"orders": orders, "webhook_events": snapshot["webhook_events"]}

    def assert_ends_as(self, orderly: Day) -> None:
        """Same outcome as the orderly day; if not, both timelines say where they parted."""
        mine, theirs = self.outcome(), orderly.outcome()
        if mine != theirs:
            print("this day:", json.dumps(self.stack.ops("timeline", self.domain), indent=1))
            print("orderly:", json.dumps(self.stack.ops("timeline", orderly.domain), indent=1))
            for order_mine, order_theirs in zip(mine["orders"], theirs["orders"], strict=False):
                if order_mine != order_theirs:
                    print("differs:", json.dumps([order_mine, order_theirs], indent=1))
        assert mine == theirs

    def figures(self) -> dict[str, int]:
        """Events lost, messages twice and what the store saw, for the closing table."""
        snapshot = self.stack.ops("snapshot", self.domain)
        deliveries = self.client.webhook_deliveries(shop=self.domain, limit="5000")
        delivered = {d["webhook_id"] for d in deliveries if d["status"] == "delivered"}
        stored = set(snapshot["webhook_ids"])
        unprocessed = sum(
            n for status, n in snapshot["webhook_events"].items() if status not in {"processed"}
        )
        sent = [m for m in self.stack.sink.accepted if m[1].lower() in self.emails]
        ids = Counter(message_id for message_id, _to, _subject in sent)
        codes = Counter(attempt["status_code"] for d in deliveries for attempt in d["attempt_log"])
        return {
            "deliveries": len(deliveries),
            "attempts": sum(codes.values()),
            "answers_503": codes.get(503, 0),
            "answers_other_non_200": sum(n for code, n in codes.items() if code not in {200, 503}),
            "duplicates_sent": sum(d["duplicates_sent"] for d in deliveries),
            "events_lost": len(delivered - stored) + unprocessed,
            "emails": len(sent),
            "messages_twice": sum(n - 1 for n in ids.values() if n > 1),
            "send_attempts": sum(m["attempts"] for m in snapshot["message_ids"].values()),
        }


_BEFORE_DELIVERY = {"shipped", "in_transit", "out_for_delivery", "delayed"}


def _live(message: dict[str, Any], delivered: set[str]) -> str:
    if message["trigger"] not in _BEFORE_DELIVERY:
        return message["parcels"]
    return ",".join(p for p in message["parcels"].split(",") if p and p not in delivered)


def install(stack: Stack, prefix: str) -> Day:
    """A new shop on the store with the app installed through OAuth, its install work done."""
    domain = f"{prefix}-{uuid.uuid4().hex[:8]}.myshopify.com"
    stack.devshop.client.shop_create(domain, name=f"Faults {prefix}")
    response = requests.get(
        f"{stack.app_url}/auth/install", params={"shop": domain}, timeout=HTTP_TIMEOUT_S
    )
    response.raise_for_status()
    assert urlsplit(response.url).hostname == "127.0.0.1", response.url
    day = Day(stack=stack, domain=domain)
    day.settle()
    return day
