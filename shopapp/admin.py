"""Django admin for the platform's tables (staff only, /django-admin/).

Read-mostly: state changes go through services, so the admin offers actions that call them
(replay a failed webhook) rather than editable forms for mirrored Shopify data.
"""

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from shopapp.models import CustomerDataExport, LineItem, Order, OrderEvent, Shop, WebhookEvent
from shopapp.webhooks.services import webhook_event_replay


@admin.register(Shop)
class ShopAdmin(admin.ModelAdmin):
    list_display = ("myshopify_domain", "name", "is_active", "needs_reauth", "installed_at")
    list_filter = ("is_active", "needs_reauth")
    search_fields = ("myshopify_domain", "name")
    # Tokens are encrypted and never shown, not even to staff.
    exclude = ("access_token_encrypted", "refresh_token_encrypted")
    readonly_fields = (
        "shopify_id",
        "installed_at",
        "uninstalled_at",
        "access_token_expires_at",
        "refresh_token_expires_at",
        "token_refreshed_at",
        "orders_synced_at",
        "granted_scopes",
        "missing_scopes",
    )


@admin.register(WebhookEvent)
class WebhookEventAdmin(admin.ModelAdmin):
    list_display = ("webhook_id", "topic", "shop_domain", "status", "attempts", "received_at")
    list_filter = ("status", "topic")
    search_fields = ("webhook_id", "shop_domain", "event_id", "=order_shopify_id")
    date_hierarchy = "received_at"
    actions = ("replay",)

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Replay selected failed events")
    def replay(self, request: HttpRequest, queryset: QuerySet[WebhookEvent]) -> None:
        failed = queryset.filter(status=WebhookEvent.Status.FAILED).values_list("pk", flat=True)
        replayed = sum(1 for pk in failed if webhook_event_replay(event_id=pk))
        skipped = queryset.count() - replayed
        self.message_user(request, f"{replayed} event(s) queued for replay.", messages.SUCCESS)
        if skipped:
            self.message_user(
                request, f"{skipped} event(s) skipped: only failed events replay.", messages.WARNING
            )


class LineItemInline(admin.TabularInline):
    model = LineItem
    extra = 0
    can_delete = False
    fields = ("shopify_id", "title", "sku", "quantity", "current_quantity", "fulfillment_status")
    readonly_fields = fields


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ("name", "shop", "financial_status", "fulfillment_status", "shopify_created_at")
    list_filter = ("financial_status", "fulfillment_status", "is_test")
    search_fields = ("name", "email", "=shopify_id")
    list_select_related = ("shop",)
    inlines = (LineItemInline,)

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]


@admin.register(OrderEvent)
class OrderEventAdmin(admin.ModelAdmin):
    list_display = ("occurred_at", "kind", "summary", "source", "order")
    list_filter = ("kind", "source")
    list_select_related = ("order",)

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]


@admin.register(CustomerDataExport)
class CustomerDataExportAdmin(admin.ModelAdmin):
    """customers/data_request exports, for the merchant's request to be answered."""

    list_display = ("created_at", "shop", "data_request_id", "customer_id")
    list_select_related = ("shop",)

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]
