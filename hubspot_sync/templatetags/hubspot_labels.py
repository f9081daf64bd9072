"""Template helpers that show property changes with labels (see hubspot_sync.labels)."""

from __future__ import annotations

from typing import Any, cast

from django import template
from django.template.context import Context

from hubspot_sync.labels import LabelledChange, PropertyLabels, labels_for, without_bidi_overrides
from hubspot_sync.models import Change, ChangeKind

register = template.Library()


def change_lines(change: Change, labels: PropertyLabels, *, pipeline_id: str = "") -> list[LabelledChange]:
    """The properties a change sets, labelled; links and unlinks set none."""
    if change.kind in (ChangeKind.ASSOCIATE, ChangeKind.DISSOCIATE):
        return []
    return labels.changes(change.base or {}, change.new or {}, pipeline_id=pipeline_id)


def _cache(context: Context) -> dict[str, PropertyLabels]:
    found: Any = context.render_context.get("hubspot_labels")
    if found is None:
        found = context.render_context["hubspot_labels"] = {}
    return cast(dict[str, PropertyLabels], found)


@register.simple_tag(takes_context=True)
def labelled_changes(context: Context, change: Change, pipeline_id: str = "") -> list[LabelledChange]:
    """``{% labelled_changes change as lines %}``: definitions are read once per render, not per change."""
    return change_lines(change, labels_for(_cache(context), change.object_type), pipeline_id=pipeline_id)


@register.simple_tag(takes_context=True)
def property_label(context: Context, object_type: str, name: str) -> str:
    return labels_for(_cache(context), object_type).label(name)


@register.filter
def plain(value: Any) -> str:
    """Text from HubSpot, shown in the order it is stored (see hubspot_sync.labels.without_bidi_overrides);
    autoescaped like any other value."""
    return without_bidi_overrides("" if value is None else str(value))


@register.simple_tag(takes_context=True)
def property_value(context: Context, object_type: str, name: str, value: Any) -> str:
    """A value as people read it (an option's label, a stage's name, a formatted date)."""
    return labels_for(_cache(context), object_type).value(name, value)
