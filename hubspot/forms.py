"""Input validation for the hubspot app's pages."""

from __future__ import annotations

from django import forms

from hubspot.models import Change


class OutboxActionForm(forms.Form):
    """Bulk Retry or Discard of changes picked on the Sync page's outbox."""

    action = forms.ChoiceField(choices=[("retry", "Retry"), ("discard", "Discard")])
    change = forms.ModelMultipleChoiceField(
        queryset=Change.objects.unsettled(), error_messages={"required": "Pick at least one change."}
    )
