"""Template filters of the recovery dashboard."""

from __future__ import annotations

from typing import Any

from django import template
from django.utils.safestring import SafeString

from carts.dashboard import Row, chart_bars_html, table_rows_html

register = template.Library()


@register.filter
def link_for(row: Row, outcome: str) -> str:
    """The carts list behind one figure of a dashboard row: ``{{ row|link_for:'clicked' }}``."""
    return row.link(outcome)


@register.filter
def table_rows(rows: list[Row], links: bool = True) -> SafeString:
    return table_rows_html(rows, bool(links))


@register.filter
def chart_bars(drawn: dict[str, Any], links: bool = True) -> SafeString:
    return chart_bars_html(drawn, bool(links))
