"""Input of the carts console: each form names the fields it accepts, typed and bounded."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

# The recovery states of the list's tabs, in the order staff work them.
STATES: list[tuple[str, str]] = [
    ("new", "New"),
    ("emailed", "Emailed"),
    ("clicked", "Clicked"),
    ("recovered", "Recovered"),
    ("unsubscribed", "Unsubscribed"),
    ("not_emailable", "Not emailable"),
]
STATE_LABELS = dict(STATES)

# How long since the cart last changed (HubSpot's last-modified date).
AGES: list[tuple[str, str]] = [
    ("", "Any age"),
    ("day", "Under a day"),
    ("week", "1 to 7 days"),
    ("month", "7 to 30 days"),
    ("older", "Over 30 days"),
]
SORTS: list[tuple[str, str]] = [
    ("newest", "Newest change first"),
    ("oldest", "Oldest change first"),
    ("value_high", "Highest value first"),
    ("value_low", "Lowest value first"),
    ("last_email", "Most recently emailed first"),
]
MAX_AMOUNT = Decimal("999999999999")
MAX_IDS = 500
HUBSPOT_ID = re.compile(r"^[0-9]{1,18}$")


def _no_control(value: str) -> str:
    if any(ord(c) < 32 and c not in "\t\r\n" for c in value):
        raise ValidationError("Control characters are not allowed.")
    return value


class CartFilterForm(forms.Form):
    """The list's filters, all from the URL; an unknown parameter is ignored, a bad value is an error."""

    state = forms.ChoiceField(choices=[("", "All states"), *STATES], required=False)
    age = forms.ChoiceField(choices=AGES, required=False)
    min_total = forms.DecimalField(
        min_value=0, max_value=MAX_AMOUNT, max_digits=16, decimal_places=2, required=False, label="Value from"
    )
    max_total = forms.DecimalField(
        min_value=0, max_value=MAX_AMOUNT, max_digits=16, decimal_places=2, required=False, label="Value to"
    )
    store = forms.CharField(max_length=255, required=False, strip=False)
    currency = forms.CharField(max_length=8, required=False)
    q = forms.CharField(max_length=200, required=False, label="Search")
    sort = forms.ChoiceField(choices=SORTS, required=False)
    # The recovery dashboard's figures link here: carts with a send in the date range, of the step or
    # template, with the outcome (carts.dashboard.carts_behind).
    sent_from = forms.DateField(required=False, label="Emailed from")
    sent_to = forms.DateField(required=False, label="Emailed to")
    step = forms.IntegerField(min_value=1, max_value=99, required=False, label="Step")
    template = forms.IntegerField(min_value=1, max_value=2**63 - 1, required=False, label="Template")
    outcome = forms.ChoiceField(
        choices=[
            ("", "Any"),
            ("sent", "Sent"),
            ("delivered", "Delivered"),
            ("clicked", "Clicked"),
            ("recovered", "Recovered"),
        ],
        required=False,
        label="Email outcome",
    )

    # The names the list's URL may carry besides these (paging).
    EXTRA = ("page",)

    def clean_store(self) -> str:
        return _no_control(self.cleaned_data.get("store") or "")

    def clean_currency(self) -> str:
        value = (self.cleaned_data.get("currency") or "").strip().upper()
        if value and not re.fullmatch(r"[A-Z0-9]{1,8}", value):
            raise ValidationError("Choose a currency from the list.")
        return value

    def clean_q(self) -> str:
        return _no_control((self.cleaned_data.get("q") or "").strip())

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        low, high = data.get("min_total"), data.get("max_total")
        if low is not None and high is not None and low > high:
            self.add_error("max_total", "“Value to” must not be below “Value from”.")
        first, last = data.get("sent_from"), data.get("sent_to")
        for name in ("sent_from", "sent_to"):
            day = data.get(name)
            if day is not None and not 2000 <= day.year <= 2100:
                self.add_error(name, "Choose a date between 2000 and 2100.")
        if first is not None and last is not None and first > last:
            self.add_error("sent_to", "“Emailed to” must not be before “Emailed from”.")
        return data

    def active(self) -> dict[str, Any]:
        """The filters that apply (an invalid form applies nothing and shows its errors over no carts)."""
        if not self.is_bound:
            return {}
        if not self.is_valid():
            return {"invalid": True}
        return {k: v for k, v in self.cleaned_data.items() if v not in (None, "")}


class HubSpotIdsField(forms.Field):
    """Ticked carts: HubSpot ids (digits), at most MAX_IDS, from repeated fields."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value: Any) -> list[str]:
        if not value:
            return []
        values = value if isinstance(value, list | tuple) else [value]
        if len(values) > MAX_IDS:
            raise ValidationError(f"Tick at most {MAX_IDS} carts, or choose “all matching”.")
        ids: list[str] = []
        for raw in values:
            text = str(raw).strip()
            if not HUBSPOT_ID.match(text):
                raise ValidationError("A ticked cart could not be read; reload the list and tick it again.")
            if text not in ids:
                ids.append(text)
        return ids


class BulkSendForm(forms.Form):
    """A bulk send: the ticked carts or all carts matching the list's filters (carried as its query string).
    Without ``confirm`` it asks for the preview of the scope; with it, it sends."""

    scope = forms.ChoiceField(choices=[("selected", "Ticked carts"), ("all", "All matching the filters")])
    selected = HubSpotIdsField(required=False)
    filters = forms.CharField(max_length=2000, required=False, strip=False)
    confirm = forms.BooleanField(required=False)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("scope") == "selected" and not data.get("selected"):
            raise ValidationError("Tick the carts to email, or choose all carts matching the filters.")
        return data

    def clean_filters(self) -> str:
        return _no_control(self.cleaned_data.get("filters") or "")


class TemplateForm(forms.Form):
    """A recovery email template's content (the name, subject and both bodies), checked by rendering it."""

    name = forms.CharField(max_length=120)
    subject = forms.CharField(max_length=300)
    html_body = forms.CharField(max_length=100_000, widget=forms.Textarea(attrs={"rows": 16}), strip=False)
    text_body = forms.CharField(max_length=50_000, widget=forms.Textarea(attrs={"rows": 10}), strip=False)
    preview_cart = forms.CharField(max_length=18, required=False)

    def clean_name(self) -> str:
        return _no_control(self.cleaned_data["name"].strip())

    def clean_subject(self) -> str:
        value = self.cleaned_data["subject"]
        if "\n" in value or "\r" in value:
            raise ValidationError("The subject must be one line.")
        return _no_control(value)

    def clean_html_body(self) -> str:
        return _no_control(self.cleaned_data["html_body"])

    def clean_text_body(self) -> str:
        return _no_control(self.cleaned_data["text_body"])

    def clean_preview_cart(self) -> str:
        value = (self.cleaned_data.get("preview_cart") or "").strip()
        if value and not HUBSPOT_ID.match(value):
            raise ValidationError("Choose a cart from the list.")
        return value


class SuppressionSearchForm(forms.Form):
    q = forms.CharField(max_length=200, required=False, label="Search")

    def clean_q(self) -> str:
        return _no_control((self.cleaned_data.get("q") or "").strip())


class SuppressionAddForm(forms.Form):
    email = forms.EmailField(max_length=254)
    reason = forms.CharField(max_length=500)

    def clean_email(self) -> str:
        return str(self.cleaned_data["email"]).strip().lower()

    def clean_reason(self) -> str:
        return _no_control(self.cleaned_data["reason"].strip())


class SuppressionRemoveForm(forms.Form):
    suppression = forms.IntegerField(min_value=1, max_value=2**63 - 1, widget=forms.HiddenInput)
    reason = forms.CharField(max_length=500, label="Why remove it")

    def clean_reason(self) -> str:
        return _no_control(self.cleaned_data["reason"].strip())


SEND_STEP_MAX = 10


class SendForm(forms.Form):
    """Send one cart's recovery email; the step is the template step to send (1 unless a sequence says)."""

    step = forms.IntegerField(min_value=1, max_value=SEND_STEP_MAX, required=False)
