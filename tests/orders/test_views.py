"""Board views: every partial, and every bad input answered clearly with nothing changed."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta
from decimal import Decimal
from html import unescape
from typing import Any
from urllib.parse import unquote

import pytest
from django.utils import timezone

from hubspot_sync.models import PropertyDefinition
from orders.models import Order, SavedView
from pipelines.models import Pipeline, Stage
from tests import factories

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}


@pytest.fixture
def pipeline() -> Pipeline:
    return factories.pipeline_with_stages(label="Online orders")


def stage(pipeline: Pipeline, label: str) -> Stage:
    return pipeline.stages.get(label=label)


def order_in(pipeline: Pipeline, label: str, **kwargs: Any) -> Order:
    return factories.OrderFactory(stage=stage(pipeline, label), **kwargs)


class TestBoard:
    def test_columns_in_display_order_with_exact_counts_and_sums_per_currency(
        self, support_client: Any, pipeline: Pipeline
    ) -> None:
        order_in(pipeline, "Open", total=Decimal("10.00"), currency="EUR")
        order_in(pipeline, "Open", total=Decimal("5.50"), currency="EUR")
        order_in(pipeline, "Open", total=Decimal("7.00"), currency="USD")
        order_in(pipeline, "Shipped", total=Decimal("1.00"), currency="EUR")

        response = support_client.get(f"/boards/{pipeline.pk}/")
        board = response.context["board"]

        assert [c.stage.label for c in board.columns] == ["Open", "Paid", "Shipped", "Delivered", "Cancelled"]
        open_column = board.columns[0]
        assert open_column.count == 3
        assert open_column.sums == {"EUR": Decimal("15.50"), "USD": Decimal("7.00")}
        assert board.total == 4
        html = response.content.decode()
        assert "15.50 EUR" in html and "7.00 USD" in html
        assert html.count('class="pill pill-closed"') == 2  # Delivered and Cancelled are told apart

    def test_a_column_pages_beyond_the_first_25_cards_with_an_exact_count(
        self, support_client: Any, pipeline: Pipeline
    ) -> None:
        for _ in range(60):
            order_in(pipeline, "Paid")
        board = support_client.get(f"/boards/{pipeline.pk}/").context["board"]
        paid = board.columns[1]
        assert paid.count == 60 and len(paid.cards) == 25 and paid.next_cursor

        seen = {o.hubspot_id for o in paid.cards}
        cursor = paid.next_cursor
        while cursor:
            response = support_client.get(
                f"/boards/{pipeline.pk}/columns/{paid.stage.pk}/", {"after": cursor}, headers=HTMX
            )
            html = response.content.decode()
            assert "<html" not in html
            cards = set(re.findall(r'<li class="card-item[^"]*" id="order-(\d+)"', html))
            assert cards and not seen & cards
            seen |= cards
            more = re.search(r'after=([^"&]+)"', html)
            cursor = unquote(more.group(1)) if more else None
        assert len(seen) == 60

    def test_filters_narrow_counts_cards_and_sums_alike(
        self, support_client: Any, pipeline: Pipeline
    ) -> None:
        order_in(pipeline, "Open", name="Camping supplies", store="Portland", total=Decimal("100"))
        order_in(pipeline, "Open", name="Kayak", store="Seattle", total=Decimal("900"))
        order_in(pipeline, "Paid", customer_email="jo@example.org", store="Portland", total=Decimal("3"))

        board = support_client.get(f"/boards/{pipeline.pk}/", {"store": "Portland"}).context["board"]
        assert board.total == 2 and board.columns[0].count == 1
        assert board.columns[0].sums == {"EUR": Decimal("100.0000")}
        board = support_client.get(f"/boards/{pipeline.pk}/", {"q": "jo@example"}).context["board"]
        assert board.total == 1 and board.columns[1].count == 1
        board = support_client.get(f"/boards/{pipeline.pk}/", {"q": "camping"}).context["board"]
        assert [o.name for o in board.columns[0].cards] == ["Camping supplies"]

    def test_stale_filter_and_mark(self, support_client: Any, pipeline: Pipeline) -> None:
        pipeline.stale_after_days = 3
        pipeline.save()
        old = order_in(pipeline, "Open", stage_entered_at=timezone.now() - timedelta(days=5))
        order_in(pipeline, "Open")
        response = support_client.get(f"/boards/{pipeline.pk}/", {"stale": "on"})
        assert [o.pk for o in response.context["board"].columns[0].cards] == [old.pk]
        assert "5 days · stale" in response.content.decode()

    def test_an_htmx_filter_request_renders_only_the_board_body(
        self, support_client: Any, pipeline: Pipeline
    ) -> None:
        order_in(pipeline, "Open")
        response = support_client.get(
            f"/boards/{pipeline.pk}/", {"q": "Order"}, headers={**HTMX, "HX-Target": "board-body"}
        )
        html = response.content.decode()
        assert html.lstrip().startswith('<div id="board-body"')
        assert "<html" not in html

    def test_invalid_filters_say_so_and_show_no_orders(self, support_client: Any, pipeline: Pipeline) -> None:
        # Not every order: a bulk move of "all matching" must not reach them all.
        order_in(pipeline, "Open")
        response = support_client.get(
            f"/boards/{pipeline.pk}/", {"created_from": "2026-05-01", "created_to": "2026-01-01"}
        )
        assert "is after" in response.content.decode()
        assert response.context["board"].total == 0

    def test_hostile_order_names_render_as_text(self, support_client: Any, pipeline: Pipeline) -> None:
        order_in(pipeline, "Open", name='<script>alert("x")</script><img src=x onerror=alert(1)>')
        html = support_client.get(f"/boards/{pipeline.pk}/").content.decode()
        assert "<script>alert" not in html and "<img src=x" not in html
        assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html

    def test_the_board_needs_the_support_group(self, client: Any, pipeline: Pipeline) -> None:
        client.force_login(factories.UserFactory())
        assert client.get(f"/boards/{pipeline.pk}/").status_code == 403

    def test_boards_home_opens_the_first_pipeline(self, support_client: Any, pipeline: Pipeline) -> None:
        assert support_client.get("/boards/")["Location"] == f"/boards/{pipeline.pk}/"


class TestLive:
    def test_nothing_changed_is_204_and_a_change_sends_the_changed_card(
        self, support_client: Any, pipeline: Pipeline
    ) -> None:
        order = order_in(pipeline, "Open")
        version = support_client.get(f"/boards/{pipeline.pk}/").context["version"]
        url = f"/boards/{pipeline.pk}/version/"
        assert support_client.get(url, {"v": version}, headers=HTMX).status_code == 204

        order.name = "Changed by a sync"
        order.save()
        response = support_client.get(url, {"v": version}, headers=HTMX)
        assert response.status_code == 200
        html = response.content.decode()
        assert f'id="order-{order.hubspot_id}"' in html and "Changed by a sync" in html


class TestMove:
    def post_move(self, client: Any, order: Order, target: Stage | int, **extra: Any) -> Any:
        data = {
            "stage": target if isinstance(target, int) else target.pk,
            "from_stage": order.stage_id,
            "filters": "",
            **extra,
        }
        return client.post(f"/boards/orders/{order.hubspot_id}/move/", data, headers=HTMX)

    def test_a_move_shows_at_once_with_new_counts_and_is_recorded_for_hubspot(
        self, support_client: Any, pipeline: Pipeline
    ) -> None:
        order = order_in(pipeline, "Open")
        paid = stage(pipeline, "Paid")
        response = self.post_move(support_client, order, paid)

        order.refresh_from_db()
        assert order.stage == paid
        assert order.properties["hs_pipeline_stage"] == paid.hubspot_id
        html = response.content.decode()
        assert f'id="order-{order.hubspot_id}"' in html
        assert f'id="column-header-{paid.pk}" hx-swap-oob="true"' in html  # counts follow
        assert "orderMoved" in response["HX-Trigger-After-Swap"]
        from hubspot_sync.models import Change

        change = Change.objects.get()
        assert change.new["hs_pipeline_stage"] == paid.hubspot_id

    @pytest.mark.parametrize("case", ["unknown-stage", "other-pipeline", "stale-form"])
    def test_bad_moves_are_refused_with_a_clear_reason_and_nothing_changes(
        self, support_client: Any, pipeline: Pipeline, case: str
    ) -> None:
        order = order_in(pipeline, "Open")
        if case == "unknown-stage":
            response = self.post_move(support_client, order, 999_999)
            reason = "doesn't exist"
        elif case == "other-pipeline":
            other = factories.pipeline_with_stages(label="Returns")
            response = self.post_move(support_client, order, other.stages.first())
            reason = "another pipeline"
        else:
            order_in(pipeline, "Paid")
            response = self.post_move(
                support_client, order, stage(pipeline, "Shipped"), from_stage=stage(pipeline, "Paid").pk
            )
            reason = "moved this order"
        assert reason in unescape(response.content.decode())
        assert "moveRefused" in response["HX-Trigger-After-Swap"]
        order.refresh_from_db()
        assert order.stage == stage(pipeline, "Open")
        from hubspot_sync.models import Change

        assert not Change.objects.exists()

    def test_a_required_value_opens_a_prompt_and_the_move_happens_only_with_it(
        self, support_client: Any, pipeline: Pipeline
    ) -> None:
        shipped = stage(pipeline, "Shipped")
        shipped.required_properties = ["hs_shipping_tracking_number"]
        shipped.save()
        PropertyDefinition.objects.create(
            object_type="orders",
            name="hs_shipping_tracking_number",
            label="Tracking number",
            type="string",
            field_type="text",
        )
        order = order_in(pipeline, "Open")

        prompt = self.post_move(support_client, order, shipped)
        html = prompt.content.decode()
        assert "Tracking number" in html and 'name="prop_hs_shipping_tracking_number"' in html
        order.refresh_from_db()
        assert order.stage == stage(pipeline, "Open")

        done = self.post_move(support_client, order, shipped, prop_hs_shipping_tracking_number="1Z999")
        assert "orderMoved" in done["HX-Trigger-After-Swap"]
        order.refresh_from_db()
        assert order.stage == shipped and order.properties["hs_shipping_tracking_number"] == "1Z999"

    def test_pipeline_rules_no_skipping_and_no_moving_back(
        self, support_client: Any, pipeline: Pipeline
    ) -> None:
        pipeline.allow_skipping = False
        pipeline.allow_moving_back = False
        pipeline.save()
        order = order_in(pipeline, "Open")
        skipped = self.post_move(support_client, order, stage(pipeline, "Shipped"))
        assert "doesn't allow skipping stages: move through “Paid” first" in unescape(
            skipped.content.decode()
        )
        order.refresh_from_db()
        assert order.stage == stage(pipeline, "Open")
        # The next open stage is fine.
        assert (
            "orderMoved"
            in self.post_move(support_client, order, stage(pipeline, "Paid"))["HX-Trigger-After-Swap"]
        )
        order.refresh_from_db()
        back = self.post_move(support_client, order, stage(pipeline, "Open"))
        assert "doesn't allow moving orders back" in unescape(back.content.decode())
        # A closed stage (Cancelled) can be reached from anywhere.
        moved = self.post_move(support_client, order, stage(pipeline, "Cancelled"))
        assert "orderMoved" in moved["HX-Trigger-After-Swap"]

    def test_a_plain_form_post_redirects_back_to_the_board(
        self, support_client: Any, pipeline: Pipeline
    ) -> None:
        order = order_in(pipeline, "Open")
        response = support_client.post(
            f"/boards/orders/{order.hubspot_id}/move/",
            {
                "stage": stage(pipeline, "Paid").pk,
                "from_stage": order.stage_id,
                "filters": "store=Main+store",
            },
        )
        assert response.status_code == 302
        assert response["Location"] == f"/boards/{pipeline.pk}/?store=Main+store"

    def test_moving_needs_the_support_group_and_csrf(self, client: Any, pipeline: Pipeline) -> None:
        order = order_in(pipeline, "Open")
        client.force_login(factories.UserFactory())
        assert self.post_move(client, order, stage(pipeline, "Paid")).status_code == 403
        from django.test import Client

        strict = Client(enforce_csrf_checks=True)
        strict.force_login(factories.support_user())
        assert self.post_move(strict, order, stage(pipeline, "Paid")).status_code == 403
        order.refresh_from_db()
        assert order.stage == stage(pipeline, "Open")


class TestTableExportAndViews:
    def test_table_pages_the_same_filtered_orders(self, support_client: Any, pipeline: Pipeline) -> None:
        for _ in range(55):
            order_in(pipeline, "Open", store="Portland")
        order_in(pipeline, "Open", store="Seattle")
        response = support_client.get(f"/boards/{pipeline.pk}/table/", {"store": "Portland"})
        assert response.context["total"] == 55 and len(response.context["rows"]) == 50
        assert response.context["has_next"]
        second = support_client.get(f"/boards/{pipeline.pk}/table/", {"store": "Portland", "page": "2"})
        assert len(second.context["rows"]) == 5 and not second.context["has_next"]

    def test_csv_export_has_every_filtered_order_and_no_formulas(
        self, support_client: Any, pipeline: Pipeline
    ) -> None:
        for _ in range(30):
            order_in(pipeline, "Open", store="Portland")
        order_in(pipeline, "Paid", store="Portland", name='=HYPERLINK("http://evil")')
        order_in(pipeline, "Open", store="Seattle")
        response = support_client.get(f"/boards/{pipeline.pk}/export.csv", {"store": "Portland"})
        rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
        assert rows[0][0] == "HubSpot ID" and len(rows) == 1 + 31
        assert any(r[1].startswith("'=HYPERLINK") for r in rows[1:])

    def test_saved_views_are_per_user(
        self, support_client: Any, support_user: Any, pipeline: Pipeline
    ) -> None:
        response = support_client.post(
            f"/boards/{pipeline.pk}/views/", {"name": "Portland", "query": "store=Portland"}
        )
        assert response["Location"] == f"/boards/{pipeline.pk}/?store=Portland"
        view = SavedView.objects.get()
        assert view.user == support_user
        html = support_client.get(f"/boards/{pipeline.pk}/").content.decode()
        assert ">Portland</a>" in html

        other = factories.support_user()
        from django.test import Client

        c = Client()
        c.force_login(other)
        assert ">Portland</a>" not in c.get(f"/boards/{pipeline.pk}/").content.decode()
        assert c.post(f"/boards/{pipeline.pk}/views/{view.pk}/delete/").status_code == 404
        assert SavedView.objects.exists()
