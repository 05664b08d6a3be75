"""What the fault tests ask of the app's own side, run as a process of the stack under test
(its DATABASE_URL and REDIS_URL): ``python tests/faults/ops.py <command> …``, one JSON answer
on stdout.

    round --ahead S    one round of the minute crons as they would run S seconds from now
                       (the sweeps' and leases' waits are minutes; the test does not sleep
                       them), then the work still outstanding at that time
    snapshot DOMAIN    the shop's state, without ids or clock times: what two runs of the same
                       day must agree on
    outstanding        work not finished: pending webhook events and tasks, messages due
"""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shopapp.settings")

import django  # noqa: E402

django.setup()

import time_machine  # noqa: E402
from django.db.models import Count  # noqa: E402
from django.utils import timezone  # noqa: E402

from notifications.dispatch import messages_dispatch_due  # noqa: E402
from notifications.models import Message  # noqa: E402
from shopapp.background.services import tasks_sweep  # noqa: E402
from shopapp.models import Order, OrderEvent, Task, WebhookEvent  # noqa: E402
from shopapp.webhooks.services import webhook_event_sweep  # noqa: E402
from tracking.models import Shipment, TrackingEvent  # noqa: E402


def cron_round(ahead: float) -> dict:
    with time_machine.travel(timezone.now() + timedelta(seconds=ahead), tick=True):
        handed = {
            "webhooks": webhook_event_sweep(),
            "tasks": tasks_sweep(),
            "messages": messages_dispatch_due(),
        }
        return {"handed": handed, "outstanding": outstanding()}


def snapshot(domain: str) -> dict:
    orders = list(Order.objects.filter(shop__myshopify_domain=domain).order_by("order_number"))
    state = []
    for order in orders:
        shipments = []
        for shipment in Shipment.objects.filter(order=order).order_by("name"):
            events = TrackingEvent.objects.filter(shipment=shipment, deleted_at__isnull=True)
            shipments.append(
                {
                    "name": shipment.name,
                    "status": shipment.status,
                    "shipment_status": shipment.shipment_status,
                    "stage": shipment.stage,
                    "tracking_company": shipment.tracking_company,
                    "events": sorted(events.values_list("shopify_id", flat=True)),
                    "event_statuses": sorted(events.values_list("status", flat=True)),
                }
            )
        # A message is keyed by the parcels it is about, by name (the subject key names the
        # parcel heard of first, which depends on the order webhooks arrived in).
        names = dict(Shipment.objects.filter(order=order).values_list("fulfillment_id", "name"))
        rows = Counter()
        for message in Message.objects.filter(order=order).prefetch_related("shipments"):
            parcels = sorted(names.get(p.fulfillment_id, "?") for p in message.shipments.all())
            key = (message.trigger, message.channel, message.status, ",".join(parcels))
            rows[key] += 1
        messages = [
            {"trigger": t, "channel": c, "status": st, "parcels": p, "n": n}
            for (t, c, st, p), n in sorted(rows.items())
        ]
        state.append(
            {
                "name": order.name,
                "shopify_id": order.shopify_id,
                "financial_status": order.financial_status,
                "fulfillment_status": order.fulfillment_status,
                "cancelled": order.cancelled_at is not None,
                "line_items": order.line_items.count(),
                "shipments": shipments,
                "messages": messages,
            }
        )
    events = WebhookEvent.objects.filter(shop_domain=domain)
    return {
        "orders": state,
        "webhook_events": dict(events.values_list("status").annotate(n=Count("id"))),
        "webhook_ids": sorted(events.values_list("webhook_id", flat=True)),
        "message_ids": {
            str(pk): {"status": status, "attempts": attempts, "last_error": last_error}
            for pk, status, attempts, last_error in Message.objects.filter(
                shop__myshopify_domain=domain
            ).values_list("pk", "status", "attempts", "last_error")
        },
    }


def timeline(domain: str) -> dict:
    """Each order's timeline as support reads it, in the order it was written: what a failed
    comparison prints, to say why two days differ."""
    return {
        order.name: [
            f"{event.kind}: {event.summary}"
            for event in OrderEvent.objects.filter(order=order).order_by("created_at", "id")
        ]
        for order in Order.objects.filter(shop__myshopify_domain=domain).order_by("order_number")
    }


def outstanding() -> dict:
    """Work the app still owes as of now: events to process, tasks and messages due, and
    messages being sent."""
    now = timezone.now()
    return {
        "webhook_events": WebhookEvent.objects.filter(status=WebhookEvent.Status.PENDING).count(),
        "tasks": Task.objects.filter(status=Task.Status.PENDING, run_after__lte=now).count(),
        "messages_due": Message.objects.filter(
            status=Message.Status.SCHEDULED, due_at__lte=now
        ).count(),
        "messages_sending": Message.objects.filter(status=Message.Status.SENDING).count(),
    }


def main(argv: list[str]) -> None:
    command, *rest = argv
    if command == "round":
        answer = cron_round(float(rest[rest.index("--ahead") + 1]) if "--ahead" in rest else 0.0)
    elif command == "snapshot":
        answer = snapshot(rest[0])
    elif command == "timeline":
        answer = timeline(rest[0])
    elif command == "outstanding":
        answer = outstanding()
    else:
        raise SystemExit(f"unknown command {command!r}")
    print(json.dumps(answer, sort_keys=True))


if __name__ == "__main__":
    main(sys.argv[1:])
