"""Script the development store from the command line, over its control API:

    python manage.py devshop_simulate orders  --shop X --count 10
    python manage.py devshop_simulate fulfil  --shop X --order ID [--split] [--carrier UPS]
    python manage.py devshop_simulate advance --shop X --fulfillment ID --to delivered
    python manage.py devshop_simulate scan    --shop X --fulfillment ID --status delayed
    python manage.py devshop_simulate cancel  --shop X --order ID [--reason customer]
    python manage.py devshop_simulate return  --shop X --return ID --action approve
    python manage.py devshop_simulate tick    --shop X [--repeat 10]
    python manage.py devshop_simulate seed    --shop X --orders 36
    python manage.py devshop_simulate clock   [--speed 3600] [--offset-seconds 0]
    python manage.py devshop_simulate state   --shop X --order ID

Each prints the control API's JSON answer.
"""

import json
from typing import Any

import requests
from django.core.management.base import BaseCommand, CommandError, CommandParser

from devshop.client import DevshopClient


class Command(BaseCommand):
    help = "Drive the devshop's simulated store (orders, fulfilments, scans, returns, clock)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--devshop-url", default="http://127.0.0.1:8001")
        commands = parser.add_subparsers(dest="command", required=True)

        orders = commands.add_parser("orders", help="create fake orders")
        orders.add_argument("--shop", required=True)
        orders.add_argument("--count", type=int, default=1)

        fulfil = commands.add_parser("fulfil", help="ship an order")
        fulfil.add_argument("--shop", required=True)
        fulfil.add_argument("--order", type=int, required=True)
        fulfil.add_argument("--split", action="store_true")
        fulfil.add_argument("--carrier")

        advance = commands.add_parser("advance", help="scan a shipment up to a status")
        advance.add_argument("--shop", required=True)
        advance.add_argument("--fulfillment", type=int, required=True)
        advance.add_argument("--to", required=True)

        scan = commands.add_parser("scan", help="one carrier scan")
        scan.add_argument("--shop", required=True)
        scan.add_argument("--fulfillment", type=int, required=True)
        scan.add_argument("--status", required=True)
        scan.add_argument("--city")

        cancel = commands.add_parser("cancel", help="cancel an order")
        cancel.add_argument("--shop", required=True)
        cancel.add_argument("--order", type=int, required=True)
        cancel.add_argument("--reason", default="customer")

        ret = commands.add_parser("return", help="act on a return as the merchant")
        ret.add_argument("--shop", required=True)
        ret.add_argument("--return", dest="return_id", type=int, required=True)
        ret.add_argument(
            "--action", required=True, choices=["approve", "decline", "process", "cancel", "close"]
        )
        ret.add_argument("--reason", default="OTHER")

        tick = commands.add_parser("tick", help="one step of the store's background life")
        tick.add_argument("--shop", required=True)
        tick.add_argument("--repeat", type=int, default=1)

        seed = commands.add_parser("seed", help="orders in every state")
        seed.add_argument("--shop", required=True)
        seed.add_argument("--orders", type=int, default=36)

        clock = commands.add_parser("clock", help="read or set the simulated clock")
        clock.add_argument("--speed", type=float)
        clock.add_argument("--offset-seconds", type=float)

        state = commands.add_parser("state", help="an order with its shipments and returns")
        state.add_argument("--shop", required=True)
        state.add_argument("--order", type=int, required=True)

    def handle(self, *args: Any, devshop_url: str, command: str, **options: Any) -> None:
        client = DevshopClient(devshop_url)
        try:
            result = self._run(client, command, options)
        except requests.HTTPError as exc:
            body = exc.response.text if exc.response is not None else ""
            raise CommandError(f"{command} failed: {exc} {body}") from exc
        except requests.RequestException as exc:
            raise CommandError(f"devshop unreachable at {devshop_url}: {exc}") from exc
        self.stdout.write(json.dumps(result, indent=2))

    def _run(self, client: DevshopClient, command: str, o: dict[str, Any]) -> Any:
        if command == "orders":
            return {"ids": client.orders_create(o["shop"], count=o["count"])}
        if command == "fulfil":
            return client.order_fulfil(
                o["shop"], o["order"], split=o["split"], carrier=o["carrier"]
            )
        if command == "advance":
            return client.fulfillment_advance(o["shop"], o["fulfillment"], o["to"].upper())
        if command == "scan":
            place = {"city": o["city"]} if o["city"] else {}
            return client.fulfillment_event(
                o["shop"], o["fulfillment"], o["status"].upper(), **place
            )
        if command == "cancel":
            return client.order_cancel(o["shop"], o["order"], reason=o["reason"].upper())
        if command == "return":
            return client.return_action(
                o["shop"], o["return_id"], o["action"], reason=o["reason"].upper()
            )
        if command == "tick":
            return [client.simulate_tick(o["shop"]) for _ in range(o["repeat"])]
        if command == "seed":
            return client.simulate_seed(o["shop"], orders=o["orders"])
        if command == "clock":
            if o["speed"] is None and o["offset_seconds"] is None:
                return client.clock()
            return client.clock_set(speed=o["speed"], offset_seconds=o["offset_seconds"])
        if command == "state":
            return client.order_state(o["shop"], o["order"])
        raise CommandError(f"unknown command {command}")
