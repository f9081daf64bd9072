"""Input validation for the board: filters from the query string, moves, saved views."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from typing import TYPE_CHECKING, Any

from django import forms
from django.forms import BoundField
from django.http import QueryDict

from hubspot_sync.forms import OwnedCorrection, PropertyValueField, definitions_for
from hubspot_sync.models import Change
from orders.models import Order
from pipelines.models import Pipeline, Stage
from pipelines.rules import STAGE_PROPERTIES, check_move, check_move_from, move_properties

if TYPE_CHECKING:
    from hubspot_sync.mirror import MirroredObject

# The dates a filter may name: a year past 9999 or before 1 does not exist, and a day past the last date
# does not either (a filter's "to" is read up to the next day).
FILTER_EARLIEST = date(1900, 1, 1)
FILTER_LATEST = date(2199, 12, 31)

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
    # Chosen from the values the pipeline's orders have (``choices``), matched case-insensitively; without
    # a list (a view that shows no form) any text is taken as it is.
    store = forms.CharField(required=False, max_length=255, widget=forms.Select)
    status = forms.CharField(required=False, max_length=100, label="Fulfillment", widget=forms.Select)
    currency = forms.CharField(required=False, max_length=8, widget=forms.Select)
    created_from = forms.DateField(
        required=False, widget=forms.DateInput(attrs={"type": "date"}), label="Created from"
    )
    created_to = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}), label="to")
    sync = forms.ChoiceField(required=False, choices=SYNC_STATES, label="Sync state")
    stale = forms.BooleanField(required=False, label="Stale only")

    CHOICE_FIELDS = {"store": "Any store", "status": "Any fulfillment", "currency": "Any currency"}

    def __init__(self, *args: Any, choices: dict[str, list[str]] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.present = choices or {}
        for name, anything in self.CHOICE_FIELDS.items():
            values = self.present.get(name)
            if values is None:
                self.fields[name].widget = forms.TextInput()
                continue
            options = [("", anything), *((v, v) for v in values)]
            asked = str(self.data.get(name) or "").strip() if self.is_bound else ""
            present = self._present(name, asked) if asked else None
            if asked and present is None:
                options.append((asked, f"{asked} (no orders)"))  # a URL's value stays visible, never lost
            elif present is not None and present != self.data.get(name):
                # The select (and the board's query) show the value as the orders spell it.
                data = self.data.copy() if isinstance(self.data, QueryDict) else dict(self.data)
                data[name] = present
                self.data = data
            self.fields[name].widget = forms.Select(choices=options)

    def _present(self, name: str, value: str) -> str | None:
        folded = value.casefold()
        return next((v for v in self.present.get(name, []) if v.casefold() == folded), None)

    def _choice(self, name: str) -> str:
        value = str(self.cleaned_data.get(name) or "").strip()
        return (self._present(name, value) or value) if value else ""

    def clean_store(self) -> str:
        return self._choice("store")

    def clean_status(self) -> str:
        return self._choice("status")

    def clean_currency(self) -> str:
        return self._choice("currency")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        # The board shows the form's own errors only (not each field's): say which filters were not read.
        if unread := [str(self.fields[name].label or name) for name in self.errors if name in self.fields]:
            raise forms.ValidationError(f"These filters could not be read: {', '.join(unread)}.")
        start, end = data.get("created_from"), data.get("created_to")
        for value in (start, end):
            if value and not FILTER_EARLIEST <= value <= FILTER_LATEST:
                raise forms.ValidationError(
                    f"Dates go from {FILTER_EARLIEST:%Y-%m-%d} to {FILTER_LATEST:%Y-%m-%d}."
                )
        if start and end and start > end:
            raise forms.ValidationError("“Created from” is after “to”: pick a start before the end.")
        return data

    def active(self) -> dict[str, Any]:
        """The filters that are set. An empty form filters nothing; an invalid one matches no order (its
        error shows above an empty board), never every order, so a bulk move can't reach them all."""
        if not self.is_bound:
            return {}
        if not self.is_valid():
            return {"invalid": True}
        return {k: v for k, v in self.cleaned_data.items() if v not in (None, "", False)}


# The largest id a database key holds: bigger numbers are no stage at all (and never reach a query).
MAX_ID = 2**63 - 1
# Cards one bulk move may name (the board selects them by hand; "all matching" is the other scope).
MAX_SELECTED = 5_000
_HUBSPOT_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _id_or_none(raw: Any) -> int | None:
    try:
        value = int(str(raw).strip())
    except (TypeError, ValueError):
        return None
    return value if 1 <= value <= MAX_ID else None


def _move_fields(order_type: str, stage: Stage) -> dict[str, PropertyValueField]:
    """One typed input per property the stage requires (read-only ones can't be given, so none)."""
    names = move_properties(stage)
    definitions = definitions_for(order_type, names)
    fields: dict[str, PropertyValueField] = {}
    for name in names:
        definition = definitions.get(name)
        if definition is not None and not definition.editable:
            continue
        field = PropertyValueField(name=name, definition=definition)
        field.widget.attrs["required"] = True
        fields[f"prop_{name}"] = field
    return fields


class MoveForm(forms.Form):
    """A move from a card (drag, "Move to…", or the required-values prompt): a stage of the order's
    pipeline, the stage the card was seen in, and the target stage's required properties, typed; nothing
    else reaches the move."""

    stage = forms.IntegerField(
        min_value=1,
        max_value=MAX_ID,
        error_messages={
            "required": "Choose a stage to move it to.",
            "invalid": "That stage doesn't exist (any more). Refresh the board.",
            "min_value": "That stage doesn't exist (any more). Refresh the board.",
            "max_value": "That stage doesn't exist (any more). Refresh the board.",
        },
    )
    # The stage the person saw the card in (0: in no stage): if it moved meanwhile, the move is refused.
    from_stage = forms.IntegerField(min_value=0, max_value=MAX_ID)

    def __init__(self, *args: Any, order: Order, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", False)  # a board may show several cards' prompts at once
        super().__init__(*args, **kwargs)
        self.order = order
        self.pipeline = order.pipeline
        self.target = self._target()
        if self.target is not None:
            self.fields.update(_move_fields("orders", self.target))

    def _target(self) -> Stage | None:
        pk = _id_or_none(self.data.get("stage")) if self.is_bound else None
        if pk is None or self.pipeline is None:
            return None
        return (
            Stage.objects.filter(pk=pk, pipeline=self.pipeline, archived=False)
            .select_related("pipeline")
            .first()
        )

    def clean_stage(self) -> Stage:
        if self.pipeline is None:
            raise forms.ValidationError("This order has no pipeline in the cache yet; sync first.")
        if self.target is None:
            if Stage.objects.filter(pk=self.cleaned_data["stage"], archived=False).exists():
                raise forms.ValidationError("That stage belongs to another pipeline.")
            raise forms.ValidationError("That stage doesn't exist (any more). Refresh the board.")
        return self.target

    def values(self) -> dict[str, str]:
        """The required properties given, by name (after is_valid)."""
        return {
            f.property_name: self.cleaned_data[key]
            for key, f in self.fields.items()
            if isinstance(f, PropertyValueField) and self.cleaned_data.get(key)
        }

    def prompt(self, names: list[str]) -> list[BoundField]:
        """The inputs that ask for these properties."""
        return [self[f"prop_{n}"] for n in names if f"prop_{n}" in self.fields]

    def property_errors(self) -> list[str]:
        return [n[len("prop_") :] for n in self.errors if n.startswith("prop_")]

    def prompt_again(self) -> list[BoundField]:
        """After a move whose stage parsed but whose values didn't: the inputs to ask for again, the values
        the stage still needs and those given wrong."""
        if self.target is None:
            return []
        missing = check_move(self.order, self.target).missing
        wrong = self.property_errors()
        return self.prompt([n for n in move_properties(self.target) if n in missing or n in wrong])

    def error_text(self) -> str:
        return " ".join(str(e) for errors in self.errors.values() for e in errors)


class HubSpotIdsField(forms.Field):
    """Record ids from checkboxes or hidden inputs: each a HubSpot id (or a temporary one), a bounded list."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value: Any) -> list[str]:
        if not value:
            return []
        ids = [str(v).strip() for v in (value if isinstance(value, list | tuple) else [value])]
        if len(ids) > MAX_SELECTED:
            raise forms.ValidationError(
                f"Select at most {MAX_SELECTED:,} cards at a time, or use “all matching”."
            )
        if any(not _HUBSPOT_ID.fullmatch(i) for i in ids):
            raise forms.ValidationError("Some selected cards aren't orders of this board; refresh the board.")
        return list(dict.fromkeys(ids))


class SeenStagesField(HubSpotIdsField):
    """The confirmation's promise: each order it described, with the stage it was in ("id:stage")."""

    def to_python(self, value: Any) -> list[str]:  # type: ignore[override]
        pairs = [str(v) for v in (value if isinstance(value, list | tuple) else [value] if value else [])]
        if len(pairs) > MAX_SELECTED:
            raise forms.ValidationError("The confirmation is out of date; start the move again.")
        return pairs

    def seen(self, pairs: list[str]) -> dict[str, int]:
        found: dict[str, int] = {}
        for pair in pairs:
            hubspot_id, _, stage = pair.partition(":")
            stage_pk = _id_or_none(stage) if stage != "0" else 0
            if _HUBSPOT_ID.fullmatch(hubspot_id) and stage_pk is not None:
                found[hubspot_id] = stage_pk
        return found


# How the confirmation of a bulk move names the board's filters.
FILTER_NAMES = {
    "q": "search",
    "store": "store",
    "status": "fulfillment",
    "currency": "currency",
    "created_from": "created from",
    "created_to": "created to",
    "sync": "sync state",
}


def describe_filters(filters: dict[str, Any]) -> str:
    parts = [f"{FILTER_NAMES[k]} “{v}”" for k, v in filters.items() if k in FILTER_NAMES]
    if filters.get("stale"):
        parts.append("stale")
    return ", ".join(parts)


class BulkMoveForm(forms.Form):
    """A bulk move: the selected cards or all orders matching the board's filters (``query``, as the board
    shows them), into one stage of the board; the confirmation carries what it showed (each order's stage
    then), so an order moved meanwhile is left where it is. After is_valid, ``orders``, ``count`` and
    ``described`` say which orders the move names (an invalid form's too, for its confirmation)."""

    stage = forms.IntegerField(
        min_value=1,
        max_value=MAX_ID,
        error_messages={
            "required": "Choose the stage to move them to.",
            "invalid": "Choose the stage to move them to from the list.",
            "min_value": "Choose the stage to move them to from the list.",
            "max_value": "Choose the stage to move them to from the list.",
        },
    )
    scope = forms.ChoiceField(
        choices=[("selected", "Selected cards"), ("all", "All matching the filters")], required=False
    )
    selected = HubSpotIdsField(required=False)
    filters = forms.CharField(max_length=2000, required=False)
    confirm = forms.BooleanField(required=False)
    seen = SeenStagesField(required=False)
    # More orders than a confirmation lists (a background move): those whose stage changed after it
    # was shown stay where they are.
    shown_at = forms.DateTimeField(required=False)

    def __init__(self, *args: Any, pipeline: Pipeline, query: QueryDict, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pipeline = pipeline
        self.query = query
        self.orders = Order.objects.none()
        self.count = 0
        self.described = ""

    def clean_stage(self) -> Stage:
        stage = (
            self.pipeline.stages.filter(pk=self.cleaned_data["stage"], archived=False)
            .select_related("pipeline")
            .first()
        )
        if stage is None:
            raise forms.ValidationError("That stage isn't on this board; choose the stage to move them to.")
        return stage

    def clean_scope(self) -> str:
        return self.cleaned_data.get("scope") or "selected"

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        self._name_orders(data.get("scope") or "selected", data.get("selected") or [])
        if self.errors:
            return data
        if self.count == 0:
            raise forms.ValidationError("No orders are selected.")
        if data.get("confirm") and not data.get("shown_at"):
            raise forms.ValidationError(
                "This confirmation is out of date; choose the stage and move them again."
            )
        return data

    def _name_orders(self, scope: str, selected: list[str]) -> None:
        if scope == "all":
            filters = BoardFilterForm(self.query).active()
            self.orders = Order.objects.on_board(self.pipeline, filters)
            self.count = self.orders.count()
            self.described = f"all {self.count:,} orders matching the filters" + (
                f" ({describe_filters(filters)})" if filters else " (no filters: every order on this board)"
            )
            return
        self.orders = Order.objects.filter(pipeline=self.pipeline, archived=False, hubspot_id__in=selected)
        self.count = self.orders.count()
        self.described = f"{self.count:,} selected order{'s' if self.count != 1 else ''}"

    def seen_stages(self) -> dict[str, int] | None:
        """{order id: stage pk when the confirmation was shown}, or None when it listed none."""
        if not self.cleaned_data.get("seen") and "seen" not in self.data:
            return None
        field = self.fields["seen"]
        assert isinstance(field, SeenStagesField)
        return field.seen(self.cleaned_data.get("seen") or [])

    def error_text(self) -> str:
        return " ".join(str(e) for errors in self.errors.values() for e in errors)


def stage_correction(record: MirroredObject, change: Change) -> OwnedCorrection | None:
    """A failed move is corrected by choosing a stage of the order's pipeline (the one HubSpot has it in),
    under the pipeline's rules; its pipeline and stage ids are never typed."""
    if not STAGE_PROPERTIES & set(change.new) or not isinstance(record, Order):
        return None
    order = record
    before = str(change.base.get("hs_pipeline") or "")
    pipeline = (
        Pipeline.objects.filter(object_type="orders", hubspot_id=before).first() if before else None
    ) or order.pipeline
    if pipeline is None:
        return OwnedCorrection(names=STAGE_PROPERTIES)
    stages = list(
        pipeline.stages.filter(archived=False).select_related("pipeline").order_by("display_order", "label")
    )
    by_id = {s.hubspot_id: s for s in stages}
    sent = str(change.new.get("hs_pipeline_stage") or "")
    message = f"Choose a stage of {pipeline.label}."
    field = forms.ChoiceField(
        label="Stage",
        choices=[("", "Choose a stage…"), *((s.hubspot_id, s.label) for s in stages)],
        initial=sent if sent in by_id else "",
        error_messages={"required": message, "invalid_choice": message},
    )
    current = by_id.get(str(change.base.get("hs_pipeline_stage") or ""))

    def clean(data: Mapping[str, Any], values: Mapping[str, str]) -> dict[str, str]:
        chosen = data.get("prop_hs_pipeline_stage")
        if not chosen:
            return {}
        stage = by_id[chosen]
        check = check_move_from(order, current, stage, values)
        if not check.allowed:
            hint = " Discard this and move the card on the board to give it." if check.missing else ""
            raise forms.ValidationError(check.reason + hint)
        return {"hs_pipeline": pipeline.hubspot_id, "hs_pipeline_stage": stage.hubspot_id}

    return OwnedCorrection(names=STAGE_PROPERTIES, fields={"prop_hs_pipeline_stage": field}, clean=clean)


class SavedViewForm(forms.Form):
    name = forms.CharField(max_length=80)
    query = forms.CharField(max_length=2000, required=False)
