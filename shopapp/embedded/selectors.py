"""Read queries only the embedded admin needs, every one scoped by the session token's shop.

Orders and their timeline come from ``shopapp.orders.selectors``; what is here is what no other
part reads: an order's line items for display, and the privacy exports.
"""

from django.db.models import QuerySet

from shopapp.models import CustomerDataExport, LineItem, Order, Shop


def order_line_items(*, shop: Shop, order: Order) -> QuerySet[LineItem]:
    return LineItem.objects.filter(shop=shop, order=order).order_by("id")


def customer_data_export_list(*, shop: Shop) -> QuerySet[CustomerDataExport]:
    return CustomerDataExport.objects.filter(shop=shop).order_by("-created_at", "-id")


def customer_data_export_get(*, shop: Shop, export_id: int) -> CustomerDataExport | None:
    """One of the shop's exports, or None: never another shop's."""
    return CustomerDataExport.objects.filter(shop=shop, pk=export_id).first()
