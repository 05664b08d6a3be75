"""The store's life: fulfilments with carriers and tracking, shipment scans, cancellations,
and the background tick and the seed that the demo and tests drive.

    dev_order_fulfil          one or several fulfillments (split), carrier, tracking number/URL
        → fulfillments/create + orders/fulfilled | orders/partially_fulfilled + orders/updated
    dev_fulfillment_event_create   one carrier scan (FulfillmentEventStatus)
        → fulfillment_events/create (+ fulfillments/update when shipment_status changes)
    dev_fulfillment_advance   the plausible scans from where a shipment is to a target status
    dev_order_cancel          → orders/cancelled + orders/updated
    dev_simulate_tick         new orders sometimes, fulfil some, one scan per moving shipment;
                              buyers ship approved returns back; the merchant's own returns
                              (made in Shopify's admin) received and processed, the app's left
                              to the merchant in the app
    dev_simulate_seed         a few dozen orders in every state, with backdated timelines

Every action fires the topics Shopify fires for it with one X-Shopify-Event-Id. Statuses and
their REST spellings: shopify.dev, FulfillmentEventStatus and Fulfillment.shipment_status.
"""

from devshop.simulation.carriers import (  # noqa: F401
    CARRIERS,
    CARRIERS_BY_COUNTRY,
    COUNTRY_NAMES,
    HUBS,
    Carrier,
    SimulationError,
    _country,
    _digits,
    _s10,
    _ups,
    carrier_for,
)
from devshop.simulation.fulfilments import (  # noqa: F401
    BRANCH_PREFIX,
    HAPPY_PATH,
    MESSAGES,
    STUCK_MODULO,
    TERMINAL,
    Status,
    _next_status,
    _order_fulfillment_status_refresh,
    _path_to,
    _scan_place,
    _unfulfilled,
    dev_fulfillment_advance,
    dev_fulfillment_create,
    dev_fulfillment_event_create,
    dev_fulfillment_step,
    dev_order_cancel,
    dev_order_fulfil,
    fulfillment_is_stuck,
    order_state,
)
from devshop.simulation.life import (  # noqa: F401
    BUYER_SHIPS_BACK_CHANCE,
    DEMO_PACE,
    FAST_PACE,
    HOLD_STATUSES,
    MERCHANT_RETURN_CHANCE,
    MERCHANT_RETURN_REASONS,
    MERCHANT_RETURNS_MAX,
    SEED_COUNTRIES,
    SEED_STATES,
    Pace,
    _merchant_return_create,
    _return_ship_back,
    _return_step,
    _seed_states,
    dev_simulate_seed,
    dev_simulate_tick,
)
