"""History costs no queries: the board and the order drawer send the same number of statements with a few
thousand applied Changes (the audit log) and processed webhook events in the tables as without them, the
drawer's own order included (its timeline shows a page of its history, whatever the length)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from hubspot_sync.models import Change, ChangeKind, ChangeStatus, PropertyDefinition, WebhookEvent
from orders.models import Order
from pipelines.models import Pipeline
from tests import factories

pytestmark = pytest.mark.django_db

HISTORY = 3000  # applied Changes, and as many processed webhook events
OWN_HISTORY = 120  # of them, the drawer's order's: more than its timeline shows


@dataclass
class Board:
    pipeline: Pipeline
    orders: list[Order]
    staff: list[User]

    @property
    def drawn(self) -> Order:
        """The order the drawer shows."""
        return self.orders[0]


def stage_move(order: Order, stage_id: str, to: str, *, by: User, at: Any, **fields: Any) -> Change:
    return Change(
        object_type="orders",
        object_id=order.hubspot_id,
        kind=ChangeKind.UPDATE,
        base={"hs_pipeline_stage": stage_id},
        new={"hs_pipeline_stage": to, "hs_fulfillment_status": "Shipped"},
        created_by=by,
        created_by_name=by.get_full_name(),
        created_at=at,
        **fields,
    )


def stage_event(order: Order, stage_id: str, n: str, *, at: Any, **fields: Any) -> WebhookEvent:
    return WebhookEvent(
        event_id=f"event-{n}",
        subscription_type="object.propertyChange",
        object_type="orders",
        object_id=order.hubspot_id,
        occurred_at=at,
        payload={"propertyName": "hs_pipeline_stage", "propertyValue": stage_id},
        **fields,
    )


@pytest.fixture
def board() -> Board:
    """A board of twelve orders over three stages; the drawer's order, one of them, with a short
    timeline of its own (a move HubSpot has, a move waiting to be sent, two events HubSpot sent)."""
    pipeline = factories.pipeline_with_stages()
    stages = list(pipeline.stages.order_by("display_order"))
    for name, label, type_ in (
        ("hs_pipeline_stage", "Order Stage", "enumeration"),
        ("hs_fulfillment_status", "Fulfillment status", "string"),
    ):
        PropertyDefinition.objects.create(
            object_type="orders", name=name, label=label, type=type_, group_name="orderinformation"
        )
    orders = [factories.OrderFactory(stage=stages[n % 3]) for n in range(12)]
    staff = [factories.support_user() for _ in range(3)]
    order = orders[0]
    a_while_ago = timezone.now() - timedelta(hours=2)
    Change.objects.bulk_create(
        [
            stage_move(
                order,
                stages[1].hubspot_id,
                stages[0].hubspot_id,
                by=staff[1],
                at=a_while_ago,
                status=ChangeStatus.APPLIED,
                applied_at=a_while_ago,
            ),
            stage_move(order, stages[0].hubspot_id, stages[1].hubspot_id, by=staff[2], at=timezone.now()),
        ]
    )
    WebhookEvent.objects.bulk_create(
        stage_event(order, stages[n].hubspot_id, f"own-{n}", at=a_while_ago, processed_at=a_while_ago)
        for n in range(2)
    )
    return Board(pipeline, orders, staff)


def add_history(board: Board) -> None:
    """A year of work in miniature: moves of the board's orders and of orders long gone, applied long ago,
    and the events HubSpot sent about them, processed; the drawer's order has OWN_HISTORY of each."""
    stages = list(board.pipeline.stages.values_list("hubspot_id", flat=True))
    long_ago = timezone.now() - timedelta(days=200)
    others = board.orders[1:] + [Order(hubspot_id=str(50_000_000_000 + n)) for n in range(300)]
    orders = [board.drawn] * OWN_HISTORY + [others[n % len(others)] for n in range(HISTORY - OWN_HISTORY)]
    Change.objects.bulk_create(
        stage_move(
            order,
            stages[n % len(stages)],
            stages[(n + 1) % len(stages)],
            by=board.staff[n % len(board.staff)],
            at=long_ago + timedelta(minutes=n),
            status=ChangeStatus.APPLIED,
            pushed_at=long_ago + timedelta(minutes=n),
            applied_at=long_ago + timedelta(minutes=n),
            settled_at=long_ago + timedelta(minutes=n),
        )
        for n, order in enumerate(orders)
    )
    WebhookEvent.objects.bulk_create(
        stage_event(
            order,
            stages[n % len(stages)],
            f"history-{n}",
            at=long_ago + timedelta(minutes=n),
            processed_at=long_ago + timedelta(minutes=n),
            outcome="refreshed",
        )
        for n, order in enumerate(orders)
    )


def queries(client: Client, url: str) -> list[str]:
    """The statements one request for ``url`` sends (after a first request, so nothing is read once only)."""
    assert client.get(url).status_code == 200
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return [q["sql"] for q in captured.captured_queries]


def test_the_board_and_the_drawer_cost_the_same_queries_with_a_long_history(
    client: Client, board: Board
) -> None:
    client.force_login(board.staff[0])
    pages = {"board": f"/boards/{board.pipeline.pk}/", "drawer": f"/boards/orders/{board.drawn.hubspot_id}/"}
    before = {name: queries(client, url) for name, url in pages.items()}
    short = client.get(pages["drawer"]).content.decode()

    add_history(board)
    assert Change.objects.filter(status=ChangeStatus.APPLIED).count() > HISTORY
    assert WebhookEvent.objects.filter(processed_at__isnull=False).count() > HISTORY
    after = {name: queries(client, url) for name, url in pages.items()}

    for name in pages:
        assert len(after[name]) == len(before[name]), (
            f"the {name} sends {len(after[name])} statements with history, {len(before[name])} without:\n"
            + "\n".join(q for q in after[name] if q not in before[name])
        )
    # The history was there to read: the drawer's timeline shows more of it than before, a page at most.
    long = client.get(pages["drawer"]).content.decode()
    assert long.count(board.staff[0].get_full_name()) > short.count(board.staff[0].get_full_name())
