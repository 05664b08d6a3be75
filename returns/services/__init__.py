"""Every change to a return: the shopper's request, the merchant's actions, Shopify's webhooks.

    portal ── return_request_submit ──> ReturnRequest SUBMITTED (sync pending) + its send task
                └─(task) return_request_send_job ─> returnRequest ─> REQUESTED
                                                  └─> auto-approve when the policy's rules hold
    admin  ── approve / decline / receive / process / cancel / close ─> Shopify, then local
    Shopify ─ returns/* webhooks ──> return_webhook_apply ─> local status (Shopify wins)

Each step writes one OrderEvent (``return.<step>``, deduplicated per return and step, so the
app's own call and the webhook that echoes it are recorded once) and, when the event is new,
tells notifications (``returns.news``: a ReturnNews with the return's status page,
instructions, label and money).

The package, by stage of a return's life:

    common.py      statuses, refusals, the timeline step, the actions' one-at-a-time lock
    submission.py  the shopper's request, the customer's history, the auto-approve decision
    requests.py    a request as Shopify takes it and gives it back
    sending.py     sending it to Shopify (a task), auto-approving
    actions.py     approve (with a label), decline, cancel, close
    receive.py     receiving items (dispositions)
    process.py     refunds, store credit, exchanges
    sync.py        Shopify's webhooks and reading a return back
    policy.py      the merchant's policy and blocklist
    privacy.py     customers/redact and shop/redact (shopapp.subscribers)

Webhook order rule (Shopify delivers at least once, in no particular order,
shopify.dev "Ignore duplicates"): a webhook whose X-Shopify-Triggered-At is older than the one
that last set the status changes nothing; otherwise the status only moves forward
(SUBMITTED < REQUESTED < OPEN < DECLINED/CANCELED/CLOSED), except that returns/reopen takes a
CLOSED return back to OPEN. So a returns/approve delivered after returns/close never reopens it.
Only Shopify's clock orders webhooks: the app's own calls move the status forward but never
stamp ``shopify_status_at`` with the app's time, since a change made in Shopify's admin in the
same second (Shopify's timestamps have whole seconds, and the clocks differ) would then look
older than our call and be dropped; their echoes bring Shopify's time.
"""

from returns.services.actions import (  # noqa: F401
    _exchange_create,
    _label_read,
    _label_send,
    _reverse_store,
    return_label_attach,
    return_request_approve,
    return_request_cancel,
    return_request_close,
    return_request_decline,
)
from returns.services.common import (  # noqa: F401
    _DONE,
    _RANK,
    _SUMMARIES,
    _TRIGGERS,
    ACTION_LOCK_SECONDS,
    ACTION_WAIT_SECONDS,
    CUSTOMER_NOTE_MAX,
    DECLINE_NOTE_MAX,
    ECHO_SLACK,
    RETURN_REASON_NOTE_MAX,
    UNAVAILABLE_MESSAGE,
    ReturnActionError,
    ReturnItemInput,
    ReturnNotYetSynced,
    ReturnOrderMissing,
    ReturnRefused,
    ReturnShopifyUnavailable,
    Status,
    _api_version_at_least,
    _cycle,
    _fresh,
    _is_held,
    _locked,
    _mutate,
    _one_at_a_time,
    _order_gid,
    _require,
    _return_gid,
    _status_label,
    _step,
    user_errors_text,
)
from returns.services.policy import (  # noqa: F401
    blocklist_entry_add,
    blocklist_entry_remove,
    return_policy_update,
)
from returns.services.process import (  # noqa: F401
    _process_input,
    _process_quantities,
    _replacements_record,
    _settlement,
    return_request_process,
)
from returns.services.receive import (  # noqa: F401
    RECEIVE_DISPOSITIONS,
    _dispose_errors_text,
    _received_apply,
    return_items_receive,
)
from returns.services.requests import (  # noqa: F401
    _adopt_sent,
    _line_gids_store,
    _lines_signature,
    _request_lines_input,
    _request_signature,
    _send_started_mark,
    _shopify_id_assign,
)
from returns.services.sending import (  # noqa: F401
    _auto_approve,
    _exchange_hold,
    return_request_send,
    return_request_sync_fail,
)
from returns.services.submission import (  # noqa: F401
    CustomerHistory,
    _customer_owns,
    _held_quantities,
    _lines_create,
    _normalize_items,
    _send_enqueue,
    _validate_items,
    blocklist_contains,
    customer_history,
    return_auto_approve_decision,
    return_request_submit,
    return_request_value,
)
from returns.services.sync import (  # noqa: F401
    _STATUS_STEP,
    _TOPIC_STATUS,
    _dispose_apply,
    _int,
    _line_gids_store_from_payload,
    _lines_from_payload,
    _order_id,
    _pending_match,
    _quantities_adopt,
    _refresh_enqueue,
    _request_from_payload,
    _return_id,
    _status_apply,
    _status_set,
    _update_apply,
    return_refresh,
    return_webhook_apply,
)
