"""The recovery dashboard (/carts/recovery/, its CSV) and the privacy page (/carts/privacy/)."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.cache import patch_cache_control
from django.views.decorators.http import require_GET, require_http_methods

from carts import dashboard, privacy, queries
from carts.dashboard import MAX_DAYS, Period
from config.permissions import PIPELINE_ADMIN, SUPPORT, group_required, in_group


class DashboardForm(forms.Form):
    """The dashboard's range and store, from the URL; no range means the last 30 days."""

    start = forms.DateField(required=False, label="From")
    end = forms.DateField(required=False, label="To")
    store = forms.CharField(max_length=255, required=False, strip=False)

    def clean_store(self) -> str:
        value: str = self.cleaned_data.get("store") or ""
        if any(ord(c) < 32 for c in value):
            raise ValidationError("Control characters are not allowed.")
        return value

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.errors:
            return data
        default = dashboard.default_period()
        start: date = data.get("start") or (
            data["end"] - timedelta(days=dashboard.DEFAULT_DAYS - 1) if data.get("end") else default.start
        )
        end: date = data.get("end") or (
            min(start + timedelta(days=dashboard.DEFAULT_DAYS - 1), default.end)
            if data.get("start")
            else default.end
        )
        if not (
            date(2000, 1, 1) <= start <= date(2100, 12, 31) and date(2000, 1, 1) <= end <= date(2100, 12, 31)
        ):
            raise ValidationError("Choose dates between 2000 and 2100.")
        if start > end:
            raise ValidationError("“To” must not be before “From”.")
        if (end - start).days + 1 > MAX_DAYS:
            raise ValidationError(f"Choose a range of at most {MAX_DAYS} days.")
        data["period"] = Period(start, end, data.get("store") or "")
        return data


def _may_see_dashboard(request: HttpRequest) -> None:
    if not (in_group(request.user, SUPPORT) or in_group(request.user, PIPELINE_ADMIN)):
        raise PermissionDenied("This page is for the “Support” and “Pipeline admin” groups.")


def _period(request: HttpRequest) -> tuple[DashboardForm, Period | None]:
    query = {k: request.GET[k] for k in ("start", "end", "store") if k in request.GET}
    form = DashboardForm(query)
    if not form.is_valid():
        return form, None
    period: Period = form.cleaned_data["period"]
    return form, period


def _stores() -> list[str]:
    return queries.filter_choices()["stores"]  # the carts list's: read on an index


@require_GET
def recovery_dashboard(request: HttpRequest) -> HttpResponse:
    """Sent, delivered, clicked, recovered and recovered revenue, by day, step and template."""
    _may_see_dashboard(request)
    form, period = _period(request)
    board = dashboard.build(period) if period is not None else None
    context = {
        "form": form,
        "board": board,
        "chart": dashboard.chart(board) if board is not None else None,
        "period": period,
        "stores": _stores(),
        "max_days": MAX_DAYS,
        "time_zone": timezone.get_current_timezone_name(),
        # The figures open the carts list, which is Support's.
        "links": in_group(request.user, SUPPORT),
    }
    status = 200 if period is not None else 400
    return render(request, "carts/recovery.html", context, status=status)


@require_GET
def recovery_export(request: HttpRequest) -> HttpResponse:
    """The dashboard's figures as CSV (never cached: they are the shop's revenue)."""
    _may_see_dashboard(request)
    form, period = _period(request)
    if period is None:
        errors = "; ".join(str(e) for field in form.errors.values() for e in field)
        return HttpResponse(f"Bad range: {errors}", status=400, content_type="text/plain; charset=utf-8")
    text = dashboard.csv_text(dashboard.build(period))
    response = HttpResponse(text, content_type="text/csv; charset=utf-8")
    name = f"recovery-{period.start.isoformat()}-{period.end.isoformat()}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    patch_cache_control(response, no_store=True, private=True)
    return response


# --- privacy ------------------------------------------------------------------------------------------------


class PrivacyForm(forms.Form):
    action = forms.ChoiceField(choices=[("export", "Export"), ("erase", "Erase")])
    email = forms.EmailField(max_length=254)
    confirm = forms.BooleanField(required=False)

    def clean_email(self) -> str:
        return str(self.cleaned_data["email"]).strip().lower()

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("action") == "erase" and not data.get("confirm"):
            self.add_error("confirm", "Tick the box to confirm the erasure: it cannot be undone.")
        return data


@group_required(PIPELINE_ADMIN)
@require_http_methods(["GET", "POST"])
def privacy_request(request: HttpRequest) -> HttpResponse:
    """A contact's privacy request: download their recovery data (JSON), or erase it."""
    form = PrivacyForm(request.POST) if request.method == "POST" else PrivacyForm()
    if request.method == "POST" and form.is_valid():
        email = form.cleaned_data["email"]
        if form.cleaned_data["action"] == "export":
            data = privacy.contact_export(email)
            body = json.dumps(data, cls=DjangoJSONEncoder, indent=2, ensure_ascii=False)
            response = HttpResponse(body, content_type="application/json; charset=utf-8")
            stamp = timezone.now().strftime("%Y%m%d-%H%M")
            response["Content-Disposition"] = f'attachment; filename="recovery-data-{stamp}.json"'
            patch_cache_control(response, no_store=True, private=True)
            return response
        done = privacy.contact_erase(email)
        messages.success(
            request,
            f"Erased: {done['sends']} email{'s' if done['sends'] != 1 else ''} anonymised, "
            f"{done['events']} log line{'s' if done['events'] != 1 else ''} deleted, "
            f"{done['carts']} cart cop{'ies' if done['carts'] != 1 else 'y'} without the address. "
            "The address stays suppressed (as its hash).",
        )
        return redirect("carts:privacy")
    status = 400 if request.method == "POST" else 200
    context = {
        "form": form,
        "retention_days": privacy.retention_days(),
    }
    return render(request, "carts/recovery_privacy.html", context, status=status)
