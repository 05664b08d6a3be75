"""An order's timeline in plain words, grouped and filtered, for the support workspace.

    OrderEvent rows (any app) ─▶ timeline_entries ─▶ Entry(sentence, note, category, group)
                                 timeline_groups  ─▶ the order, each parcel, each return

The timeline's ``kind`` is an open, dotted set written by every app (``order.*``,
``shipment.*``, ``notification.*``, ``return.*``, ``problem.*``, ``review.answered``,
``staff.note``); this module
turns the ones it knows into a translatable sentence from the line's ``detail`` and shows any
other by its stored summary, so a kind added tomorrow still reads as something. The platform
imports no feature app: kinds and detail keys are read as the strings the apps write.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from shopapp.models import OrderEvent

# The filters staff can pick, in the order the page shows them.
FILTERS: dict[str, Any] = {
    "messages": gettext_lazy("Messages"),
    "tracking": gettext_lazy("Tracking"),
    "returns": gettext_lazy("Returns"),
    "notes": gettext_lazy("Notes"),
    "problems": gettext_lazy("Problems"),
}


@dataclass(frozen=True)
class Entry:
    event: OrderEvent
    sentence: str
    # A second line: a staff note's text, why a message was skipped, a late update.
    note: str
    # "order", "messages", "tracking", "returns", "notes" or "problems".
    category: str
    # "order", "shipment:<Shopify fulfillment id>" or "return:<local return id>".
    group: str
    # Needs a person: a delay, a failed message, a problem the shopper reported, a refusal.
    is_problem: bool
    tone: str = ""


@dataclass
class Group:
    key: str
    title: str
    entries: list[Entry] = field(default_factory=list)


_STAGE_SENTENCES = {
    "shipped": gettext_lazy("Parcel shipped"),
    "in_transit": gettext_lazy("Parcel on its way"),
    "out_for_delivery": gettext_lazy("Parcel out for delivery"),
    "delivered": gettext_lazy("Parcel delivered"),
    "attempted_delivery": gettext_lazy("The carrier tried to deliver the parcel"),
    "ready_for_pickup": gettext_lazy("Parcel ready for pickup"),
    "problem": gettext_lazy("The carrier reported a problem with the parcel"),
    "ordered": gettext_lazy("Parcel registered"),
}
_DELAY_SENTENCES = {
    "unfulfilled": gettext_lazy("Not shipped in time"),
    "no_movement": gettext_lazy("The parcel has not moved for days"),
    "past_estimate": gettext_lazy("The parcel is past its estimated delivery date"),
    "never_scanned": gettext_lazy("A label was made but the carrier never scanned the parcel"),
    "carrier_delayed": gettext_lazy("The carrier reported a delay"),
}
_ORDER_SENTENCES = {
    "order.created": gettext_lazy("Order placed"),
    "order.paid": gettext_lazy("Payment received"),
    "order.refunded": gettext_lazy("Order refunded"),
    "order.partially_refunded": gettext_lazy("Part of the order refunded"),
    "order.voided": gettext_lazy("Payment voided"),
    "order.fulfilled": gettext_lazy("Every item handed to a carrier"),
    "order.partially_fulfilled": gettext_lazy("Some items handed to a carrier"),
    "order.restocked": gettext_lazy("Items restocked"),
    "order.updated": gettext_lazy("Order details changed in Shopify"),
    "order.edited": gettext_lazy("Order edited in Shopify"),
    "order.deleted": gettext_lazy("Order deleted in Shopify"),
    "order.all_delivered": gettext_lazy("Every parcel delivered"),
}
_RETURN_SENTENCES = {
    "submitted": gettext_lazy("The customer asked to return items"),
    "requested": gettext_lazy("Return request sent to Shopify"),
    "approved": gettext_lazy("Return approved"),
    "declined": gettext_lazy("Return declined"),
    "received": gettext_lazy("Returned items received"),
    "processed": gettext_lazy("Return settled with the customer"),
    "closed": gettext_lazy("Return closed"),
    "canceled": gettext_lazy("Return canceled"),
    "reopened": gettext_lazy("Return reopened"),
    "sync_failed": gettext_lazy("Shopify refused the return request"),
    "updated": gettext_lazy("Return changed in Shopify"),
    "label_attached": gettext_lazy("Return label or tracking attached"),
    "label_failed": gettext_lazy("The return label could not be attached in Shopify"),
}
_RETURN_PROBLEMS = {"sync_failed", "label_failed", "declined"}
_TEMPLATE_NAMES = {
    "order_confirmed": gettext_lazy("order confirmation"),
    "shipped": gettext_lazy("shipped"),
    "in_transit": gettext_lazy("on its way"),
    "out_for_delivery": gettext_lazy("out for delivery"),
    "delivered": gettext_lazy("delivered"),
    "attempted_delivery": gettext_lazy("delivery attempted"),
    "ready_for_pickup": gettext_lazy("ready for pickup"),
    "delayed": gettext_lazy("delay"),
    "problem": gettext_lazy("delivery problem"),
    "review_request": gettext_lazy("review request"),
    "order_cancelled": gettext_lazy("order cancelled"),
    "return_requested": gettext_lazy("return requested"),
    "return_approved": gettext_lazy("return approved"),
    "return_declined": gettext_lazy("return declined"),
    "return_processed": gettext_lazy("return settled"),
    "return_closed": gettext_lazy("return closed"),
}
# notifications.recipients.SkipReason and the engine's cancel reasons, as they are stored.
_REASONS = {
    "no email address on the order": gettext_lazy("the order has no email address"),
    "no phone number on the order": gettext_lazy("the order has no phone number"),
    "phone number is not valid": gettext_lazy("the phone number is not valid"),
    "recipient suppressed": gettext_lazy("the shopper unsubscribed or the address bounced"),
    "SMS is not enabled for this shop": gettext_lazy("SMS is not set up for the store"),
    "order cancelled": gettext_lazy("the order was cancelled"),
    "a return was started": gettext_lazy("a return was started"),
    "shipment already delivered": gettext_lazy("the parcel was already delivered"),
    "shipment already out for delivery": gettext_lazy("the parcel was already out for delivery"),
    "customer does not accept marketing": gettext_lazy("the shopper declined marketing"),
    "sequence or step disabled": gettext_lazy("this message is turned off"),
    "shop uninstalled the app": gettext_lazy("the app was uninstalled"),
    "customer data redacted": gettext_lazy("the shopper's data was erased"),
}
_SUMMARY_LABEL = re.compile(r"\(([^()]+)\)\s*$")


def _channel(detail: dict) -> str:
    return _("SMS") if detail.get("channel") == "sms" else _("Email")


def _template(detail: dict) -> str:
    key = str(detail.get("template_key") or detail.get("trigger") or "")
    return str(_TEMPLATE_NAMES.get(key, key.replace("_", " ")))


def _reason(value: Any) -> str:
    text = str(value or "").strip()
    return str(_REASONS.get(text, text))


def _group_of(event: OrderEvent) -> str:
    detail = event.detail or {}
    subject = str(detail.get("subject") or "")
    if subject.startswith(("shipment:", "return:")):
        return subject
    if detail.get("return_id") is not None and event.kind.startswith("return."):
        return f"return:{detail['return_id']}"
    if detail.get("fulfillment_id") is not None:
        return f"shipment:{detail['fulfillment_id']}"
    return "order"


def _message_entry(event: OrderEvent, verb: str, detail: dict) -> tuple[str, str, bool]:
    what = {"channel": _channel(detail), "template": _template(detail)}
    reason = _reason(detail.get("reason"))
    if verb == "scheduled":
        return _("%(channel)s “%(template)s” scheduled") % what, "", False
    if verb == "sent":
        recipient = str(detail.get("recipient") or "")
        if recipient:
            return (
                _("%(channel)s “%(template)s” sent to %(to)s") % {**what, "to": recipient},
                "",
                False,
            )
        return _("%(channel)s “%(template)s” sent") % what, "", False
    if verb == "skipped":
        return _("%(channel)s “%(template)s” not sent") % what, reason, False
    if verb == "cancelled":
        return _("%(channel)s “%(template)s” no longer needed") % what, reason, False
    if verb == "failed":
        return _("%(channel)s “%(template)s” could not be sent") % what, reason, True
    if verb == "resending":
        return _("%(channel)s “%(template)s” being sent again") % what, "", False
    if verb == "resend_requested":
        return _("Staff asked to send %(channel)s “%(template)s” again") % what, "", False
    return str(event.summary), "", False


def entry_for(event: OrderEvent) -> Entry:
    """One timeline line in plain words (any kind: unknown ones keep their stored summary)."""
    kind, detail = event.kind, event.detail or {}
    head, _dot, tail = kind.partition(".")
    note, is_problem, tone = "", False, ""
    group = _group_of(event)
    stale = (
        _("The update reached the app late, so the shopper was not messaged.")
        if detail.get("stale")
        else ""
    )
    if head == "notification":
        category = "messages"
        sentence, note, is_problem = _message_entry(event, tail, detail)
    elif head == "shipment" or kind in ("order.delayed", "order.all_delivered"):
        category = "tracking"
        if tail == "delayed":
            sentence = str(_DELAY_SENTENCES.get(str(detail.get("kind")), _("Delayed")))
            is_problem, tone = True, "warning"
        elif tail == "estimate_changed":
            estimate = str(detail.get("estimated_delivery_at") or "")[:10]
            sentence = (
                _("New delivery estimate: %(date)s") % {"date": estimate}
                if estimate
                else _("Delivery estimate removed")
            )
        elif tail == "event_deleted":
            sentence = _("The carrier withdrew a tracking update")
        elif kind == "order.all_delivered":
            sentence = str(_ORDER_SENTENCES[kind])
            tone = "success"
        else:
            sentence = str(_STAGE_SENTENCES.get(tail, event.summary))
            if tail == "problem":
                is_problem, tone = True, "critical"
            elif tail == "delivered":
                tone = "success"
        carrier = str(detail.get("tracking_company") or "")
        if tail == "shipped" and carrier:
            sentence = _("Parcel shipped with %(carrier)s") % {"carrier": carrier}
        note = stale
    elif head == "return":
        category = "returns"
        sentence = str(_RETURN_SENTENCES.get(tail, event.summary))
        is_problem = tail in _RETURN_PROBLEMS
        reason = detail.get("reason") or detail.get("error") or ""
        note = str(reason) if is_problem and reason else ""
    elif head == "problem":
        category = "problems"
        labels = {
            "not_received": _("not received"),
            "damaged": _("arrived damaged"),
            "wrong_item": _("wrong item"),
        }
        what = labels.get(str(detail.get("problem_kind")), str(detail.get("problem_kind", "")))
        if tail == "resolved":
            sentence = _("Problem resolved: %(what)s") % {"what": what}
            note, tone = str(detail.get("note") or ""), "success"
        else:
            by_shopper = detail.get("reported_by") == "shopper"
            sentence = (
                _("The shopper reported a problem: %(what)s")
                if by_shopper
                else _("Problem recorded for the shopper: %(what)s")
            ) % {"what": what}
            note, is_problem, tone = str(detail.get("description") or ""), True, "critical"
    elif kind == "review.answered":
        # The shopper's answer to a review request (notifications.reviews): the stars in the
        # sentence, their own words as the note.
        category = "messages"
        sentence = _("Rated %(rating)s of 5") % {"rating": detail.get("rating", "?")}
        note = str(detail.get("comment") or "")
    elif kind == "staff.note":
        category = "notes"
        author = str(detail.get("user_id") or "")
        sentence = (
            _("Note by staff member %(user)s") % {"user": author} if author else _("Staff note")
        )
        note = str(detail.get("text") or "")
    elif kind == "order.cancelled":
        category = "order"
        sentence, note, tone = _("Order cancelled"), str(detail.get("reason") or ""), "critical"
    elif kind in _ORDER_SENTENCES:
        category = "order"
        sentence = str(_ORDER_SENTENCES[kind])
    elif kind in ("order.financial_status", "order.fulfillment_status"):
        category = "order"
        label = _("Payment status") if kind == "order.financial_status" else _("Shipping status")
        sentence = _("%(label)s changed to “%(to)s”") % {
            "label": label,
            "to": str(detail.get("to", "")).replace("_", " "),
        }
    else:
        category, sentence = "order", str(event.summary or kind)
    if is_problem and not tone:
        tone = "critical"
    return Entry(
        event=event,
        sentence=sentence,
        note=note,
        category=category,
        group=group,
        is_problem=is_problem,
        tone=tone,
    )


def timeline_entries(events: Iterable[OrderEvent], *, show: str = "") -> list[Entry]:
    """The lines in plain words, kept to one filter (a FILTERS key; anything else: all)."""
    return entries_shown([entry_for(event) for event in events], show=show)


def entries_shown(entries: list[Entry], *, show: str) -> list[Entry]:
    if show == "problems":
        return [e for e in entries if e.is_problem or e.category == "problems"]
    if show in FILTERS:
        return [e for e in entries if e.category == show]
    return entries


def timeline_groups(
    entries: Iterable[Entry], *, parcel_titles: dict[str, str] | None = None
) -> list[Group]:
    """The lines grouped: the order's own first, then each parcel, then each return, each
    group keeping the entries' order (newest first). ``parcel_titles`` names the parcels
    ("shipment:<fulfillment id>" → "#1001-F1 · UPS 1Z…"); returns are named from their lines.
    """
    parcel_titles = parcel_titles or {}
    groups: dict[str, Group] = {"order": Group(key="order", title=_("Order"))}
    for entry in entries:
        group = groups.get(entry.group)
        if group is None:
            kind, _sep, ident = entry.group.partition(":")
            if kind == "shipment":
                title = parcel_titles.get(entry.group) or _("Parcel %(id)s") % {"id": ident}
            else:
                title = _("Return %(id)s") % {"id": ident}
            group = groups[entry.group] = Group(key=entry.group, title=title)
        if entry.group.startswith("return:") and entry.event.kind.startswith("return."):
            found = _SUMMARY_LABEL.search(entry.event.summary or "")
            if found and group.title.endswith(entry.group.partition(":")[2]):
                group.title = _("Return %(id)s") % {"id": found.group(1)}
        group.entries.append(entry)

    def rank(group: Group) -> int:
        # sorted() is stable: parcels and returns keep the order their newest line gave them.
        return {"order": 0, "shipment": 1, "return": 2}.get(group.key.partition(":")[0], 3)

    return [g for g in sorted(groups.values(), key=rank) if g.entries]
