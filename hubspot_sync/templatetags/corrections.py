"""The inputs a failed change can be corrected with before Retry (typed like inline edits)."""

from __future__ import annotations

from django import template

from hubspot_sync import registry
from hubspot_sync.forms import ChangeCorrectionForm
from hubspot_sync.models import Change

register = template.Library()


@register.simple_tag
def correction_form(change: Change) -> ChangeCorrectionForm:
    """The change's correction form, unbound (its inputs show the values the change sends)."""
    spec = registry.find(change.object_type)
    record = spec.model._default_manager.filter(hubspot_id=change.object_id).first() if spec else None
    return ChangeCorrectionForm(change=change, record=record)
