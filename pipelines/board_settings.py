"""Writes of the editor that stay here: a pipeline's stage rules and card settings, and a stage's required
properties. HubSpot enforces its pipeline rules only in its own UI, so OrderDeck keeps and enforces its own
(``pipelines.rules``); nothing of this goes through the outbox.

    pipeline_settings_update(*, pipeline, by, allow_skipping, allow_moving_back, stale_after_days,
                             card_properties) -> Pipeline
    stage_rules_update(*, stage, by, required_properties) -> Stage
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from django.db import transaction

from pipelines.models import Pipeline, Stage

if TYPE_CHECKING:
    from django.contrib.auth.models import User

logger = logging.getLogger(__name__)


@transaction.atomic
def pipeline_settings_update(
    *,
    pipeline: Pipeline,
    by: User | None,
    allow_skipping: bool,
    allow_moving_back: bool,
    stale_after_days: int,
    card_properties: Sequence[str],
) -> Pipeline:
    """Save a pipeline's stage rules and card settings (the board uses them at once)."""
    pipeline.allow_skipping = allow_skipping
    pipeline.allow_moving_back = allow_moving_back
    pipeline.stale_after_days = stale_after_days
    pipeline.card_properties = list(card_properties)
    pipeline.save(
        update_fields=["allow_skipping", "allow_moving_back", "stale_after_days", "card_properties"]
    )
    logger.info(
        "board settings of pipeline %s changed by %s: skipping %s, moving back %s, stale after %d, card %s",
        pipeline.pk,
        by.get_username() if by else "OrderDeck",
        allow_skipping,
        allow_moving_back,
        stale_after_days,
        ",".join(card_properties),
    )
    return pipeline


@transaction.atomic
def stage_rules_update(*, stage: Stage, by: User | None, required_properties: Sequence[str]) -> Stage:
    """Save the properties an order needs a value for to enter the stage."""
    stage.required_properties = list(dict.fromkeys(required_properties))
    stage.save(update_fields=["required_properties"])
    logger.info(
        "required properties of stage %s changed by %s: %s",
        stage.pk,
        by.get_username() if by else "OrderDeck",
        ",".join(stage.required_properties),
    )
    return stage
