"""The admin's home: how the post-purchase experience performed in a period.

    GET /app/                        the report (period presets or a custom range)
    GET /app/insights/<table>.csv    one table of it, every row, as CSV

Figures come from the daily rollup (insights.services, kept by the cron) and two indexed
queries for what needs attention now; nothing here counts the shop's orders one by one.
"""

from __future__ import annotations

import csv

from django.http import Http404, HttpResponse
from django.utils import timezone

from insights import selectors
from insights.charts import bar_chart_svg
from insights.forms import PRESETS, period_from_query
from insights.jobs import insights_rollup_first_defer
from insights.models import ShopDay
from shopapp.auth.selectors import shop_zone
from shopapp.auth.session import session_token_required
from shopapp.embedded.views import embedded_render
from shopapp.http import ShopRequest


def _chart(table: selectors.Table):
    labels = [str(row[0]) for row in table.page_rows]
    if table.series_columns:
        labels = [
            " · ".join(str(c) for c in row[: table.series_columns[0]]) for row in table.page_rows
        ]
        series = [
            (table.columns[i], [row[i] for row in table.page_rows]) for i in table.series_columns
        ]
    elif table.chart_column is not None:
        column = table.chart_column
        series = [(table.columns[column], [row[column] for row in table.page_rows])]
    else:
        return None
    if not labels:
        return None
    return bar_chart_svg(
        key=table.key, title=table.title, labels=labels, series=series, unit=table.chart_unit
    )


@session_token_required
def home(request: ShopRequest) -> HttpResponse:
    shop = request.shop
    today = timezone.localdate(timezone=shop_zone(shop))
    form, first, last = period_from_query(request.GET, today=today)
    report = selectors.insights_period(shop=shop, first=first, last=last)
    for table in report.tables:
        table.chart = _chart(table)
    is_counting = False
    if report.computed_at is None:
        # A shop the rollup has not reached yet (just installed): count its history now, in
        # the background, once.
        is_counting = insights_rollup_first_defer(shop=shop)
    query = request.GET.copy()
    for name in ("page",):
        query.pop(name, None)
    return embedded_render(
        request,
        "insights/home.html",
        {
            "nav": "insights",
            "form": form,
            "presets": PRESETS,
            "report": report,
            "attention": selectors.shipments_needing_attention(shop=shop),
            "is_counting": is_counting or not ShopDay.objects.filter(shop=shop).exists(),
            "period_query": _period_query(form),
        },
    )


def _period_query(form) -> str:
    if not (form.is_bound and form.is_valid()):
        return ""
    data = form.cleaned_data
    if (data.get("period") or "") == "custom":
        return f"period=custom&start={data['first'].isoformat()}&end={data['last'].isoformat()}"
    return f"period={data.get('period')}" if data.get("period") else ""


@session_token_required
def table_csv(request: ShopRequest, key: str) -> HttpResponse:
    shop = request.shop
    today = timezone.localdate(timezone=shop_zone(shop))
    _, first, last = period_from_query(request.GET, today=today)
    report = selectors.insights_period(shop=shop, first=first, last=last)
    table = report.table(key)
    if table is None:
        raise Http404("No such table")
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = (
        f'attachment; filename="{shop.myshopify_domain}-{key}-{first}-{last}.csv"'
    )
    writer = csv.writer(response)
    writer.writerow(table.columns)
    for row in table.rows:
        writer.writerow(["" if value is None else value for value in row])
    return response
