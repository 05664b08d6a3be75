"""The development store's own tables (its own database: never the app's)."""

from devshop.models.orders import (
    DevCustomer,
    DevFulfillment,
    DevFulfillmentEvent,
    DevFulfillmentLineItem,
    DevLineItem,
    DevOrder,
    DevProduct,
    DevVariant,
)
from devshop.models.returns import (
    DevExchangeLineItem,
    DevReturn,
    DevReturnLineItem,
    DevReverseDelivery,
    DevReverseDeliveryLineItem,
    DevReverseFulfillmentOrder,
    DevReverseFulfillmentOrderDisposition,
    DevReverseFulfillmentOrderLineItem,
    DevStagedUpload,
)
from devshop.models.shops import DevAccessToken, DevAuthorizationCode, DevSetting, DevShop
from devshop.models.themes import DevTheme
from devshop.models.webhooks import DevWebhookDelivery, DevWebhookSubscription

__all__ = [
    "DevAccessToken",
    "DevAuthorizationCode",
    "DevCustomer",
    "DevExchangeLineItem",
    "DevFulfillment",
    "DevFulfillmentEvent",
    "DevFulfillmentLineItem",
    "DevLineItem",
    "DevOrder",
    "DevProduct",
    "DevReturn",
    "DevReturnLineItem",
    "DevReverseDelivery",
    "DevReverseDeliveryLineItem",
    "DevReverseFulfillmentOrder",
    "DevReverseFulfillmentOrderDisposition",
    "DevReverseFulfillmentOrderLineItem",
    "DevSetting",
    "DevShop",
    "DevTheme",
    "DevStagedUpload",
    "DevVariant",
    "DevWebhookDelivery",
    "DevWebhookSubscription",
]
