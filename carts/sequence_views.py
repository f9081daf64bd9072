"""The recovery sequence's settings page (/carts/sequence/): on or off, and each step's delay, switch and
template. Pipeline admins change it; Support may read it."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

from django import forms
from django.conf import settings as django_settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from carts.models import RecoveryTemplate, SequenceSettings, SequenceStep
from carts.sequences import sequence_settings, sequence_steps, step_template
from config.htmx import HtmxHttpRequest
from config.permissions import PIPELINE_ADMIN, SUPPORT, in_group

MAX_DELAY_HOURS = 24 * 60  # sixty days


class SequenceForm(forms.Form):
    """The switch, then for each existing step: delay (hours), on/off, template (blank: the step's own)."""

    enabled = forms.BooleanField(required=False, label="Send the sequence")

    def __init__(self, *args: Any, steps: list[SequenceStep], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.steps = steps
        templates = RecoveryTemplate.objects.filter(active=True).order_by("step", "name")
        for step in steps:
            self.fields[f"delay_{step.step}"] = forms.IntegerField(
                min_value=0, max_value=MAX_DELAY_HOURS, label=f"Step {step.step}: hours after abandonment"
            )
            self.fields[f"on_{step.step}"] = forms.BooleanField(required=False, label=f"Step {step.step} on")
            self.fields[f"template_{step.step}"] = forms.ModelChoiceField(
                queryset=templates, required=False, empty_label="The step's own template (or the default)"
            )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        delays = [data.get(f"delay_{step.step}") for step in self.steps]
        known = [d for d in delays if d is not None]
        if len(known) == len(delays) and any(b <= a for a, b in pairwise(known)):
            raise forms.ValidationError("Each step must come later than the one before it.")
        return data

    def rows(self) -> list[dict[str, Any]]:
        return [
            {
                "step": step,
                "delay": self[f"delay_{step.step}"],
                "on": self[f"on_{step.step}"],
                "template": self[f"template_{step.step}"],
                "sends": step_template(step),
            }
            for step in self.steps
        ]


def _initial(settings_row: SequenceSettings, steps: list[SequenceStep]) -> dict[str, Any]:
    initial: dict[str, Any] = {"enabled": settings_row.enabled}
    for step in steps:
        initial[f"delay_{step.step}"] = step.delay_minutes // 60
        initial[f"on_{step.step}"] = step.enabled
        initial[f"template_{step.step}"] = step.template_id
    return initial


@require_http_methods(["GET", "POST"])
def sequence_settings_page(request: HtmxHttpRequest) -> HttpResponse:
    may_edit = in_group(request.user, PIPELINE_ADMIN)
    if not may_edit and not in_group(request.user, SUPPORT):
        raise PermissionDenied("This page is for the carts console's staff.")
    settings_row = sequence_settings()
    steps = sequence_steps()
    if request.method == "POST":
        if not may_edit:
            raise PermissionDenied(f"Only the “{PIPELINE_ADMIN}” group changes the sequence.")
        form = SequenceForm(request.POST, steps=steps)
        if form.is_valid():
            with transaction.atomic():
                for step in steps:
                    step.delay_minutes = int(form.cleaned_data[f"delay_{step.step}"]) * 60
                    step.enabled = bool(form.cleaned_data[f"on_{step.step}"])
                    step.template = form.cleaned_data[f"template_{step.step}"]
                    step.save(update_fields=["delay_minutes", "enabled", "template"])
                settings_row.enabled = bool(form.cleaned_data["enabled"])
                settings_row.updated_by = request.user  # type: ignore[assignment]
                settings_row.save(update_fields=["enabled", "updated_by", "updated_at"])
            messages.success(request, "The recovery sequence was saved.")
            return redirect("carts:sequence")
    else:
        form = SequenceForm(initial=_initial(settings_row, steps), steps=steps)
    context = {
        "form": form,
        "may_edit": may_edit,
        "settings_row": settings_row,
        "window": django_settings.CARTS_SEND_WINDOW,
    }
    return render(request, "carts/sequence.html", context)
