"""What the shopper's status page says about a return: one reading of Shopify's status, the
app's sync state and the timestamps webhooks set, as a headline, a message and a progress line.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.utils.translation import gettext_lazy as _

from returns.models import Resolution, ReturnRequest
from returns.portal import DECLINE_REASON_LABELS


@dataclass
class StatusStep:
    label: Any
    state: str  # "done", "current" or "upcoming"


@dataclass
class StatusView:
    key: str
    headline: Any
    message: Any
    is_problem: bool
    steps: list[StatusStep]
    instructions: str = ""
    has_label: bool = False
    decline_reason: Any = ""
    decline_note: str = ""
    sync_error: str = ""


def _settled_label(resolution: str) -> Any:
    if resolution == Resolution.EXCHANGE:
        return _("Exchanged")
    if resolution == Resolution.STORE_CREDIT:
        return _("Store credit issued")
    if resolution == Resolution.MIXED:
        # Items refunded, credited or exchanged, each as the shopper chose.
        return _("Settled")
    return _("Refunded")


def _steps(rr: ReturnRequest, position: int) -> list[StatusStep]:
    line = [_("Submitted"), _("Approved"), _("Received"), _settled_label(rr.resolution)]
    if rr.is_returnless:
        # Nothing comes back: no "Received" step.
        line = [line[0], line[1], line[3]]
        position = min(position, len(line) - 1)
    return [
        StatusStep(
            label=label,
            state="done" if i < position else "current" if i == position else "upcoming",
        )
        for i, label in enumerate(line)
    ]


_LAST_STEP = 3


def return_status_view(rr: ReturnRequest) -> StatusView:
    """One reading of the request for the shopper: Shopify's status, our sync state and the
    timestamps the webhooks set, as a headline, a message and a progress line."""
    return _problem_view(rr) or _progress_view(rr)


def _problem_view(rr: ReturnRequest) -> StatusView | None:
    """Failed to reach the store, declined or canceled: no progress line, the reason."""
    if rr.sync_state == ReturnRequest.SyncState.FAILED:
        return StatusView(
            key="failed",
            headline=_("We couldn't send your return to the store"),
            message=_(
                "The store didn't accept this request. Nothing was charged or refunded. "
                "You can start a new return or contact the store."
            ),
            is_problem=True,
            steps=[],
            sync_error=rr.sync_error,
        )
    status = rr.status
    if status == ReturnRequest.Status.DECLINED:
        return StatusView(
            key="declined",
            headline=_("Your return was declined"),
            message=_("The store reviewed your request and can't accept it."),
            is_problem=True,
            steps=[],
            decline_reason=DECLINE_REASON_LABELS.get(
                rr.decline_reason, DECLINE_REASON_LABELS["OTHER"]
            ),
            decline_note=rr.decline_note,
        )
    if status == ReturnRequest.Status.CANCELED:
        return StatusView(
            key="canceled",
            headline=_("This return was canceled"),
            message=_("Nothing more will happen with this return."),
            is_problem=True,
            steps=[],
        )
    return None


def _progress_view(rr: ReturnRequest) -> StatusView:
    """Where the return is on its way: submitted, requested, approved, received, settled."""
    status = rr.status
    if status == ReturnRequest.Status.SUBMITTED or rr.sync_state == ReturnRequest.SyncState.PENDING:
        return StatusView(
            key="pending",
            headline=_("Submitted"),
            message=_("We're sending your return to the store. This page updates when it does."),
            is_problem=False,
            steps=_steps(rr, 0),
        )
    if rr.processed_at is not None:
        settled = _settled_label(rr.resolution)
        return StatusView(
            key="closed" if status == ReturnRequest.Status.CLOSED else "settled",
            headline=settled,
            message=_("Your return is complete.")
            if status == ReturnRequest.Status.CLOSED
            else _("The store has settled your return."),
            is_problem=False,
            steps=_steps(rr, _LAST_STEP),
        )
    if status == ReturnRequest.Status.CLOSED:
        return StatusView(
            key="closed",
            headline=_("Closed"),
            message=_("The store has closed this return."),
            is_problem=False,
            steps=_steps(rr, _LAST_STEP),
        )
    if rr.received_at is not None:
        return StatusView(
            key="received",
            headline=_("Received"),
            message=_("The store has received your items and is checking them."),
            is_problem=False,
            steps=_steps(rr, 2),
        )
    if status == ReturnRequest.Status.OPEN and rr.is_returnless:
        return StatusView(
            key="approved",
            headline=_("Approved"),
            message=_("Your return was approved. The store will settle it soon."),
            is_problem=False,
            steps=_steps(rr, 1),
        )
    if status == ReturnRequest.Status.OPEN:
        return StatusView(
            key="approved",
            headline=_("Approved"),
            message=_("Your return was approved. Send the items back as shown below."),
            is_problem=False,
            steps=_steps(rr, 1),
            instructions=rr.approval_instructions,
            has_label=bool(rr.label_file),
        )
    return StatusView(
        key="requested",
        headline=_("Requested"),
        message=_("The store is reviewing your request. We'll email you when it's approved."),
        is_problem=False,
        steps=_steps(rr, 0),
    )
