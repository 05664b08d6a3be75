"""Returns' side of the seam to notifications: what a return step tells the shopper.

    _step (a new return.<step> line on the timeline) ─ return_news(request) ─▶ ReturnNews
        the return's own signed status page, the merchant's instructions, the label (the
        app's signed link to the uploaded file, else Shopify's), the resolution and the money

notifications imports nothing of returns: this frozen fact is all it knows of a return.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from notifications.news import Item, ReturnNews, ReturnResolution
from returns import portal
from returns.models import Resolution, ReturnRequest

_RESOLUTIONS = {
    Resolution.REFUND: ReturnResolution.REFUND,
    Resolution.STORE_CREDIT: ReturnResolution.STORE_CREDIT,
    Resolution.EXCHANGE: ReturnResolution.EXCHANGE,
}


def _money(value: Any) -> str:
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return ""
    return f"{amount:.2f}" if amount > 0 else ""


def _items(request: ReturnRequest) -> tuple[Item, ...]:
    return tuple(
        Item(
            title=line.line_item.title,
            variant_title=line.line_item.variant_title,
            quantity=line.quantity,
            image_url=line.line_item.image_url,
        )
        for line in request.line_items.select_related("line_item").order_by("id")
    )


def return_news(
    request: ReturnRequest, *, happened_at: datetime, detail: dict[str, Any] | None = None
) -> ReturnNews:
    """The return as it is now; ``detail`` is the step's (a processing carries its amount)."""
    detail = detail or {}
    resolution = _RESOLUTIONS.get(Resolution(request.resolution), ReturnResolution.REFUND)
    processed = _money(detail.get("amount"))
    status_url = portal.return_status_url(request)
    if request.label_file:
        label_url = f"{status_url}/label"
    else:
        label_url = request.label_url if request.label_url.startswith("https://") else ""
    return ReturnNews(
        return_id=request.pk,
        status=request.status,
        happened_at=happened_at,
        name=request.name,
        status_url=status_url,
        instructions=request.approval_instructions.strip(),
        label_url=label_url,
        resolution=resolution,
        currency=request.currency,
        refund_amount=(
            _money(detail["refund"])
            if "refund" in detail
            else processed
            if resolution == ReturnResolution.REFUND
            else _money(request.refunded_amount)
        ),
        store_credit_amount=(
            _money(detail["store_credit"])
            if "store_credit" in detail
            else processed
            if resolution == ReturnResolution.STORE_CREDIT
            else ""
        ),
        decline_reason=request.decline_note.strip(),
        items=_items(request),
    )
