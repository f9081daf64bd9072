"""Stage rules, checked before a move (HubSpot enforces its pipeline rules only in its own UI, so we do)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pipelines.models import Stage, StageState


class Movable(Protocol):
    """What the rules read of a record in a pipeline (an order): its stage and its HubSpot properties."""

    @property
    def stage(self) -> Stage | None: ...

    @property
    def properties(self) -> Any: ...


@dataclass(frozen=True)
class MoveCheck:
    allowed: bool
    reason: str = ""
    # Required properties the order has no value for; the move asks for them and happens only with them.
    missing: list[str] = field(default_factory=list)


# The properties that say where an order is: a move sets them from its target stage alone, never from input.
STAGE_PROPERTIES = frozenset({"hs_pipeline", "hs_pipeline_stage"})


def move_properties(target: Stage) -> list[str]:
    """The properties a move into the target stage may carry: the stage's required ones, and nothing else."""
    required = target.required_properties if isinstance(target.required_properties, list) else []
    names = [n for n in required if isinstance(n, str) and n and n not in STAGE_PROPERTIES]
    return list(dict.fromkeys(names))


def check_move(order: Movable, target: Stage, values: Mapping[str, str] | None = None) -> MoveCheck:
    """May the order enter the target stage now (with these extra values)?"""
    return check_move_from(order, order.stage, target, values)


def check_move_from(
    order: Movable, current: Stage | None, target: Stage, values: Mapping[str, str] | None = None
) -> MoveCheck:
    """May the order go from ``current`` (the stage HubSpot has it in, when that differs from the cache's,
    as for a failed move being corrected) into the target stage, with these extra values?"""
    stage_rules = check_stage_rules(current, target)
    if not stage_rules.allowed:
        return stage_rules
    missing = missing_properties(order.properties, target, values)
    if missing:
        return MoveCheck(False, f"“{target.label}” needs a value first.", missing)
    return MoveCheck(True)


def check_stage_rules(
    current: Stage | None, target: Stage, stages: Sequence[Stage] | None = None
) -> MoveCheck:
    """The pipeline's rules for a move from ``current`` into ``target``, whatever the order: no moving back,
    no skipping open stages. ``stages``: the pipeline's live stages, when the caller has them (else read)."""
    pipeline = target.pipeline
    if current is None or current.pipeline_id != target.pipeline_id or current.pk == target.pk:
        return MoveCheck(True)
    if not pipeline.allow_moving_back and target.display_order < current.display_order:
        return MoveCheck(
            False,
            f"{pipeline.label} doesn't allow moving orders back, from “{current.label}” to “{target.label}”.",
        )
    if not pipeline.allow_skipping and target.state == StageState.OPEN:
        if stages is None:
            skipped = list(
                Stage.objects.filter(
                    pipeline=pipeline,
                    archived=False,
                    state=StageState.OPEN,
                    display_order__gt=current.display_order,
                    display_order__lt=target.display_order,
                ).values_list("label", flat=True)
            )
        else:
            skipped = [
                s.label
                for s in sorted(stages, key=lambda s: (s.display_order, s.label))
                if not s.archived
                and s.state == StageState.OPEN
                and current.display_order < s.display_order < target.display_order
            ]
        if skipped:
            return MoveCheck(
                False, f"{pipeline.label} doesn't allow skipping stages: move through “{skipped[0]}” first."
            )
    return MoveCheck(True)


def missing_properties(
    properties: Mapping[str, Any], target: Stage, values: Mapping[str, str] | None = None
) -> list[str]:
    """The target's required properties that neither the order's properties nor ``values`` fill."""
    values = values or {}
    return [
        name
        for name in move_properties(target)
        if not str(values.get(name) or properties.get(name) or "").strip()
    ]
