"""The period the home page counts: a preset or a custom range of days, in the shop's zone."""

from __future__ import annotations

from datetime import date, timedelta

from django import forms

PRESETS = {
    "today": ("Today", 1),
    "7d": ("Last 7 days", 7),
    "30d": ("Last 30 days", 30),
    "90d": ("Last 90 days", 90),
    "365d": ("Last 365 days", 365),
}
DEFAULT_PRESET = "30d"
# Two years of days at most: the rollup holds a row per day, the page stays quick.
MAX_RANGE_DAYS = 731


class PeriodForm(forms.Form):
    period = forms.ChoiceField(
        choices=[*[(k, label) for k, (label, _) in PRESETS.items()], ("custom", "Custom range")],
        required=False,
    )
    start = forms.DateField(required=False, label="From", widget=forms.DateInput({"type": "date"}))
    end = forms.DateField(required=False, label="To", widget=forms.DateInput({"type": "date"}))

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
            raise forms.ValidationError("A custom range needs a start and an end date.")
        if last < first:
            raise forms.ValidationError("The end date comes before the start date.")
        if (last - first).days + 1 > MAX_RANGE_DAYS:
            raise forms.ValidationError(f"Choose at most {MAX_RANGE_DAYS} days.")
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
