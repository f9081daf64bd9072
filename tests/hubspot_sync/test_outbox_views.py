"""The sync-state component, a record's timeline, Retry / Discard / conflict choices, and the Sync page's
outbox with its bulk actions: htmx requests, permissions, CSRF."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from hubspot_sync.models import Change, ChangeKind, ChangeStatus, Resolution
from orders.models import Order
from pipelines.models import Pipeline, Stage
from tests import factories

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}


@pytest.fixture
def order(db: None) -> Order:
    return Order.objects.create(
        hubspot_id="30000000042",
        name="Blue mug",
        properties={"hs_order_name": "Blue mug", "hs_total_price": "10"},
    )


def change_for(order: Order, status: str, **fields: Any) -> Change:
    defaults: dict[str, Any] = {
        "kind": ChangeKind.UPDATE,
        "object_type": "orders",
        "object_id": order.hubspot_id,
        "base": {"hs_order_name": "Blue mug"},
        "new": {"hs_order_name": "Red mug"},
        "status": status,
    }
    defaults.update(fields)
    return Change.objects.create(**defaults)


def state_url(order: Order) -> str:
    return f"/sync/records/orders/{order.hubspot_id}/state/"


class TestComponent:
    def test_a_pending_change_polls_until_settled(self, support_client: Any, order: Order) -> None:
        change_for(order, ChangeStatus.PENDING)
        response = support_client.get(
            state_url(order), headers={**HTMX, "HX-Target": f"sync-orders-{order.hubspot_id}"}
        )
        html = response.content.decode()
        assert response.status_code == 200
        assert f'id="sync-orders-{order.hubspot_id}"' in html and 'data-sync-state="pending"' in html
        assert 'hx-trigger="every 1s"' in html and f'hx-get="{state_url(order)}?n=1"' in html
        assert "<html" not in html  # the partial alone

    def test_the_component_asks_less_often_the_longer_it_waits(
        self, support_client: Any, order: Order
    ) -> None:
        change_for(order, ChangeStatus.PENDING)
        paces = {}
        for asked in ("3", "12", "25", "400", "9999", "99999", "-1", "x", "٣"):
            html = support_client.get(state_url(order), {"n": asked}, headers=HTMX).content.decode()
            paces[asked] = html.split('hx-trigger="every ', 1)[1].split('"', 1)[0]
        assert paces == {
            "3": "1s",
            "12": "2s",
            "25": "5s",
            "400": "10s",
            "9999": "10s",
            "99999": "1s",  # not a count it sent: starts over
            "-1": "1s",
            "x": "1s",
            "٣": "1s",
        }
        html = support_client.get(state_url(order), {"n": "9999"}, headers=HTMX).content.decode()
        assert f'hx-get="{state_url(order)}?n=1000"' in html

    def test_an_applied_change_shows_in_hubspot_and_stops_polling(
        self, support_client: Any, order: Order
    ) -> None:
        from django.utils import timezone

        change_for(order, ChangeStatus.APPLIED, applied_at=timezone.now())
        html = support_client.get(state_url(order), headers=HTMX).content.decode()
        assert 'data-sync-state="pushed"' in html and "In HubSpot" in html
        assert "hx-trigger" not in html

    def test_a_failed_change_shows_hubspots_message_with_retry_and_discard(
        self, support_client: Any, order: Order
    ) -> None:
        change = change_for(
            order,
            ChangeStatus.FAILED,
            new={"hs_total_price": "abc"},
            error="HubSpot refused this change: abc was not a valid number",
            response={"category": "VALIDATION_ERROR", "message": "abc was not a valid number"},
        )
        html = support_client.get(state_url(order), headers=HTMX).content.decode()
        assert 'data-sync-state="failed"' in html and "hx-trigger" not in html
        assert "abc was not a valid number" in html
        assert f"/sync/changes/{change.pk}/retry/" in html and f"/sync/changes/{change.pk}/discard/" in html
        assert 'name="prop_hs_total_price" value="abc"' in html  # the value can be corrected before Retry
        assert "Keep mine" not in html

    def test_a_conflict_offers_keep_mine_and_take_hubspots(self, support_client: Any, order: Order) -> None:
        change = change_for(
            order, ChangeStatus.CONFLICT, remote={"hs_order_name": "Green mug"}, error="Someone changed this"
        )
        html = support_client.get(state_url(order), headers=HTMX).content.decode()
        assert 'data-sync-state="conflict"' in html
        assert (
            f"/sync/changes/{change.pk}/keep-mine/" in html
            and f"/sync/changes/{change.pk}/take-hubspot/" in html
        )
        assert "Keep mine" in html and "Take HubSpot" in html

    def test_a_change_waiting_for_a_refused_create_is_held_back_with_discard(
        self, support_client: Any, order: Order
    ) -> None:
        Change.objects.create(
            kind=ChangeKind.STAGE_CREATE,
            object_type="stages",
            object_id="tmp-0123456789abcdef",
            new={"label": "Packed"},
            status=ChangeStatus.FAILED,
            error="HubSpot refused this change: label taken",
        )
        move = change_for(
            order,
            ChangeStatus.PENDING,
            new={"hs_pipeline_stage": "tmp-0123456789abcdef"},
            waits_for="tmp-0123456789abcdef",
        )
        html = support_client.get(state_url(order), headers=HTMX).content.decode()
        assert 'data-sync-state="failed"' in html and "hx-trigger" not in html
        assert "Held back" in html and "label taken" in html
        assert f"/sync/changes/{move.pk}/discard/" in html and f"/sync/changes/{move.pk}/retry/" not in html

    def test_an_unknown_type_is_404(self, support_client: Any) -> None:
        assert support_client.get("/sync/records/widgets/1/state/", headers=HTMX).status_code == 404

    def test_needs_the_support_group(self, client: Any, order: Order) -> None:
        client.force_login(factories.UserFactory())
        assert client.get(state_url(order), headers=HTMX).status_code == 403

    def test_the_template_tag_path_renders_for_a_page(self, order: Order, rf: Any) -> None:
        from hubspot_sync.templatetags.hubspot_sync import render_sync_state

        change_for(order, ChangeStatus.CONFLICT, remote={"hs_order_name": "Green"})
        request = rf.get("/boards/")
        request.user = factories.support_user()
        html = render_sync_state(order, request=request)
        assert 'data-sync-state="conflict"' in html and "Keep mine" in html
        other = Order.objects.create(hubspot_id="30000000043", properties={})
        assert 'data-sync-state="settled"' in render_sync_state(other, request=request)


class TestTimeline:
    def test_lists_every_change_newest_first_with_who_and_outcome(
        self, support_client: Any, order: Order
    ) -> None:
        user = factories.support_user(first_name="Ada", last_name="Byron")
        change_for(order, ChangeStatus.APPLIED, created_by=user, created_by_name="Ada Byron")
        change_for(
            order,
            ChangeStatus.DISCARDED,
            new={"hs_order_name": "Teal mug"},
            resolution=Resolution.TOOK_HUBSPOT,
            remote={"hs_order_name": "Green mug"},
        )
        response = support_client.get(f"/sync/records/orders/{order.hubspot_id}/")
        html = response.content.decode()
        assert response.status_code == 200 and "<html" in html
        assert html.index("Teal mug") < html.index("Red mug")
        assert "Ada Byron" in html and "Took HubSpot" in html and "Green mug" in html

    def test_the_page_offers_the_actions_as_plain_forms(self, support_client: Any, order: Order) -> None:
        failed = change_for(order, ChangeStatus.FAILED, new={"hs_total_price": "abc"})
        html = support_client.get(f"/sync/records/orders/{order.hubspot_id}/").content.decode()
        assert f'<form method="post" action="/sync/changes/{failed.pk}/retry/">' in html
        assert f'<form method="post" action="/sync/changes/{failed.pk}/discard/">' in html
        assert "csrfmiddlewaretoken" in html

    def test_htmx_gets_the_list_alone(self, support_client: Any, order: Order) -> None:
        change_for(order, ChangeStatus.APPLIED)
        html = support_client.get(f"/sync/records/orders/{order.hubspot_id}/", headers=HTMX).content.decode()
        assert f'id="changes-orders-{order.hubspot_id}"' in html and "<html" not in html


class TestActions:
    def test_retry_with_a_corrected_value(self, support_client: Any, order: Order, monkeypatch: Any) -> None:
        change = change_for(order, ChangeStatus.FAILED, new={"hs_total_price": "abc"}, error="refused")

        response = support_client.post(
            f"/sync/changes/{change.pk}/retry/", {"prop_hs_total_price": "12.5"}, headers=HTMX
        )

        assert response.status_code == 200
        change.refresh_from_db()
        assert change.status == ChangeStatus.PENDING and change.new == {"hs_total_price": "12.5"}
        order.refresh_from_db()
        assert order.properties["hs_total_price"] == "12.5"
        html = response.content.decode()
        assert 'data-sync-state="pending"' in html and "Sent to HubSpot again." in html
        trigger = json.loads(response["HX-Trigger"])
        assert trigger["recordSynced"] == {"object_type": "orders", "object_id": order.hubspot_id}

    def test_discard_restores_the_base_value(self, support_client: Any, order: Order) -> None:
        order.properties["hs_order_name"] = "Red mug"
        order.save()
        change = change_for(order, ChangeStatus.CONFLICT, remote={"hs_order_name": "Green mug"})

        response = support_client.post(f"/sync/changes/{change.pk}/discard/", headers=HTMX)

        assert response.status_code == 200
        change.refresh_from_db()
        assert change.status == ChangeStatus.DISCARDED and change.resolution == Resolution.DISCARDED
        order.refresh_from_db()
        assert order.name == "Green mug"  # what HubSpot had when the conflict was found

    def test_keep_mine_sends_it_again_with_force(self, support_client: Any, order: Order) -> None:
        change = change_for(order, ChangeStatus.CONFLICT, remote={"hs_order_name": "Green mug"})
        support_client.post(f"/sync/changes/{change.pk}/keep-mine/", headers=HTMX)
        change.refresh_from_db()
        assert (
            change.status == ChangeStatus.PENDING
            and change.force
            and change.resolution == Resolution.KEPT_MINE
        )

    def test_an_action_that_no_longer_applies_says_so(self, support_client: Any, order: Order) -> None:
        change = change_for(order, ChangeStatus.APPLIED)
        response = support_client.post(f"/sync/changes/{change.pk}/discard/", headers=HTMX)
        assert response.status_code == 200 and "in hubspot now" in response.content.decode().lower()
        assert Change.objects.get(pk=change.pk).status == ChangeStatus.APPLIED

    def test_without_htmx_it_redirects_to_the_timeline(self, support_client: Any, order: Order) -> None:
        change = change_for(order, ChangeStatus.FAILED)
        response = support_client.post(f"/sync/changes/{change.pk}/retry/")
        assert response.status_code == 302
        assert response["Location"] == f"/sync/records/orders/{order.hubspot_id}/"

    def test_get_is_refused_and_unknown_actions_are_404(self, support_client: Any, order: Order) -> None:
        change = change_for(order, ChangeStatus.FAILED)
        assert support_client.get(f"/sync/changes/{change.pk}/retry/").status_code == 405
        assert support_client.post(f"/sync/changes/{change.pk}/explode/").status_code == 404

    def test_needs_the_support_group(self, client: Any, order: Order) -> None:
        change = change_for(order, ChangeStatus.FAILED)
        client.force_login(factories.UserFactory())
        assert client.post(f"/sync/changes/{change.pk}/discard/", headers=HTMX).status_code == 403
        assert Change.objects.get(pk=change.pk).status == ChangeStatus.FAILED

    def test_needs_the_csrf_token(self, order: Order) -> None:
        change = change_for(order, ChangeStatus.FAILED)
        strict = Client(enforce_csrf_checks=True)
        strict.force_login(factories.support_user())
        assert strict.post(f"/sync/changes/{change.pk}/discard/", headers=HTMX).status_code == 403
        assert Change.objects.get(pk=change.pk).status == ChangeStatus.FAILED

    def test_pipeline_changes_need_the_pipeline_admin_group(self, support_client: Any, client: Any) -> None:
        pipeline = Pipeline.objects.create(hubspot_id="p1", label="Main")
        stage = Stage.objects.create(pipeline=pipeline, hubspot_id="s1", label="Open", archived=True)
        change = Change.objects.create(
            kind=ChangeKind.STAGE_DELETE,
            object_type="stages",
            object_id=stage.hubspot_id,
            parent_id="p1",
            base={"archived": False},
            new={"archived": True},
            status=ChangeStatus.FAILED,
        )
        assert support_client.post(f"/sync/changes/{change.pk}/discard/", headers=HTMX).status_code == 403
        client.force_login(factories.pipeline_admin())
        assert client.post(f"/sync/changes/{change.pk}/discard/", headers=HTMX).status_code == 200
        stage.refresh_from_db()
        assert not stage.archived


class TestOutbox:
    def test_the_sync_page_lists_pending_failed_and_conflicting_changes(
        self, support_client: Any, order: Order
    ) -> None:
        change_for(order, ChangeStatus.PENDING)
        failed = change_for(order, ChangeStatus.FAILED, error="HubSpot refused this change: nope")
        conflict = change_for(order, ChangeStatus.CONFLICT, error="Someone changed this")
        change_for(order, ChangeStatus.APPLIED, new={"hs_order_name": "Applied mug"})

        html = support_client.get("/sync/").content.decode()

        assert 'id="outbox"' in html
        assert "1 on the way" in html and "1 failed" in html and "1 in conflict" in html
        assert f'value="{failed.pk}"' in html and f'value="{conflict.pk}"' in html
        assert "HubSpot refused this change: nope" in html
        assert "Applied mug" not in html
        assert html.index(f"outbox-change-{conflict.pk}") < html.index(f"outbox-change-{failed.pk}")

    def test_the_counts_poll_while_changes_are_on_their_way(self, support_client: Any, order: Order) -> None:
        change_for(order, ChangeStatus.PENDING)
        html = support_client.get("/sync/outbox/", headers=HTMX).content.decode()
        assert 'id="outbox-counts"' in html and 'hx-trigger="every 2s"' in html

    def test_bulk_retry_and_discard(self, support_client: Any, order: Order) -> None:
        first = change_for(order, ChangeStatus.FAILED)
        second = change_for(order, ChangeStatus.CONFLICT, remote={"hs_order_name": "Green mug"})
        third = change_for(order, ChangeStatus.FAILED, new={"hs_total_price": "x"})

        response = support_client.post(
            "/sync/outbox/bulk/", {"action": "retry", "change": [first.pk, second.pk]}, headers=HTMX
        )
        assert response.status_code == 200 and "2 changes sent again." in response.content.decode()
        assert {Change.objects.get(pk=c.pk).status for c in (first, second)} == {ChangeStatus.PENDING}

        response = support_client.post("/sync/outbox/bulk/", {"action": "discard", "change": [third.pk]})
        assert response.status_code == 302 and response["Location"] == "/sync/"
        assert Change.objects.get(pk=third.pk).status == ChangeStatus.DISCARDED

    def test_bulk_without_a_pick_says_so(self, support_client: Any, order: Order) -> None:
        response = support_client.post("/sync/outbox/bulk/", {"action": "retry"}, headers=HTMX)
        assert response.status_code == 200 and "Pick at least one change." in response.content.decode()

    def test_bulk_needs_the_group_and_the_csrf_token(self, client: Any, order: Order) -> None:
        change = change_for(order, ChangeStatus.FAILED)
        client.force_login(factories.UserFactory())
        assert (
            client.post("/sync/outbox/bulk/", {"action": "discard", "change": [change.pk]}).status_code == 403
        )
        strict = Client(enforce_csrf_checks=True)
        strict.force_login(factories.support_user())
        assert (
            strict.post("/sync/outbox/bulk/", {"action": "discard", "change": [change.pk]}).status_code == 403
        )
        assert Change.objects.get(pk=change.pk).status == ChangeStatus.FAILED
