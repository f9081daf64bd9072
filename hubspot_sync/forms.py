"""Input validation for the hubspot app's pages: the outbox's bulk actions, typed property values, and the
corrections a failed change can be retried with."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django import forms

from hubspot_sync import registry
from hubspot_sync.models import Change, ChangeKind, PropertyDefinition
from hubspot_sync.registry import parse_datetime
from hubspot_sync.values import parse_property_value

if TYPE_CHECKING:
    from hubspot_sync.mirror import MirroredObject


# The largest value a database key holds; a bigger id names no row (and SQLite can't even compare it).
MAX_ID = 2**63 - 1


class IdsField(forms.ModelMultipleChoiceField):  # type: ignore[type-arg]
    """Rows picked by id: anything that isn't an id a key can hold is an error before any query."""

    def clean(self, value: Any) -> Any:
        for pk in value or []:
            try:
                number = int(str(pk))
            except ValueError:
                number = 0
            if not 1 <= number <= MAX_ID:
                raise forms.ValidationError("Some picked changes don't exist (any more); reload the page.")
        return super().clean(value)


class OutboxActionForm(forms.Form):
    """Bulk Retry or Discard of changes picked on the Sync page's outbox."""

    action = forms.ChoiceField(choices=[("retry", "Retry"), ("discard", "Discard")])
    change = IdsField(
        queryset=Change.objects.unsettled(), error_messages={"required": "Pick at least one change."}
    )


# --- typed property values ----------------------------------------------------------------------------------


def visible_options(definition: PropertyDefinition | None) -> list[tuple[str, str]]:
    """(value, label) of the options a person may choose (HubSpot's hidden ones left out)."""
    if definition is None:
        return []
    return [
        (str(o.get("value", "")), str(o.get("label", o.get("value", ""))))
        for o in definition.options or []
        if isinstance(o, dict) and not o.get("hidden")
    ]


def widget_value(value: str, type_: str) -> str:
    """A stored HubSpot value as the input shows it (dates as YYYY-MM-DD, datetimes in UTC to the second)."""
    if type_ in ("date", "datetime") and value:
        moment = parse_datetime(value)
        if moment is not None:
            return moment.strftime("%Y-%m-%d") if type_ == "date" else moment.strftime("%Y-%m-%dT%H:%M:%S")
    return value


class PropertyValueField(forms.CharField):
    """One HubSpot property's value, parsed by its definition's type (``hubspot_sync.values``). Without a
    definition the value is checked as text. An empty value is "" (which clears it in HubSpot)."""

    def __init__(self, *, name: str, definition: PropertyDefinition | None, **kwargs: Any) -> None:
        self.property_name = name
        self.definition = definition
        self.value_type = definition.type if definition else "string"
        self.options = visible_options(definition)
        kwargs.setdefault("label", (definition.label if definition else "") or name)
        kwargs.setdefault("required", False)
        kwargs.setdefault("widget", self._widget())
        super().__init__(strip=False, **kwargs)

    def _widget(self) -> forms.Widget:
        if self.options and not (self.definition and self.definition.field_type == "checkbox"):
            return forms.Select(choices=[("", "—"), *self.options])
        if self.value_type == "bool":
            return forms.Select(choices=[("", "—"), ("true", "Yes"), ("false", "No")])
        if self.value_type == "number":
            return forms.NumberInput(attrs={"step": "any"})
        if self.value_type == "date":
            return forms.DateInput(attrs={"type": "date"})
        if self.value_type == "datetime":
            return forms.DateTimeInput(attrs={"type": "datetime-local", "step": "1"})
        return forms.TextInput()

    def prepare_value(self, value: Any) -> Any:
        return widget_value(value, self.value_type) if isinstance(value, str) else value

    def clean(self, value: Any) -> str:
        text = super().clean(value)
        if self.required and not text.strip():
            raise forms.ValidationError(f"{self.label} needs a value.", code="required")
        parsed, error = parse_property_value(
            text,
            type=self.value_type,
            field_type=self.definition.field_type if self.definition else "",
            options=[v for v, _ in self.options] if self.definition and self.definition.options else None,
            label=str(self.label),
        )
        if error:
            raise forms.ValidationError(error, code="invalid")
        return parsed


def definitions_for(object_type: str, names: list[str]) -> dict[str, PropertyDefinition]:
    return {
        d.name: d
        for d in PropertyDefinition.objects.filter(object_type=object_type, name__in=names, archived=False)
    }


# --- corrections of a failed change -------------------------------------------------------------------------


@dataclass(frozen=True)
class OwnedCorrection:
    """Properties of a failed change that the record's own app corrects (an order's pipeline and stage are
    a choice among its pipeline's stages, under the stage rules): never offered as free text."""

    names: frozenset[str]
    # Its inputs, named like the rest ("prop_<property>"); may be fewer than ``names``.
    fields: dict[str, forms.Field] = field(default_factory=dict)
    # The inputs' cleaned values and the change's other (corrected) values -> the owned properties' values;
    # raises ValidationError when the choice is not allowed.
    clean: Callable[[Mapping[str, Any], Mapping[str, str]], dict[str, str]] = lambda data, values: {}


# (record, change) -> the properties the record's app answers for, or None when the change has none.
CorrectionHook = Callable[["MirroredObject", Change], OwnedCorrection | None]
_CORRECTIONS: dict[str, CorrectionHook] = {}


def register_correction(object_type: str, hook: CorrectionHook) -> None:
    """Let an app validate the corrections of some of its type's properties itself."""
    _CORRECTIONS[object_type] = hook


class ChangeCorrectionForm(forms.Form):
    """The values a failed change is retried with: one typed input per property it sets, validated like an
    inline edit (read-only properties keep their value); properties the record's app owns are corrected
    through its own inputs."""

    def __init__(self, *args: Any, change: Change, record: MirroredObject | None, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", False)  # one page may show the same change twice (card and drawer)
        super().__init__(*args, **kwargs)
        self.change = change
        self.owned: OwnedCorrection | None = None
        correctable = change.kind in (ChangeKind.UPDATE, ChangeKind.CREATE) and change.status == "failed"
        if not correctable or record is None:
            return  # a record no longer cached is retried as it was
        hook = _CORRECTIONS.get(change.object_type)
        if hook is not None:
            self.owned = hook(record, change)
        owned = self.owned.names if self.owned else frozenset()
        names = [n for n in change.new if n not in owned]
        definitions = definitions_for(change.object_type, names)
        for name in names:
            definition = definitions.get(name)
            if definition is not None and not definition.editable:
                continue  # HubSpot computes it; sent as it was
            value = change.new.get(name)
            self.fields[f"prop_{name}"] = PropertyValueField(
                name=name, definition=definition, initial="" if value is None else str(value)
            )
        if self.owned:
            self.fields.update(self.owned.fields)
        if self.is_bound:
            # A retry without an input for a property sends its value as it was (the Sync page's Retry).
            for key in [k for k in self.fields if k not in self.data]:
                del self.fields[key]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        self.fixed: dict[str, str] = {}
        if self.errors:
            return data
        values = {
            f.property_name: data[key]
            for key, f in self.fields.items()
            if isinstance(f, PropertyValueField) and key in data
        }
        if self.owned:
            try:
                values.update(self.owned.clean(data, {**self.change.new, **values}))
            except forms.ValidationError as exc:
                self.add_error(None, exc)
                return data
        self.fixed = {n: v for n, v in values.items() if v != self.change.new.get(n)}
        return data

    def corrections(self) -> dict[str, str]:
        """The values that differ from what the change sends (after is_valid)."""
        return self.fixed

    def error_text(self) -> str:
        return " ".join(str(e) for errors in self.errors.values() for e in errors)


def record_of(change: Change) -> MirroredObject | None:
    """The cached record a change is about, if the cache has it."""
    spec = registry.find(change.object_type)
    return spec.model._default_manager.filter(hubspot_id=change.object_id).first() if spec else None


class ChangeActionForm(ChangeCorrectionForm):
    """Retry, Discard, Keep mine or Take HubSpot's on one change. A Retry carries corrections, typed like
    inline edits (a move's stage is a choice the record's app validates); the others take no input."""

    def __init__(self, *args: Any, change: Change, action: str, **kwargs: Any) -> None:
        self.action = action
        record = record_of(change) if action == "retry" else None
        super().__init__(*args, change=change, record=record, **kwargs)

    def arguments(self) -> dict[str, Any]:
        """The action's arguments besides the change and the person (after is_valid)."""
        return {"properties": self.corrections() or None} if self.action == "retry" else {}
