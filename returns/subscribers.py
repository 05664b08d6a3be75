"""What returns does when the platform tells it of a fact (shopapp.subscribers)."""

from __future__ import annotations

from shopapp.background.queue import Queues
from shopapp.background.services import task_defer
from shopapp.subscribers import OrderChanged


def order_changed(fact: OrderChanged) -> None:
    """A new order: read the facts of its products the app does not hold fresh (tags, type,
    variants) in the background, so the shopper's first look at the returns portal finds them
    here and costs no Admin API call (returns.eligibility.order_eligibility_local)."""
    if not fact.is_new or fact.order.cancelled_at is not None:
        return
    from returns.jobs import product_facts_refresh_job

    task_defer(
        product_facts_refresh_job,
        shop=fact.shop,
        kwargs={"order_id": fact.order.pk},
        # One pending read per order, however many times its creation is delivered.
        key=f"returns.product-facts:{fact.order.pk}",
        queue=Queues.SYNCS,
    )
