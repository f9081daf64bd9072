"""Property names and values as staff read them: labels and option labels from HubSpot's property definitions,
dates formatted, and pipeline and stage names for the ids HubSpot keeps in ``hs_pipeline`` and
``hs_pipeline_stage``. Timelines and the record page show these instead of internal names and ids."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hubspot_sync import registry
from hubspot_sync.models import PropertyDefinition
from hubspot_sync.registry import parse_datetime

# What staff call these, whatever label the portal gives them ("Order Stage", "Pipeline").
PREFERRED_LABELS = {"hs_pipeline": "Pipeline", "hs_pipeline_stage": "Stage"}


@dataclass(frozen=True)
class LabelledChange:
    """One property of a change: its label and its values before and after, as text for people."""

    name: str
    label: str
    before: str
    after: str


class PropertyLabels:
    """Labels for one object type's properties, read from the database once (lazily) per instance."""

    def __init__(self, object_type: str) -> None:
        self.object_type = object_type
        self._definitions: dict[str, PropertyDefinition] | None = None
        self._pipelines: dict[str, str] | None = None
        # (pipeline id, stage id) -> label, and stage id -> label for a stage named without its pipeline.
        self._stages: dict[tuple[str, str], str] = {}
        self._stages_by_id: dict[str, str] = {}

    def _definition(self, name: str) -> PropertyDefinition | None:
        if self._definitions is None:
            self._definitions = {
                d.name: d for d in PropertyDefinition.objects.filter(object_type=self.object_type)
            }
        return self._definitions.get(name)

    def _load_pipelines(self) -> None:
        # The app that owns pipelines registers where their labels come from.
        pipelines, stages = registry.id_labels(self.object_type)
        self._pipelines = pipelines
        # Live stages first, so an id that names an archived stage and a live one gives the live one's label.
        for pipeline_id, stage_id, label in stages:
            self._stages[(pipeline_id, stage_id)] = label
            self._stages_by_id.setdefault(stage_id, label)

    def label(self, name: str) -> str:
        if name in PREFERRED_LABELS:
            return PREFERRED_LABELS[name]
        definition = self._definition(name)
        return without_bidi_overrides((definition.label if definition else "") or name)

    def value(self, name: str, value: Any, *, pipeline_id: str = "") -> str:
        """A value as people read it: a stage's or pipeline's name, an option's label, a formatted date."""
        return without_bidi_overrides(self._value(name, value, pipeline_id=pipeline_id))

    def _value(self, name: str, value: Any, *, pipeline_id: str) -> str:
        if value is None:
            return ""
        text = value if isinstance(value, str) else str(value)
        if text == "":
            return ""
        if name in ("hs_pipeline", "hs_pipeline_stage"):
            if self._pipelines is None:
                self._load_pipelines()
            assert self._pipelines is not None
            if name == "hs_pipeline":
                return self._pipelines.get(text, text)
            return self._stages.get((pipeline_id, text)) or self._stages_by_id.get(text, text)
        definition = self._definition(name)
        if definition is None:
            return text
        if definition.options:
            labels = {
                str(o.get("value", "")): str(o.get("label") or o.get("value", "")) for o in definition.options
            }
            return ", ".join(labels.get(v, v) for v in text.split(";"))
        if definition.type == "datetime":
            moment = parse_datetime(text)
            return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else text
        if definition.type == "bool":
            return {"true": "Yes", "false": "No"}.get(text.lower(), text)
        return text

    def changes(
        self, before: Mapping[str, Any], after: Mapping[str, Any], *, pipeline_id: str = ""
    ) -> list[LabelledChange]:
        """Each property ``after`` sets, labelled; a stage is named within the pipeline the change sets, or
        else ``pipeline_id`` (the record's)."""
        old_pipeline = str(before.get("hs_pipeline") or pipeline_id)
        new_pipeline = str(after.get("hs_pipeline") or pipeline_id)
        return [
            LabelledChange(
                name=name,
                label=self.label(name),
                before=self.value(name, before.get(name), pipeline_id=old_pipeline),
                after=self.value(name, value, pipeline_id=new_pipeline),
            )
            for name, value in after.items()
            if name != "stages"
        ]


def labels_for(cache: dict[str, PropertyLabels], object_type: str) -> PropertyLabels:
    """The labels of a type from ``cache`` (one per page render), made on first use."""
    if object_type not in cache:
        cache[object_type] = PropertyLabels(object_type)
    return cache[object_type]


# Explicit embeddings and overrides (LRE, RLE, PDF, LRO, RLO): an override shows "gnp.exe" as "exe.png", and
# <bdi> only keeps it from spilling into the text around it. Shown text leaves them out, so it reads in the
# order it is stored; isolates (LRI, RLI, FSI, PDI) only isolate, and stay.
_BIDI_OVERRIDES = dict.fromkeys(range(0x202A, 0x202F))


def without_bidi_overrides(text: str) -> str:
    """HubSpot text as it is stored, without the characters that would display it in another order."""
    return text.translate(_BIDI_OVERRIDES)
