"""``python manage.py return_policy_set --shop <domain> [--product-exchange on|off]``.

The return policy's choices from a terminal, through the same service as the admin's policy
page (``returns.services.return_policy_update``): turning "exchange for a different product" on
reads the shop's catalogue at once, on the syncs queue. The demo turns it on for its store, so
a shopper trying the portal can swap an item for another product.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from returns.services.policy import return_policy_update
from shopapp.models import Shop

SWITCH = {"on": True, "off": False}


class Command(BaseCommand):
    help = "Change a shop's return policy (exchange for a different product)."

    def add_arguments(self, parser):
        parser.add_argument("--shop", required=True, help="the shop's myshopify domain")
        parser.add_argument(
            "--product-exchange",
            choices=sorted(SWITCH),
            help="offer an exchange for a different product (turns exchanges on too)",
        )

    def handle(self, *args, shop: str, product_exchange: str | None, **options):
        found = Shop.objects.filter(myshopify_domain=shop, is_active=True).first()
        if found is None:
            raise CommandError(f"no installed shop {shop!r}")
        fields: dict[str, bool] = {}
        if product_exchange is not None:
            fields["allow_product_exchange"] = SWITCH[product_exchange]
            if SWITCH[product_exchange]:
                fields["allow_exchange"] = True
        if not fields:
            raise CommandError("nothing to change: give --product-exchange on|off")
        try:
            policy = return_policy_update(shop=found, **fields)
        except ValidationError as exc:
            raise CommandError(f"refused: {'; '.join(exc.messages)}") from exc
        self.stdout.write(
            f"{shop}: exchanges {'on' if policy.allow_exchange else 'off'}, for a different "
            f"product {'on' if policy.allow_product_exchange else 'off'}"
        )
