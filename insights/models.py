"""The daily rollup behind the admin's home: one row per shop and day, kept by a job.

A day is a calendar day in the shop's own zone (as the Shopify admin counts them). Each row's
``figures`` holds that day's counts (see ``insights.rollup``), so a period of any length reads
at most one row per day through the unique (shop, day) index, whatever the shop's size.
"""

from django.db import models

from shopapp.models import Shop


class ShopDay(models.Model):
    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    # Counts only, no personal data: {"orders": {...}, "delivery": {...}, ...}.
    figures = models.JSONField(default=dict)
    computed_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["shop", "day"], name="insights_shop_day_unique")
        ]

    def __str__(self) -> str:
        return f"{self.shop_id} {self.day}"
