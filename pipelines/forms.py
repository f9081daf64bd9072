"""Input validation for the pipeline editor: each form names the fields it takes and parses them by type."""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from hubspot_sync.models import PropertyDefinition
from pipelines.models import Pipeline, Stage, StageState
from pipelines.rules import STAGE_PROPERTIES

# HubSpot's cap on the stages of one pipeline (reference: pipelines API, "up to 30 stages").
MAX_STAGES = 30
LABEL_MAX = 255
# A card shows the order's name and at most this many lines under it.
MAX_CARD_FIELDS = 8
STALE_DAYS_MAX = 365
# The card line that is the associated contact, not a HubSpot property.
CUSTOMER = "customer"
STATE_CHOICES = [(StageState.OPEN, "Open"), (StageState.CLOSED, "Closed")]
DIRECTIONS = [("up", "Up"), ("down", "Down")]


def _one_line(value: str) -> None:
    """A label is one line of text: control characters (line breaks, tabs, NUL) are refused."""
    if any(unicodedata.category(ch) == "Cc" for ch in value):
        raise ValidationError("A name is one line, without tabs or line breaks.")


class LabelField(forms.CharField):
    """A pipeline's or stage's name: stripped, one line, up to HubSpot's length."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", LABEL_MAX)
        kwargs.setdefault(
            "error_messages",
            {
                "required": "A name is needed.",
                "max_length": f"A name has at most {LABEL_MAX} characters.",
            },
        )
        super().__init__(validators=[_one_line], **kwargs)


def folded(label: str) -> str:
    """How HubSpot compares labels for uniqueness (case and surrounding spaces ignored)."""
    return label.strip().casefold()


# --- choices read from the property definitions ----------------------------------------------------------


def order_properties() -> list[PropertyDefinition]:
    return list(
        PropertyDefinition.objects.filter(object_type="orders", archived=False, hidden=False).order_by(
            "label", "name"
        )
    )


def required_choices(current: Sequence[str] = ()) -> list[tuple[str, str]]:
    """Properties a stage may require: ones a move can set (not read-only or calculated, not the stage
    itself); the stage's current ones stay listed so they can be unticked."""
    choices = [
        (d.name, d.label or d.name)
        for d in order_properties()
        if d.editable and d.name not in STAGE_PROPERTIES
    ]
    known = {name for name, _ in choices}
    return choices + [(name, name) for name in current if isinstance(name, str) and name not in known]


def card_choices(current: Sequence[str] = ()) -> list[tuple[str, str]]:
    """Lines a card may show: the customer, then the order properties; current ones stay listed."""
    choices = [(CUSTOMER, "Customer")] + [
        (d.name, d.label or d.name) for d in order_properties() if d.name not in STAGE_PROPERTIES
    ]
    known = {name for name, _ in choices}
    return choices + [(name, name) for name in current if isinstance(name, str) and name not in known]


# --- pipelines -------------------------------------------------------------------------------------------


@dataclass
class StageRow:
    """A stage row of the new-pipeline form, as typed (so a refused form shows it again)."""

    label: str
    state: str
    error: str = ""


class PipelineCreateForm(forms.Form):
    """A new pipeline: its name, and its stages as rows (``stage_label`` and ``stage_state``, in order)."""

    label = LabelField(label="Pipeline name")

    def __init__(self, data: Mapping[str, Any] | None = None) -> None:
        super().__init__(data)
        self.rows: list[StageRow] = []
        if data is not None and hasattr(data, "getlist"):
            labels = [str(v) for v in data.getlist("stage_label")]
            states = [str(v) for v in data.getlist("stage_state")]
            # More rows than a pipeline may hold are read only far enough to say so.
            for n, label in enumerate(labels[: MAX_STAGES * 2]):
                state = states[n] if n < len(states) else StageState.OPEN
                self.rows.append(StageRow(label[: LABEL_MAX + 1], state[:8]))
        else:
            self.rows = [
                StageRow("", StageState.OPEN),
                StageRow("", StageState.OPEN),
                StageRow("", StageState.CLOSED),
            ]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        stages: list[tuple[str, str]] = []
        seen: dict[str, int] = {}
        field = LabelField()
        for row in self.rows:
            if not row.label.strip():
                continue  # an empty row is left out
            try:
                label = field.clean(row.label)
            except ValidationError as exc:
                row.error = " ".join(exc.messages)
                continue
            if row.state not in StageState.values:
                row.error = "Choose Open or Closed."
                continue
            if folded(label) in seen:
                row.error = f"“{label}” is already a stage of this pipeline: stage names are unique."
                continue
            seen[folded(label)] = len(stages)
            stages.append((label, row.state))
        if any(row.error for row in self.rows):
            raise ValidationError("Some stages need a correction.")
        if not stages:
            raise ValidationError("A pipeline needs at least one stage.")
        if len(stages) > MAX_STAGES:
            raise ValidationError(f"A pipeline holds at most {MAX_STAGES} stages (HubSpot's limit).")
        cleaned["stages"] = stages
        return cleaned


class RenameForm(forms.Form):
    label = LabelField(label="Name")


class MoveForm(forms.Form):
    """Move up or down one place (the keyboard's reorder, for pipelines and stages)."""

    direction = forms.ChoiceField(choices=DIRECTIONS)


class BoardSettingsForm(forms.Form):
    """A pipeline's stage rules and card settings. The card lines come in their order; one button of the
    list (add, remove, up, down) may change that order before it is saved."""

    no_skipping = forms.BooleanField(required=False, label="Don't allow skipping stages")
    no_moving_back = forms.BooleanField(required=False, label="Don't allow moving back")
    stale_after_days = forms.IntegerField(
        min_value=1,
        max_value=STALE_DAYS_MAX,
        label="Stale after",
        error_messages={
            "required": "Say after how many days a card is stale.",
            "invalid": "A whole number of days.",
            "min_value": "At least 1 day.",
            "max_value": f"At most {STALE_DAYS_MAX} days.",
        },
    )
    card_properties = forms.MultipleChoiceField(required=False)
    card_add = forms.ChoiceField(required=False, label="Add a card line")
    card_remove = forms.ChoiceField(required=False)
    card_up = forms.ChoiceField(required=False)
    card_down = forms.ChoiceField(required=False)

    LIST_FIELDS = ("card_properties", "card_add", "card_remove", "card_up", "card_down")

    def __init__(self, data: Mapping[str, Any] | None = None, *, pipeline: Pipeline) -> None:
        current = [n for n in (pipeline.card_properties or []) if isinstance(n, str)]
        initial = {
            "no_skipping": not pipeline.allow_skipping,
            "no_moving_back": not pipeline.allow_moving_back,
            "stale_after_days": pipeline.stale_after_days,
            "card_properties": current,
        }
        super().__init__(data, initial=initial, auto_id=f"settings-{pipeline.pk}-%s")
        self.pipeline = pipeline
        choices = card_choices(current)
        self.labels = dict(choices)
        for name in self.LIST_FIELDS:
            self.fields[name].choices = [("", "Add a card line…"), *choices]  # type: ignore[attr-defined]
        self.fields["card_properties"].choices = choices  # type: ignore[attr-defined]
        self.moved: tuple[str, str] | None = None  # (name, "up" | "down") when a line moved

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        lines = list(dict.fromkeys(cleaned.get("card_properties") or []))
        add, remove = cleaned.get("card_add"), cleaned.get("card_remove")
        up, down = cleaned.get("card_up"), cleaned.get("card_down")
        if add and add not in lines:
            lines.append(add)
        if remove in lines:
            lines.remove(remove)
        for name, step in ((up, -1), (down, 1)):
            if isinstance(name, str) and name in lines:
                at = lines.index(name)
                to = max(0, min(len(lines) - 1, at + step))
                lines.insert(to, lines.pop(at))
                self.moved = (name, "up" if step < 0 else "down")
        if len(lines) > MAX_CARD_FIELDS:
            self.add_error("card_add", f"A card shows at most {MAX_CARD_FIELDS} lines; remove one first.")
        cleaned["card_properties"] = lines
        return cleaned

    def lines(self) -> list[tuple[str, str]]:
        """The card lines as the form shows them: the saved ones, or those sent with a refused form."""
        names = (
            self.cleaned_data.get("card_properties", [])
            if self.is_bound and hasattr(self, "cleaned_data")
            else self.initial["card_properties"]
        )
        return [(name, self.labels.get(name, name)) for name in names]

    def addable(self) -> list[tuple[str, str]]:
        shown = {name for name, _ in self.lines()}
        return [(name, label) for name, label in self.labels.items() if name not in shown]


class ArchiveForm(forms.Form):
    """Archive a pipeline; its orders (if any) first move to a stage of another pipeline."""

    move_to = forms.TypedChoiceField(coerce=int, required=False, label="Move its orders to", empty_value=None)

    def __init__(self, data: Mapping[str, Any] | None = None, *, targets: Sequence[Stage]) -> None:
        super().__init__(data)
        self.targets = {s.pk: s for s in targets}
        # [(pipeline, [its stages])], for the choice's option groups
        self.groups: list[tuple[Pipeline, list[Stage]]] = []
        for stage in targets:
            if not self.groups or self.groups[-1][0].pk != stage.pipeline_id:
                self.groups.append((stage.pipeline, []))
            self.groups[-1][1].append(stage)
        self.fields["move_to"].choices = [("", "Choose a stage…")] + [  # type: ignore[attr-defined]
            (s.pk, s.label) for s in targets
        ]

    def target(self) -> Stage | None:
        """The chosen stage, once it parsed (whatever else was refused)."""
        if not self.is_bound:
            return None
        self.is_valid()
        pk = self.cleaned_data.get("move_to")
        return self.targets.get(pk) if pk is not None else None


# --- stages ----------------------------------------------------------------------------------------------


class StageCreateForm(forms.Form):
    label = LabelField(label="New stage")
    state = forms.ChoiceField(choices=STATE_CHOICES, initial=StageState.OPEN, label="State")

    def __init__(self, data: Mapping[str, Any] | None = None, *, pipeline: Pipeline) -> None:
        super().__init__(data, auto_id=f"stage-new-{pipeline.pk}-%s")
        self.pipeline = pipeline


class StageStateForm(forms.Form):
    state = forms.ChoiceField(choices=STATE_CHOICES, label="State")


class StageOrderForm(forms.Form):
    """The pipeline's stages in their new order (a drag): every live stage once, nothing else."""

    stage = forms.TypedMultipleChoiceField(coerce=int, error_messages={"required": "No stages were sent."})

    def __init__(self, data: Mapping[str, Any] | None = None, *, stages: Sequence[Stage]) -> None:
        super().__init__(data)
        self.stages = {s.pk: s for s in stages}
        self.fields["stage"].choices = [(s.pk, s.label) for s in stages]  # type: ignore[attr-defined]

    def clean_stage(self) -> list[Stage]:
        pks: list[int] = self.cleaned_data["stage"]
        if len(pks) != len(set(pks)) or set(pks) != set(self.stages):
            raise ValidationError("The stages changed meanwhile: here they are as they are now.")
        return [self.stages[pk] for pk in pks]


class StageRulesForm(forms.Form):
    """The properties an order needs a value for to enter the stage."""

    required = forms.MultipleChoiceField(required=False, label="Required on entry")

    def __init__(self, data: Mapping[str, Any] | None = None, *, stage: Stage) -> None:
        current = [n for n in (stage.required_properties or []) if isinstance(n, str)]
        super().__init__(data, initial={"required": current}, auto_id=f"rules-{stage.pk}-%s")
        self.stage = stage
        self.fields["required"].choices = required_choices(current)  # type: ignore[attr-defined]

    def clean_required(self) -> list[str]:
        return list(dict.fromkeys(self.cleaned_data["required"]))


class StageDeleteForm(forms.Form):
    """Delete a stage; its orders (if any) first move to another stage of the pipeline."""

    move_to = forms.TypedChoiceField(coerce=int, required=False, label="Move its orders to", empty_value=None)

    def __init__(self, data: Mapping[str, Any] | None = None, *, targets: Sequence[Stage]) -> None:
        super().__init__(data)
        self.targets = {s.pk: s for s in targets}
        self.fields["move_to"].choices = [("", "Choose a stage…")] + [  # type: ignore[attr-defined]
            (s.pk, s.label) for s in targets
        ]

    def target(self) -> Stage | None:
        """The chosen stage, once it parsed (whatever else was refused)."""
        if not self.is_bound:
            return None
        self.is_valid()
        pk = self.cleaned_data.get("move_to")
        return self.targets.get(pk) if pk is not None else None


def error_text(form: forms.Form) -> str:
    """A form's errors as one sentence or a few, for a message in the page."""
    return " ".join(str(e) for errors in form.errors.values() for e in errors)
