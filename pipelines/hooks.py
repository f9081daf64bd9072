"""What the pipelines app needs of the records in its pipelines, registered by the app that owns them (orders,
from ``OrdersConfig.ready``): the pipelines app may not import orders, which sit above it.

    register_orders_mover(move)      move(*, source, target, by, limit=None) -> how many orders moved
    move_orders(*, source, target, by, limit=None) -> int
    register_orders_counter(count)   count(stage_ids) -> {stage id: live orders}
    count_orders(stage_ids) -> dict[int, int] | None   (None: nobody registered a counter)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from django.contrib.auth.models import User

    from pipelines.models import Pipeline, Stage


class OrdersMover(Protocol):
    """Moves the live orders of ``source`` (a stage, or a whole pipeline) to ``target`` (at most ``limit``,
    oldest first), each move an outbox Change under the stage rules, in the caller's transaction; returns how
    many moved. Raises ``pipelines.services.PipelineRuleError`` when an order may not enter the target."""

    def __call__(
        self, *, source: Stage | Pipeline, target: Stage, by: User | None, limit: int | None = None
    ) -> int: ...


class OrdersCounter(Protocol):
    """Live orders per stage, for the given stage ids (stages without orders may be left out)."""

    def __call__(self, stage_ids: Sequence[int]) -> dict[int, int]: ...


_movers: list[OrdersMover] = []
_counters: list[OrdersCounter] = []


def register_orders_counter(count: OrdersCounter) -> None:
    _counters[:] = [count]


def count_orders(stage_ids: Sequence[int]) -> dict[int, int] | None:
    return _counters[0](stage_ids) if _counters else None


def register_orders_mover(move: OrdersMover) -> None:
    _movers[:] = [move]


def move_orders(*, source: Stage | Pipeline, target: Stage, by: User | None, limit: int | None = None) -> int:
    if not _movers:
        raise LookupError("no app registered how its orders move out of a stage")
    return _movers[0](source=source, target=target, by=by, limit=limit)
