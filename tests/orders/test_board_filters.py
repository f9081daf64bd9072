"""The board's filters: store, fulfillment and currency are choices from the values the pipeline's orders
have, matched whatever the case; the query every link, saved view and poll carries is the filters alone;
the live poll sends only what changed; the board page carries no inline script."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from html import unescape
from typing import Any

import pytest
from django.utils import timezone

from orders import board as boards
from orders.forms import BoardFilterForm
from orders.models import Order, SavedView
from pipelines.models import Pipeline
from tests import factories

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}


@pytest.fixture
def pipeline() -> Pipeline:
    return factories.pipeline_with_stages(label="Online orders")


def order_in(pipeline: Pipeline, label: str = "Open", **kwargs: Any) -> Order:
    return factories.OrderFactory(stage=pipeline.stages.get(label=label), **kwargs)


def options(html: str, name: str) -> list[str]:
    select = re.search(rf'<select name="{name}"[^>]*>(.*?)</select>', html, re.S)
    assert select, f"no select for {name}"
    return [unescape(v) for v in re.findall(r'<option value="([^"]*)"', select.group(1))]


def test_the_choices_are_the_values_the_pipelines_orders_have(
    support_client: Any, pipeline: Pipeline
) -> None:
    order_in(pipeline, store="Portland", currency="USD", fulfillment_status="Packing")
    order_in(pipeline, store="portland", currency="USD", fulfillment_status="Shipped")
    order_in(pipeline, store="Portland", currency="EUR", fulfillment_status="Packing")
    order_in(pipeline, store="", currency="EUR")
    archived = order_in(pipeline, store="Gone store")
    archived.archived = True
    archived.save()
    other = factories.pipeline_with_stages(label="Wholesale")
    order_in(other, store="Elsewhere", currency="JPY")

    html = support_client.get(f"/boards/{pipeline.pk}/").content.decode()

    # One choice per value whatever its case (the spelling most orders have), nothing from other
    # pipelines or archived orders, and no empty value beyond "any".
    assert options(html, "store") == ["", "Portland"]
    assert options(html, "currency") == ["", "EUR", "USD"]
    assert options(html, "status") == ["", "Packing", "Shipped", "Unfulfilled"]


@pytest.mark.parametrize("asked", ["usd", "USD", "Usd", " usd "])
def test_currency_matches_whatever_the_case(support_client: Any, pipeline: Pipeline, asked: str) -> None:
    order_in(pipeline, currency="USD", total=Decimal("10"))
    order_in(pipeline, "Paid", currency="USD", total=Decimal("5"))
    order_in(pipeline, currency="EUR")

    response = support_client.get(f"/boards/{pipeline.pk}/", {"currency": asked})
    board = response.context["board"]

    assert board.total == 2
    assert board.sums == {"USD": Decimal("15.0000")}
    assert [c.count for c in board.columns[:2]] == [1, 1]
    # The select shows the value the orders have, chosen.
    assert re.search(r'<option value="USD" selected>', response.content.decode())


def test_store_and_fulfillment_match_whatever_the_case_on_every_path(
    support_client: Any, pipeline: Pipeline
) -> None:
    for store in ("Portland", "PORTLAND", "portland"):
        order_in(pipeline, store=store, fulfillment_status="Packing")
    order_in(pipeline, store="Seattle", fulfillment_status="packing")

    # Counted from the maintained totals (filters they answer) …
    board = support_client.get(f"/boards/{pipeline.pk}/", {"store": "portland"}).context["board"]
    assert board.total == 3 and board.columns[0].count == 3
    # … and from the orders (with a filter the totals don't keep), alike.
    board = support_client.get(f"/boards/{pipeline.pk}/", {"status": "PACKING", "q": "Order"}).context[
        "board"
    ]
    assert board.total == 4
    # The table and the export filter the same way.
    table = support_client.get(f"/boards/{pipeline.pk}/table/", {"store": "pOrTlAnD"})
    assert table.context["total"] == 3
    export = support_client.get(f"/boards/{pipeline.pk}/export.csv", {"status": "packing"})
    assert len(b"".join(export.streaming_content).decode().strip().splitlines()) == 1 + 4


def test_a_value_no_order_has_finds_nothing_and_stays_shown(support_client: Any, pipeline: Pipeline) -> None:
    order_in(pipeline, store="Portland")
    response = support_client.get(f"/boards/{pipeline.pk}/", {"store": "Atlantis"})
    assert response.context["board"].total == 0
    assert '<option value="Atlantis" selected>Atlantis (no orders)</option>' in response.content.decode()


def test_the_form_without_a_list_takes_text_and_caps_it() -> None:
    form = BoardFilterForm({"store": " Portland ", "currency": "x" * 9})
    assert not form.is_valid() and "currency" in form.errors
    form = BoardFilterForm({"store": " Portland "}, choices={"store": ["PORTLAND"]})
    assert form.is_valid() and form.cleaned_data["store"] == "PORTLAND"
    form = BoardFilterForm({"store": "Port\x00land"}, choices={"store": []})
    assert not form.is_valid()


def test_the_query_is_the_filters_alone(support_client: Any, pipeline: Pipeline) -> None:
    response = support_client.get(
        f"/boards/{pipeline.pk}/",
        {"q": "", "store": "Portland", "status": "", "after": "x", "page": "3", "stale": "on"},
    )
    assert response.context["board"].query == "store=Portland&stale=on"


def test_filtering_without_a_reload_updates_what_outside_the_board_depends_on(
    support_client: Any, pipeline: Pipeline
) -> None:
    for _ in range(3):
        order_in(pipeline, store="Portland")
    for _ in range(4):
        order_in(pipeline, store="Seattle")

    response = support_client.get(
        f"/boards/{pipeline.pk}/",
        {"q": "", "store": "portland", "currency": ""},
        headers={**HTMX, "HX-Target": "board-body", "HX-Trigger": "board-filters"},
    )
    html = response.content.decode()

    assert html.lstrip().startswith('<div id="board-body"')
    assert 'data-filters="store=Portland"' in html
    # The bulk bar's "all N matching", the view links and the saved views follow, out of band.
    assert re.search(r'<span id="matching-count" hx-swap-oob="true">3</span>', html)
    assert re.search(r'<nav id="view-switch"[^>]*hx-swap-oob="true"', html)
    assert f'/boards/{pipeline.pk}/table/?store=Portland"' in html
    assert re.search(r'<div id="saved-views"[^>]*hx-swap-oob="true"', html)
    # The address bar shows the filters (the back button and a shared link give this board).
    assert response["HX-Push-Url"] == f"/boards/{pipeline.pk}/?store=Portland"


def test_a_saved_view_keeps_only_the_filters(
    support_client: Any, support_user: Any, pipeline: Pipeline
) -> None:
    response = support_client.post(
        f"/boards/{pipeline.pk}/views/", {"name": "Portland", "query": "q=&store=Portland&page=2&bogus=1"}
    )
    assert SavedView.objects.get(user=support_user).query == "store=Portland"
    assert response["Location"] == f"/boards/{pipeline.pk}/?store=Portland"


class TestLivePoll:
    def poll(self, client: Any, pipeline: Pipeline, version: str, **filters: str) -> Any:
        return client.get(f"/boards/{pipeline.pk}/version/", {"v": version, **filters}, headers=HTMX)

    def test_only_the_changed_cards_come_with_every_header(
        self, support_client: Any, pipeline: Pipeline
    ) -> None:
        quiet = [order_in(pipeline) for _ in range(3)]
        changed = order_in(pipeline)
        # The quiet ones were written long enough before the page's version that the poll's look-back
        # doesn't reach them.
        Order.objects.update(updated_at=timezone.now() - timedelta(minutes=5))
        Order.objects.filter(pk=changed.pk).update(updated_at=timezone.now() - timedelta(minutes=1))
        version = boards.version(pipeline)

        paid = pipeline.stages.get(label="Paid")
        changed.stage = paid
        changed.save()
        response = self.poll(support_client, pipeline, version)
        html = response.content.decode()

        cards = re.findall(r'<li class="card-item[^"]*" id="order-(\d+)"[^>]*data-stage="(\d+)"', html)
        assert cards == [(changed.hubspot_id, str(paid.pk))]
        assert not any(o.hubspot_id in html for o in quiet)
        for stage in pipeline.stages.all():
            assert f'id="column-header-{stage.pk}" hx-swap-oob="true"' in html
        assert re.search(rf'id="column-header-{paid.pk}" hx-swap-oob="true">.*?data-count="1"', html, re.S)
        # The poll element comes back with the new version, so the next poll asks from there.
        new_version = boards.version(pipeline)
        assert f'data-version="{new_version}"' in html
        assert self.poll(support_client, pipeline, new_version).status_code == 204

    def test_cards_that_left_the_board_under_its_filters_are_named(
        self, support_client: Any, pipeline: Pipeline
    ) -> None:
        leaving = order_in(pipeline, store="Portland")
        archived = order_in(pipeline, store="Portland")
        Order.objects.update(updated_at=timezone.now() - timedelta(minutes=5))
        version = boards.version(pipeline)
        leaving.store = "Seattle"
        leaving.save()
        archived.archived = True
        archived.save()

        html = self.poll(support_client, pipeline, version, store="Portland").content.decode()

        gone = re.search(r'data-gone="([^"]*)"', html)
        assert gone and set(gone.group(1).split()) == {leaving.hubspot_id, archived.hubspot_id}
        assert f'id="order-{leaving.hubspot_id}"' not in html

    def test_a_board_far_behind_catches_up_a_poll_at_a_time(
        self, support_client: Any, pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(boards, "CHANGES_PER_POLL", 5)
        start = timezone.now() - timedelta(hours=1)
        version = boards.version(pipeline)
        orders = [order_in(pipeline) for _ in range(12)]
        for n, order in enumerate(orders):
            Order.objects.filter(pk=order.pk).update(updated_at=start + timedelta(seconds=n * 60))

        seen: set[str] = set()
        for _ in range(5):
            response = self.poll(support_client, pipeline, version)
            if response.status_code == 204:
                break
            html = response.content.decode()
            seen |= set(re.findall(r'<li class="card-item[^"]*" id="order-(\d+)"', html))
            version = unescape(re.search(r'data-version="([^"]*)"', html).group(1))  # type: ignore[union-attr]
        assert seen == {o.hubspot_id for o in orders}
        assert response.status_code == 204

    def test_a_version_this_app_did_not_make_is_no_error(
        self, support_client: Any, pipeline: Pipeline
    ) -> None:
        order_in(pipeline)
        for version in ("", "abc", "x|y", "9999-99-99|0", "|||"):
            assert self.poll(support_client, pipeline, version).status_code in (200, 204)


def test_the_board_has_no_inline_handlers_and_isolates_hubspot_text(
    support_client: Any, pipeline: Pipeline
) -> None:
    order_in(pipeline, name="\u202egnp.exe\u202c Invoice", customer_name="W" * 250)
    factories.pipeline_with_stages(label="Second")
    html = support_client.get(f"/boards/{pipeline.pk}/").content.decode()
    assert not re.search(r"\son[a-z]+=", html)
    assert "hx-on" not in html
    assert re.search(r"<bdi>\W?gnp\.exe\W? Invoice</bdi>", html)
    table = support_client.get(f"/boards/{pipeline.pk}/table/").content.decode()
    assert re.search(r"<bdi>\W?gnp\.exe\W? Invoice</bdi>", table)
    # The bulk dialog's Cancel is wired by the page's script, not an attribute.
    paid = pipeline.stages.get(label="Paid")
    order = Order.objects.get()
    confirm = support_client.post(
        f"/boards/{pipeline.pk}/bulk-move/",
        {"scope": "selected", "selected": [order.hubspot_id], "stage": paid.pk, "filters": ""},
        headers=HTMX,
    ).content.decode()
    assert "data-dismiss-bulk" in confirm and not re.search(r"\son[a-z]+=", confirm)
