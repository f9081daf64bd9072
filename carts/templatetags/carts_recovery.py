"""Template filters of the recovery dashboard."""

from __future__ import annotations

from django import template

from carts.dashboard import Row

register = template.Library()


@register.filter
def link_for(row: Row, outcome: str) -> str:
    """The carts list behind one figure of a dashboard row: ``{{ row|link_for:'clicked' }}``."""
    return row.link(outcome)
