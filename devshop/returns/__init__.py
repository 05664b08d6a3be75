"""Returns on the store, as Shopify's return APIs run them (shopify.dev, "Build a return
management workflow", "Process returns"):

    dev_return_request   REQUESTED   returns/request     (the app, for a shopper)
    dev_return_approve   → OPEN      returns/approve     (the merchant)
    dev_return_decline   → DECLINED  returns/decline     FINAL_SALE | RETURN_PERIOD_ENDED | OTHER
    dev_return_process   OPEN        returns/process     confirm quantities, refund / store credit;
                         → CLOSED    + returns/close     once every line is processed
                                     + refunds/create, orders/updated when money moves
    dev_return_cancel    → CANCELED  returns/cancel      only before anything was processed
    dev_return_close     → CLOSED    returns/close
    dev_return_create    OPEN        returns/approve     returnCreate: the merchant's return,
                                                         with exchange lines (variant, quantity)
    dev_return_reopen    CLOSED → OPEN  returns/reopen
    dev_return_remove_items          returns/update      removeFromReturn (unprocessed units)

Exchanges (shopify.dev, "Manage exchanges"): exchange lines exist only on returns made with
returnCreate (returnRequest has no exchange lines in 2026-10); returnProcess books them on the
order (a new line item to fulfil) and a buyer-owes difference holds them (AWAITING_PAYMENT)
until ``dev_exchange_payment_collect``.

Reverse logistics: an OPEN return has one reverse fulfillment order (its lines);
``dev_reverse_delivery_create`` / ``dev_reverse_delivery_shipping_update`` attach tracking and a
label (reverse_deliveries/attach_deliverable); ``dev_reverse_fulfillment_order_dispose``
(reverse_fulfillment_orders/dispose) records what became of the items.

Bad input raises ``ReturnInputError`` with Shopify's ``ReturnUserError`` fields (field path,
message, ``ReturnErrorCode``) and changes nothing.
"""

from devshop.returns.common import (  # noqa: F401
    CUSTOMER_NOTE_MAX,
    HOLDING_STATUSES,
    REASON_DEFINITIONS,
    REASONS_BY_HANDLE,
    REASONS_BY_ID,
    REASONS_BY_LEGACY,
    RETURN_REASON_NOTE_MAX,
    Disposition,
    ReasonDefinition,
    ReturnInputError,
    Settlement,
    UserError,
    _emit,
    _fail,
    _locked,
    _require,
    _touch,
    shop_location_id,
)
from devshop.returns.exchanges import (  # noqa: F401
    _exchange_book,
    _exchange_lines_resolve,
    dev_exchange_payment_collect,
    dev_return_create,
    dev_return_remove_items,
    dev_return_reopen,
)
from devshop.returns.process import (  # noqa: F401
    _exchange_lines_check,
    _order_settle,
    _process_apply,
    _process_defaults,
    _Processed,
    _refund_emit,
    _return_lines_check,
    dev_return_process,
)
from devshop.returns.requests import (  # noqa: F401
    _return_lines_create,
    _return_lines_resolve,
    dev_return_approve,
    dev_return_cancel,
    dev_return_close,
    dev_return_decline,
    dev_return_request,
    fulfillment_line_item_returnable_quantity,
    returnable_fulfillments,
)
from devshop.returns.reverse import (  # noqa: F401
    _carrier_from,
    _deliverable_set,
    _disposition_error,
    _dispositions_apply,
    _dispositions_check,
    _dispositions_emit,
    _label_resolve,
    _reverse_fulfillment_order_create,
    _reverse_fulfillment_orders_close,
    _rfo_fully_disposed,
    dev_reverse_delivery_create,
    dev_reverse_delivery_shipping_update,
    dev_reverse_fulfillment_order_dispose,
    rfo_line_disposed_quantity,
)
