"""Input validation for the board: filters from the query string, moves, saved views."""

from __future__ import annotations

from typing import Any

from django import forms

from pipelines.models import Pipeline, Stage

SYNC_STATES = [
    ("", "Any sync state"),
    ("unsettled", "Not yet in HubSpot"),
    ("failed", "Failed"),
    ("conflict", "In conflict"),
]


class BoardFilterForm(forms.Form):
    """The board's filters, all in the URL so a view is shareable and the back button works."""

    q = forms.CharField(
        required=False,
        max_length=200,
        label="Search",
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "Order, customer, email, tracking…"}),
    )
    store = forms.CharField(required=False, max_length=255)
    status = forms.CharField(required=False, max_length=100, label="Fulfillment")
    currency = forms.CharField(required=False, max_length=8)
    created_from = forms.DateField(
        required=False, widget=forms.DateInput(attrs={"type": "date"}), label="Created from"
    )
    created_to = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}), label="to")
    sync = forms.ChoiceField(required=False, choices=SYNC_STATES, label="Sync state")
    stale = forms.BooleanField(required=False, label="Stale only")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("created_from"), data.get("created_to")
        if start and end and start > end:
            raise forms.ValidationError("“Created from” is after “to”.")
        return data

    def active(self) -> dict[str, Any]:
        """The filters that are set (an empty or invalid form filters nothing)."""
        if not self.is_valid():
            return {}
        return {k: v for k, v in self.cleaned_data.items() if v not in (None, "", False)}


class MoveForm(forms.Form):
    """A move from a card (drag, "Move to…", or the required-values prompt)."""

    stage = forms.IntegerField()
    # The stage the person saw the card in: if someone else moved it meanwhile, the move is refused.
    from_stage = forms.IntegerField(required=False)

    def __init__(self, *args: Any, pipeline: Pipeline, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pipeline = pipeline

    def clean_stage(self) -> Stage:
        stage = (
            Stage.objects.filter(pk=self.cleaned_data["stage"], archived=False)
            .select_related("pipeline")
            .first()
        )
        if stage is None:
            raise forms.ValidationError("That stage doesn't exist (any more). Refresh the board.")
        if stage.pipeline_id != self.pipeline.pk:
            raise forms.ValidationError("That stage belongs to another pipeline.")
        return stage


class SavedViewForm(forms.Form):
    name = forms.CharField(max_length=80)
    query = forms.CharField(max_length=2000, required=False)
