"""The period the home page counts: a preset or a custom range of days, in the shop's zone."""

from __future__ import annotations

from datetime import date, timedelta

from django import forms
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

PRESETS = {
    "today": (_("Today"), 1),
    "7d": (_("Last 7 days"), 7),
    "30d": (_("Last 30 days"), 30),
    "90d": (_("Last 90 days"), 90),
    "365d": (_("Last 365 days"), 365),
}
DEFAULT_PRESET = "30d"
# Two years of days at most: the rollup holds a row per day, the page stays quick.
MAX_RANGE_DAYS = 731


class PeriodForm(forms.Form):
    period = forms.ChoiceField(
        choices=[
            *[(k, label) for k, (label, _days) in PRESETS.items()],
            ("custom", _("Custom range")),
        ],
        required=False,
    )
    start = forms.DateField(
        required=False, label=_("From"), widget=forms.DateInput({"type": "date"})
    )
    end = forms.DateField(required=False, label=_("To"), widget=forms.DateInput({"type": "date"}))

    def __init__(self, *args, today: date, **kwargs):
        super().__init__(*args, **kwargs)
        self.today = today

    def clean(self):
        data = super().clean() or {}
        period = data.get("period") or DEFAULT_PRESET
        if period != "custom":
            days = PRESETS[period][1]
            data["first"], data["last"] = self.today - timedelta(days=days - 1), self.today
            return data
        first, last = data.get("start"), data.get("end")
        if first is None or last is None:
            raise forms.ValidationError(gettext("A custom range needs a start and an end date."))
        if last < first:
            raise forms.ValidationError(gettext("The end date comes before the start date."))
        if (last - first).days + 1 > MAX_RANGE_DAYS:
            raise forms.ValidationError(
                gettext("Choose at most %(days)s days.") % {"days": MAX_RANGE_DAYS}
            )
        data["first"], data["last"] = first, last
        return data


def period_from_query(query, *, today: date) -> tuple[PeriodForm, date, date]:
    """The form bound to the query, and the days it names (the default on bad input)."""
    bound = "period" in query or "start" in query
    form = PeriodForm(query if bound else None, today=today, initial={"period": DEFAULT_PRESET})
    if form.is_bound and form.is_valid():
        return form, form.cleaned_data["first"], form.cleaned_data["last"]
    days = PRESETS[DEFAULT_PRESET][1]
    return form, today - timedelta(days=days - 1), today
