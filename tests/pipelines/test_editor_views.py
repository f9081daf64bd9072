"""The pipeline editor's views: who may see and edit, what each form takes, refusals shown in the page,
and the partials htmx gets back."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from config.permissions import PIPELINE_ADMIN
from hubspot_sync.models import Change, ChangeKind, ChangeStatus, PropertyDefinition
from orders.models import Order
from pipelines.models import Pipeline, Stage
from tests import factories

pytestmark = pytest.mark.django_db

HX = {"HX-Request": "true"}


@pytest.fixture
def pipeline() -> Pipeline:
    return factories.pipeline_with_stages(label="Online orders", hubspot_id="111")


@pytest.fixture
def stages(pipeline: Pipeline) -> list[Stage]:
    return list(pipeline.stages.order_by("display_order"))


@pytest.fixture
def properties() -> None:
    for name, label, read_only in (
        ("hs_shipping_tracking_number", "Tracking number", False),
        ("hs_external_order_status", "External status", False),
        ("hs_total_price", "Total", False),
        ("hs_object_id", "Record ID", True),
        ("hs_pipeline_stage", "Stage", False),
    ):
        PropertyDefinition.objects.create(
            object_type="orders",
            name=name,
            label=label,
            type="string",
            field_type="text",
            read_only_value=read_only,
        )


@pytest.fixture
def editor(client: Client) -> Client:
    client.force_login(factories.pipeline_admin())
    return client


def hx_trigger(response: Any) -> dict[str, Any]:
    raw = response.headers.get("HX-Trigger-After-Settle") or response.headers.get("HX-Trigger") or "{}"
    return json.loads(raw)


def labels(pipeline: Pipeline) -> list[str]:
    return list(
        pipeline.stages.filter(archived=False).order_by("display_order").values_list("label", flat=True)
    )


# --- who sees what ------------------------------------------------------------------------------------------


def edit_requests(pipeline: Pipeline, stage: Stage) -> list[tuple[str, str, dict[str, Any]]]:
    """Every request that edits, with data that would go through for a Pipeline admin."""
    p, s = pipeline.pk, stage.pk
    return [
        ("get", reverse("pipelines:create"), {}),
        (
            "post",
            reverse("pipelines:create"),
            {"label": "New", "stage_label": ["A"], "stage_state": ["OPEN"]},
        ),
        ("post", reverse("pipelines:rename", args=[p]), {"label": "Renamed"}),
        ("post", reverse("pipelines:move", args=[p]), {"direction": "down"}),
        ("post", reverse("pipelines:settings", args=[p]), {"stale_after_days": "3"}),
        ("get", reverse("pipelines:archive", args=[p]), {}),
        ("post", reverse("pipelines:archive", args=[p]), {}),
        ("post", reverse("pipelines:stage-create", args=[p]), {"label": "Packed", "state": "OPEN"}),
        ("post", reverse("pipelines:stages-order", args=[p]), {"stage": [s]}),
        ("post", reverse("pipelines:stage-rename", args=[p, s]), {"label": "Renamed"}),
        ("post", reverse("pipelines:stage-state", args=[p, s]), {"state": "CLOSED"}),
        ("post", reverse("pipelines:stage-move", args=[p, s]), {"direction": "down"}),
        ("get", reverse("pipelines:stage-rules", args=[p, s]), {}),
        ("post", reverse("pipelines:stage-rules", args=[p, s]), {"required": []}),
        ("get", reverse("pipelines:stage-delete", args=[p, s]), {}),
        ("post", reverse("pipelines:stage-delete", args=[p, s]), {}),
    ]


class TestPermissions:
    def test_anonymous_callers_are_sent_to_sign_in(
        self, client: Client, pipeline: Pipeline, stages: list[Stage]
    ) -> None:
        response = client.get("/pipelines/")
        assert response.status_code == 302 and response["Location"].startswith("/login/")
        for method, url, data in edit_requests(pipeline, stages[0]):
            response = getattr(client, method)(url, data)
            assert response.status_code == 302 and response["Location"].startswith("/login/"), url

    def test_support_reads_the_page_and_is_refused_every_edit(
        self, support_client: Client, pipeline: Pipeline, stages: list[Stage]
    ) -> None:
        response = support_client.get("/pipelines/")
        assert response.status_code == 200
        html = response.content.decode()
        assert "Online orders" in html and "Paid" in html
        # Read only: no form, field or htmx edit, no link into the editor's dialogs.
        for marker in ("<form", "<input", "<select", "hx-post", "/stages/", "/archive/", "/pipelines/new/"):
            assert marker not in html.split('<main id="main"', 1)[1], marker
        assert "Read only" in html
        for method, url, data in edit_requests(pipeline, stages[0]):
            assert getattr(support_client, method)(url, data, headers=HX).status_code == 403, url
        assert labels(pipeline) == [s.label for s in stages]
        assert not Change.objects.exists()

    def test_a_user_in_no_group_is_refused(self, client: Client) -> None:
        client.force_login(factories.UserFactory())
        assert client.get("/pipelines/").status_code == 403

    def test_a_pipeline_admin_outside_support_edits_without_board_links(
        self, client: Client, pipeline: Pipeline
    ) -> None:
        client.force_login(factories.UserFactory(groups=[PIPELINE_ADMIN]))
        html = client.get("/pipelines/").content.decode()
        assert "hx-post" in html and "New pipeline" in html
        assert "Open the board" not in html and "/boards/" not in html

    def test_every_post_is_csrf_protected(self, pipeline: Pipeline, stages: list[Stage]) -> None:
        client = Client(enforce_csrf_checks=True)
        client.force_login(factories.pipeline_admin())
        for method, url, data in edit_requests(pipeline, stages[0]):
            if method == "post":
                assert client.post(url, data, headers=HX).status_code == 403, url
        assert labels(pipeline) == [s.label for s in stages]

    def test_the_sync_state_of_a_stage_is_shown_and_polled_for_a_pipeline_admin_alone(
        self, client: Client, pipeline: Pipeline, stages: list[Stage]
    ) -> None:
        client.force_login(factories.UserFactory(groups=[PIPELINE_ADMIN]))
        client.post(
            reverse("pipelines:stage-rename", args=[pipeline.pk, stages[0].pk]), {"label": "New"}, headers=HX
        )
        html = client.get("/pipelines/").content.decode()
        assert "Saving to HubSpot" in html
        state = reverse("hubspot:record-state", args=["stages", stages[0].hubspot_id])
        assert state in html
        assert client.get(state).status_code == 200
        # An order's sync state is still Support's.
        assert client.get(reverse("hubspot:record-state", args=["orders", "1"])).status_code == 403

    def test_support_sees_a_refused_stage_change_without_its_actions(
        self, support_client: Client, pipeline: Pipeline, stages: list[Stage]
    ) -> None:
        change = Change.objects.create(
            kind=ChangeKind.STAGE_UPDATE,
            object_type="stages",
            object_id=stages[1].hubspot_id,
            parent_id=pipeline.hubspot_id,
            base={"label": "Paid"},
            new={"label": "Settled"},
            status=ChangeStatus.FAILED,
            error="HubSpot: a stage with that label already exists.",
        )
        html = support_client.get("/pipelines/").content.decode()
        assert "a stage with that label already exists" in html
        assert reverse("hubspot:change-action", args=[change.pk, "retry"]) not in html
        assert (
            support_client.post(reverse("hubspot:change-action", args=[change.pk, "discard"])).status_code
            == 403
        )
        # Its history page shows it, without the forms either.
        history = support_client.get(reverse("hubspot:record-changes", args=["stages", stages[1].hubspot_id]))
        assert history.status_code == 200
        assert "a stage with that label already exists" in history.content.decode()
        assert reverse("hubspot:change-action", args=[change.pk, "retry"]) not in history.content.decode()

    def test_a_pipeline_admin_alone_opens_a_stage_history_and_resolves_its_change(
        self, client: Client, pipeline: Pipeline, stages: list[Stage]
    ) -> None:
        change = Change.objects.create(
            kind=ChangeKind.STAGE_UPDATE,
            object_type="stages",
            object_id=stages[1].hubspot_id,
            parent_id=pipeline.hubspot_id,
            base={"label": "Paid"},
            new={"label": "Settled"},
            status=ChangeStatus.FAILED,
            error="HubSpot: a stage with that label already exists.",
        )
        client.force_login(factories.UserFactory(groups=[PIPELINE_ADMIN]))
        html = client.get("/pipelines/").content.decode()
        history = reverse("hubspot:record-changes", args=["stages", stages[1].hubspot_id])
        discard = reverse("hubspot:change-action", args=[change.pk, "discard"])
        assert history in html and discard in html
        assert client.get(history).status_code == 200
        assert client.post(discard, headers=HX).status_code == 200
        change.refresh_from_db()
        assert change.status == ChangeStatus.DISCARDED


class TestPage:
    def test_pipelines_show_their_stages_in_order_with_states_and_counts(
        self, editor: Client, pipeline: Pipeline, stages: list[Stage]
    ) -> None:
        for _ in range(3):
            factories.OrderFactory(stage=stages[1])
        factories.OrderFactory(stage=stages[1], archived=True)
        response = editor.get("/pipelines/")
        html = response.content.decode()
        positions = [html.index(f'id="stage-{s.pk}"') for s in stages]
        assert positions == sorted(positions)
        paid = response.context["editors"][0].stages[1]
        assert paid.order_count == 3
        assert response.context["editors"][0].orders == 3
        closed = html.split(f'id="stage-state-{stages[3].pk}"', 1)[1].split("</select>", 1)[0]
        assert 'value="CLOSED" selected' in closed

    def test_hostile_names_are_escaped_and_shown_as_stored(self, editor: Client, pipeline: Pipeline) -> None:
        pipeline.label = '"><img src=x onerror=alert(1)>'
        pipeline.save()
        stage = pipeline.stages.first()
        assert stage is not None
        stage.label = "\u202egnp.exe\u202c Invoice <script>alert(1)</script>"
        stage.save()
        html = editor.get("/pipelines/").content.decode()
        assert "<img src=x" not in html and "<script>alert(1)" not in html
        assert "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;" in html
        # The override is left out of what is shown and what the field holds, so it reads "gnp.exe".
        assert "\u202e" not in html
        assert 'value="gnp.exe Invoice &lt;script&gt;alert(1)&lt;/script&gt;"' in html

    def test_the_page_needs_a_few_queries_whatever_the_number_of_stages(
        self, editor: Client, django_assert_max_num_queries: Any
    ) -> None:
        for n in range(3):
            factories.pipeline_with_stages(label=f"P{n}", labels=tuple(f"S{i}" for i in range(30)), closed=())
        with django_assert_max_num_queries(20):
            assert editor.get("/pipelines/").status_code == 200


# --- pipelines ----------------------------------------------------------------------------------------------


class TestCreate:
    url = "/pipelines/new/"

    def test_the_dialog(self, editor: Client) -> None:
        response = editor.get(self.url, headers=HX)
        html = response.content.decode()
        assert 'id="editor-dialog-title"' in html and "<html" not in html
        assert html.count('name="stage_label"') == 4  # three rows and the template's
        # Without htmx it is a page of its own.
        page = editor.get(self.url).content.decode()
        assert "<html" in page and "New pipeline" in page

    def test_a_pipeline_with_its_stages_in_order(self, editor: Client, pipeline: Pipeline) -> None:
        data = {
            "label": "Wholesale",
            "stage_label": ["Quoted", "", "Paid", "Shipped"],
            "stage_state": ["OPEN", "OPEN", "OPEN", "CLOSED"],
            # Not fields of the form: left alone.
            "hubspot_id": "999",
            "archived": "on",
            "display_order": "-5",
        }
        response = editor.post(self.url, data, headers=HX)
        assert response.status_code == 200
        created = Pipeline.objects.get(label="Wholesale")
        assert not created.archived and created.hubspot_id != "999" and created.display_order >= 0
        assert [(s.label, s.state) for s in created.stages.order_by("display_order")] == [
            ("Quoted", "OPEN"),
            ("Paid", "OPEN"),
            ("Shipped", "CLOSED"),
        ]
        assert f'id="pipeline-{created.pk}"' in response.content.decode()
        event = hx_trigger(response)["editorDone"]
        assert event["close"] and event["focus"] == f"pipeline-label-{created.pk}"
        assert Change.objects.filter(kind=ChangeKind.PIPELINE_CREATE).count() == 1

    @pytest.mark.parametrize(
        ("data", "message"),
        [
            ({"label": "", "stage_label": ["A"], "stage_state": ["OPEN"]}, "A name is needed."),
            ({"label": "X", "stage_label": [""], "stage_state": ["OPEN"]}, "at least one stage"),
            (
                {"label": "X", "stage_label": ["A", "a "], "stage_state": ["OPEN", "OPEN"]},
                "stage names are unique",
            ),
            ({"label": "X", "stage_label": ["A"], "stage_state": ["HALF"]}, "Choose Open or Closed."),
            (
                {"label": "X", "stage_label": [f"S{n}" for n in range(31)], "stage_state": ["OPEN"] * 31},
                "at most 30",
            ),
            ({"label": "Line\nbreak", "stage_label": ["A"], "stage_state": ["OPEN"]}, "one line"),
            (
                {"label": "Online orders", "stage_label": ["A"], "stage_state": ["OPEN"]},
                "already an order pipeline",
            ),
        ],
    )
    def test_refusals_are_said_in_the_dialog(
        self, editor: Client, pipeline: Pipeline, data: dict[str, Any], message: str
    ) -> None:
        before = Pipeline.objects.count()
        response = editor.post(self.url, data, headers=HX)
        assert response.status_code == 200
        assert response.headers["HX-Retarget"] == "#editor-dialog-body"
        assert message in response.content.decode()
        assert Pipeline.objects.count() == before
        # What was typed is still there.
        assert 'name="stage_label"' in response.content.decode()

    def test_without_htmx_it_redirects_to_the_page(self, editor: Client) -> None:
        response = editor.post(self.url, {"label": "Plain", "stage_label": ["A"], "stage_state": ["OPEN"]})
        assert response.status_code == 302
        assert response["Location"].startswith("/pipelines/#pipeline-")


class TestPipelineEdits:
    def test_rename(self, editor: Client, pipeline: Pipeline) -> None:
        response = editor.post(
            reverse("pipelines:rename", args=[pipeline.pk]), {"label": " Web shop "}, headers=HX
        )
        assert response.status_code == 200
        pipeline.refresh_from_db()
        assert pipeline.label == "Web shop"
        assert f'id="pipeline-head-{pipeline.pk}"' in response.content.decode()

    def test_a_taken_name_is_refused_in_the_head_with_the_typed_name_kept(
        self, editor: Client, pipeline: Pipeline
    ) -> None:
        factories.pipeline_with_stages(label="Returns")
        response = editor.post(
            reverse("pipelines:rename", args=[pipeline.pk]), {"label": "returns"}, headers=HX
        )
        html = response.content.decode()
        assert response.status_code == 200
        assert "already an order pipeline" in html and 'value="returns"' in html and 'role="alert"' in html
        pipeline.refresh_from_db()
        assert pipeline.label == "Online orders"
        assert not Change.objects.exists()

    def test_the_same_name_again_changes_nothing(self, editor: Client, pipeline: Pipeline) -> None:
        editor.post(reverse("pipelines:rename", args=[pipeline.pk]), {"label": "Online orders"}, headers=HX)
        assert not Change.objects.exists()

    def test_move_down_and_up(self, editor: Client, pipeline: Pipeline) -> None:
        other = factories.pipeline_with_stages(label="Returns")
        url = reverse("pipelines:move", args=[pipeline.pk])
        response = editor.post(url, {"direction": "down"}, headers=HX)
        assert list(Pipeline.objects.for_orders()) == [other, pipeline]
        event = hx_trigger(response)["editorDone"]
        assert event["focus"] == f"pipeline-up-{pipeline.pk}"  # at the bottom Down is disabled
        assert "pipeline 2 of 2" in event["announce"]
        editor.post(url, {"direction": "up"}, headers=HX)
        assert list(Pipeline.objects.for_orders()) == [pipeline, other]
        assert editor.post(url, {"direction": "sideways"}, headers=HX).status_code == 200
        assert list(Pipeline.objects.for_orders()) == [pipeline, other]


class TestBoardSettings:
    def url(self, pipeline: Pipeline) -> str:
        return reverse("pipelines:settings", args=[pipeline.pk])

    def test_rules_and_the_stale_threshold(
        self, editor: Client, pipeline: Pipeline, properties: None
    ) -> None:
        data = {
            "no_skipping": "on",
            "stale_after_days": "12",
            "card_properties": ["customer", "hs_total_price"],
            "label": "Not taken",
            "object_type": "carts",
        }
        response = editor.post(self.url(pipeline), data, headers=HX)
        assert response.status_code == 200 and "Saved" in response.content.decode()
        pipeline.refresh_from_db()
        assert (pipeline.allow_skipping, pipeline.allow_moving_back, pipeline.stale_after_days) == (
            False,
            True,
            12,
        )
        assert pipeline.label == "Online orders" and pipeline.object_type == "orders"
        assert not Change.objects.exists()  # HubSpot holds none of this

    def test_card_lines_are_added_moved_and_removed(
        self, editor: Client, pipeline: Pipeline, properties: None
    ) -> None:
        base = {"stale_after_days": "7", "card_properties": ["customer", "hs_total_price"]}
        editor.post(self.url(pipeline), {**base, "card_add": "hs_shipping_tracking_number"}, headers=HX)
        pipeline.refresh_from_db()
        assert pipeline.card_properties == ["customer", "hs_total_price", "hs_shipping_tracking_number"]
        lines = list(pipeline.card_properties)
        response = editor.post(
            self.url(pipeline),
            {**base, "card_properties": lines, "card_up": "hs_shipping_tracking_number"},
            headers=HX,
        )
        pipeline.refresh_from_db()
        assert pipeline.card_properties == ["customer", "hs_shipping_tracking_number", "hs_total_price"]
        assert hx_trigger(response)["editorDone"]["focus"] == f"card-up-{pipeline.pk}-1"
        response = editor.post(
            self.url(pipeline),
            {**base, "card_properties": pipeline.card_properties, "card_down": "customer"},
            headers=HX,
        )
        pipeline.refresh_from_db()
        assert pipeline.card_properties == ["hs_shipping_tracking_number", "customer", "hs_total_price"]
        editor.post(
            self.url(pipeline),
            {**base, "card_properties": pipeline.card_properties, "card_remove": "customer"},
            headers=HX,
        )
        pipeline.refresh_from_db()
        assert pipeline.card_properties == ["hs_shipping_tracking_number", "hs_total_price"]

    @pytest.mark.parametrize(
        ("data", "message"),
        [
            ({"stale_after_days": "0"}, "At least 1 day."),
            ({"stale_after_days": "99999999999999999999"}, "At most 365 days."),
            ({"stale_after_days": "abc"}, "A whole number of days."),
            ({"stale_after_days": ""}, "Say after how many days"),
            ({"stale_after_days": "5", "card_add": "hs_not_a_property"}, "Select a valid choice"),
            ({"stale_after_days": "5", "card_properties": ["hs_pipeline_stage"]}, "could not be read"),
        ],
    )
    def test_refusals_are_said_in_the_panel(
        self, editor: Client, pipeline: Pipeline, properties: None, data: dict[str, Any], message: str
    ) -> None:
        response = editor.post(self.url(pipeline), data, headers=HX)
        assert response.status_code == 200
        assert message in response.content.decode()
        pipeline.refresh_from_db()
        assert pipeline.stale_after_days == 7

    def test_a_card_shows_at_most_eight_lines(self, editor: Client, pipeline: Pipeline) -> None:
        for n in range(9):
            PropertyDefinition.objects.create(
                object_type="orders", name=f"p{n}", label=f"P{n}", type="string"
            )
        data = {"stale_after_days": "7", "card_properties": [f"p{n}" for n in range(8)], "card_add": "p8"}
        response = editor.post(self.url(pipeline), data, headers=HX)
        assert "at most 8 lines" in response.content.decode()


class TestArchive:
    def test_the_dialog_refuses_until_the_orders_have_a_place_and_previews_the_move(
        self, editor: Client, pipeline: Pipeline, stages: list[Stage]
    ) -> None:
        other = factories.pipeline_with_stages(label="Returns", labels=("Open", "Done"), closed=("Done",))
        for _ in range(2):
            factories.OrderFactory(stage=stages[0])
        url = reverse("pipelines:archive", args=[pipeline.pk])
        html = editor.get(url, headers=HX).content.decode()
        assert "2 orders</strong> are in this pipeline" in html
        assert (
            'id="blocked-reason"' in html and "disabled" in html.split("Move 2 orders and archive")[0][-300:]
        )
        # Only stages of the other pipelines are offered.
        assert f'value="{stages[1].pk}"' not in html
        target = other.stages.get(label="Open")
        html = editor.get(url, {"move_to": target.pk}, headers=HX).content.decode()
        assert 'id="blocked-reason"' not in html
        assert "validateReferencesBeforeDelete=true" in html

        refused = editor.post(url, {}, headers=HX)
        assert refused.headers["HX-Retarget"] == "#editor-dialog-body"
        assert "Choose a stage" in refused.content.decode()
        pipeline.refresh_from_db()
        assert not pipeline.archived

        response = editor.post(url, {"move_to": target.pk}, headers=HX)
        assert response.status_code == 200 and hx_trigger(response)["editorDone"]["close"]
        pipeline.refresh_from_db()
        assert pipeline.archived
        assert Order.objects.filter(stage=target).count() == 2
        assert f'id="pipeline-{pipeline.pk}"' not in response.content.decode()

    def test_a_stage_of_the_same_pipeline_is_no_choice(
        self, editor: Client, pipeline: Pipeline, stages: list[Stage]
    ) -> None:
        factories.pipeline_with_stages(label="Returns")
        factories.OrderFactory(stage=stages[0])
        response = editor.post(
            reverse("pipelines:archive", args=[pipeline.pk]), {"move_to": stages[1].pk}, headers=HX
        )
        assert "Select a valid choice" in response.content.decode()
        pipeline.refresh_from_db()
        assert not pipeline.archived


# --- stages -------------------------------------------------------------------------------------------------


class TestStageEdits:
    def test_add_a_stage(self, editor: Client, pipeline: Pipeline) -> None:
        url = reverse("pipelines:stage-create", args=[pipeline.pk])
        response = editor.post(url, {"label": "Packed", "state": "OPEN", "display_order": "0"}, headers=HX)
        assert response.status_code == 200
        assert labels(pipeline)[-1] == "Packed"
        html = response.content.decode()
        assert f'id="stages-{pipeline.pk}"' in html and "Packed" in html
        # The form is empty again, for the next one.
        assert (
            f'id="stage-new-{pipeline.pk}-label"' in html
            and 'value="Packed"' not in html.split("stage-add")[1]
        )

    def test_a_taken_name_is_refused_where_it_was_typed(self, editor: Client, pipeline: Pipeline) -> None:
        url = reverse("pipelines:stage-create", args=[pipeline.pk])
        response = editor.post(url, {"label": "paid", "state": "OPEN"}, headers=HX)
        html = response.content.decode()
        assert "unique within a pipeline" in html and 'value="paid"' in html
        assert labels(pipeline).count("Paid") == 1 and "paid" not in labels(pipeline)

    def test_the_thirty_first_stage_is_refused(self, editor: Client) -> None:
        full = factories.pipeline_with_stages(
            label="Full", labels=tuple(f"S{n}" for n in range(30)), closed=()
        )
        response = editor.post(
            reverse("pipelines:stage-create", args=[full.pk]),
            {"label": "One more", "state": "OPEN"},
            headers=HX,
        )
        assert "at most 30 stages" in response.content.decode()
        assert full.stages.count() == 30

    def test_rename(self, editor: Client, pipeline: Pipeline, stages: list[Stage]) -> None:
        url = reverse("pipelines:stage-rename", args=[pipeline.pk, stages[1].pk])
        response = editor.post(url, {"label": "Settled", "state": "CLOSED"}, headers=HX)
        assert response.status_code == 200
        stages[1].refresh_from_db()
        assert (stages[1].label, stages[1].state) == ("Settled", "OPEN")  # the state is not this form's
        html = response.content.decode()
        assert html.strip().startswith('<li class="stage') and 'value="Settled"' in html

    @pytest.mark.parametrize(
        ("label", "message"),
        [("Shipped", "unique within a pipeline"), ("", "A name is needed."), ("x" * 300, "at most")],
    )
    def test_rename_refusals_stay_in_the_row(
        self, editor: Client, pipeline: Pipeline, stages: list[Stage], label: str, message: str
    ) -> None:
        url = reverse("pipelines:stage-rename", args=[pipeline.pk, stages[1].pk])
        response = editor.post(url, {"label": label}, headers=HX)
        assert response.status_code == 200
        html = response.content.decode()
        assert message in html and 'aria-invalid="true"' in html
        stages[1].refresh_from_db()
        assert stages[1].label == "Paid"

    def test_a_refusal_without_htmx_is_a_message_on_the_page(
        self, editor: Client, pipeline: Pipeline, stages: list[Stage]
    ) -> None:
        url = reverse("pipelines:stage-rename", args=[pipeline.pk, stages[1].pk])
        response = editor.post(url, {"label": "Shipped"}, follow=True)
        assert "unique within a pipeline" in response.content.decode()

    def test_switch_open_and_closed(self, editor: Client, pipeline: Pipeline, stages: list[Stage]) -> None:
        url = reverse("pipelines:stage-state", args=[pipeline.pk, stages[1].pk])
        response = editor.post(url, {"state": "CLOSED", "label": "Ignored"}, headers=HX)
        assert "now closed" in hx_trigger(response)["editorDone"]["announce"]
        stages[1].refresh_from_db()
        assert (stages[1].state, stages[1].label) == ("CLOSED", "Paid")
        response = editor.post(url, {"state": "HALF"}, headers=HX)
        assert response.status_code == 200 and "Select a valid choice" in response.content.decode()

    def test_a_stage_of_another_pipeline_is_not_found(self, editor: Client, pipeline: Pipeline) -> None:
        other = factories.pipeline_with_stages(label="Returns")
        stage = other.stages.first()
        assert stage is not None
        url = reverse("pipelines:stage-rename", args=[pipeline.pk, stage.pk])
        assert editor.post(url, {"label": "X"}, headers=HX).status_code == 404


class TestReorder:
    def test_move_down_keeps_the_focus_on_the_arrow_and_says_where(
        self, editor: Client, pipeline: Pipeline, stages: list[Stage]
    ) -> None:
        url = reverse("pipelines:stage-move", args=[pipeline.pk, stages[1].pk])
        response = editor.post(url, {"direction": "down"}, headers=HX)
        assert labels(pipeline) == ["Open", "Shipped", "Paid", "Delivered", "Cancelled"]
        event = hx_trigger(response)["editorDone"]
        assert event == {
            "announce": "“Paid” is stage 3 of 5.",
            "focus": f"stage-down-{stages[1].pk}",
            "close": False,
        }
        assert f'id="stages-{pipeline.pk}"' in response.content.decode()

    def test_at_the_top_the_focus_goes_to_the_other_arrow(
        self, editor: Client, pipeline: Pipeline, stages: list[Stage]
    ) -> None:
        response = editor.post(
            reverse("pipelines:stage-move", args=[pipeline.pk, stages[1].pk]), {"direction": "up"}, headers=HX
        )
        assert labels(pipeline)[0] == "Paid"
        assert hx_trigger(response)["editorDone"]["focus"] == f"stage-down-{stages[1].pk}"
        # Up again from the top changes nothing.
        editor.post(
            reverse("pipelines:stage-move", args=[pipeline.pk, stages[1].pk]), {"direction": "up"}, headers=HX
        )
        assert labels(pipeline)[0] == "Paid"

    def test_a_drag_sends_the_whole_order(
        self, editor: Client, pipeline: Pipeline, stages: list[Stage]
    ) -> None:
        order = [stages[2], stages[0], stages[1], stages[3], stages[4]]
        url = reverse("pipelines:stages-order", args=[pipeline.pk])
        response = editor.post(url, {"stage": [s.pk for s in order]}, headers=HX)
        assert response.status_code == 200
        assert labels(pipeline) == [s.label for s in order]

    @pytest.mark.parametrize("which", ["missing", "twice", "foreign", "junk"])
    def test_an_order_that_is_not_every_stage_once_is_refused(
        self, editor: Client, pipeline: Pipeline, stages: list[Stage], which: str
    ) -> None:
        pks: list[Any] = [s.pk for s in reversed(stages)]
        if which == "missing":
            pks = pks[1:]
        elif which == "twice":
            pks = [*pks, pks[0]]
        elif which == "foreign":
            foreign = factories.pipeline_with_stages(label="Returns").stages.first()
            assert foreign is not None
            pks = [*pks[1:], foreign.pk]
        else:
            pks = [*pks[1:], "99999999999999999999"]
        response = editor.post(
            reverse("pipelines:stages-order", args=[pipeline.pk]), {"stage": pks}, headers=HX
        )
        assert response.status_code == 200
        assert 'role="alert"' in response.content.decode()
        assert labels(pipeline) == [s.label for s in stages]


class TestRules:
    def url(self, stage: Stage) -> str:
        return reverse("pipelines:stage-rules", args=[stage.pipeline_id, stage.pk])

    def test_the_dialog_offers_the_properties_a_move_can_set(
        self, editor: Client, stages: list[Stage], properties: None
    ) -> None:
        html = editor.get(self.url(stages[1]), headers=HX).content.decode()
        assert 'value="hs_shipping_tracking_number"' in html and 'value="hs_total_price"' in html
        assert 'value="hs_object_id"' not in html  # read only
        assert 'value="hs_pipeline_stage"' not in html  # the move sets it

    def test_save(self, editor: Client, stages: list[Stage], properties: None) -> None:
        data = {"required": ["hs_shipping_tracking_number", "hs_external_order_status"], "label": "Nope"}
        response = editor.post(self.url(stages[1]), data, headers=HX)
        stages[1].refresh_from_db()
        assert stages[1].required_properties == ["hs_shipping_tracking_number", "hs_external_order_status"]
        assert stages[1].label == "Paid"
        html = response.content.decode()
        assert "Tracking number" in html and "External status" in html
        event = hx_trigger(response)["editorDone"]
        assert event["close"] and event["focus"] == f"stage-rules-{stages[1].pk}"

    @pytest.mark.parametrize("name", ["hs_object_id", "hs_pipeline_stage", "not_a_property", "x" * 5000])
    def test_a_property_not_offered_is_refused_in_the_dialog(
        self, editor: Client, stages: list[Stage], properties: None, name: str
    ) -> None:
        response = editor.post(self.url(stages[1]), {"required": [name]}, headers=HX)
        assert response.headers["HX-Retarget"] == "#editor-dialog-body"
        assert "Select a valid choice" in response.content.decode()
        stages[1].refresh_from_db()
        assert stages[1].required_properties == []

    def test_nothing_ticked_clears_them(self, editor: Client, stages: list[Stage], properties: None) -> None:
        stages[1].required_properties = ["hs_total_price"]
        stages[1].save()
        editor.post(self.url(stages[1]), {}, headers=HX)
        stages[1].refresh_from_db()
        assert stages[1].required_properties == []


class TestDelete:
    def url(self, stage: Stage) -> str:
        return reverse("pipelines:stage-delete", args=[stage.pipeline_id, stage.pk])

    def test_an_empty_stage_is_deleted_after_its_preview(
        self, editor: Client, pipeline: Pipeline, stages: list[Stage]
    ) -> None:
        html = editor.get(self.url(stages[2]), headers=HX).content.decode()
        assert "No orders are in this stage." in html and 'id="blocked-reason"' not in html
        assert "validateReferencesBeforeDelete=true" in html
        response = editor.post(self.url(stages[2]), {}, headers=HX)
        assert response.status_code == 200
        stages[2].refresh_from_db()
        assert stages[2].archived
        assert f'id="pipeline-{pipeline.pk}"' in response.content.decode()
        assert f'id="stage-{stages[2].pk}"' not in response.content.decode()
        assert Change.objects.filter(kind=ChangeKind.STAGE_DELETE).count() == 1

    def test_a_stage_with_orders_asks_for_a_target_among_the_allowed_ones(
        self, editor: Client, pipeline: Pipeline, stages: list[Stage]
    ) -> None:
        moved = [factories.OrderFactory(stage=stages[1]) for _ in range(3)]
        html = editor.get(self.url(stages[1]), headers=HX).content.decode()
        assert "3 orders</strong> are in this stage" in html
        assert "Choose a stage for the 3 orders" in html
        button = html.split("Move 3 orders and delete")[0].rsplit("<button", 1)[1]
        assert "disabled" in button and 'aria-describedby="blocked-reason"' in button
        assert f'<option value="{stages[1].pk}"' not in html  # not itself

        html = editor.get(self.url(stages[1]), {"move_to": stages[2].pk}, headers=HX).content.decode()
        assert "3 orders move from “Paid” to “Shipped”" in html
        assert 'id="blocked-reason"' not in html

        response = editor.post(self.url(stages[1]), {"move_to": stages[2].pk}, headers=HX)
        assert response.status_code == 200 and hx_trigger(response)["editorDone"]["close"]
        stages[1].refresh_from_db()
        assert stages[1].archived
        assert {o.stage_id for o in Order.objects.filter(pk__in=[o.pk for o in moved])} == {stages[2].pk}

    def test_without_a_target_it_is_refused_in_the_dialog(
        self, editor: Client, pipeline: Pipeline, stages: list[Stage]
    ) -> None:
        factories.OrderFactory(stage=stages[1])
        response = editor.post(self.url(stages[1]), {}, headers=HX)
        assert response.headers["HX-Retarget"] == "#editor-dialog-body"
        assert "Choose a stage for the 1 order" in response.content.decode()
        stages[1].refresh_from_db()
        assert not stages[1].archived

    def test_a_target_the_rules_forbid_is_no_choice(
        self, editor: Client, pipeline: Pipeline, stages: list[Stage]
    ) -> None:
        pipeline.allow_moving_back = False
        pipeline.save()
        factories.OrderFactory(stage=stages[2])
        html = editor.get(self.url(stages[2]), headers=HX).content.decode()
        assert f'<option value="{stages[0].pk}"' not in html  # back
        assert f'<option value="{stages[3].pk}"' in html
        response = editor.post(self.url(stages[2]), {"move_to": stages[0].pk}, headers=HX)
        assert "Select a valid choice" in response.content.decode()
        stages[2].refresh_from_db()
        assert not stages[2].archived

    def test_the_last_stage_is_not_deleted(self, editor: Client) -> None:
        lone = factories.pipeline_with_stages(label="Lone", labels=("Only",), closed=())
        stage = lone.stages.get()
        html = editor.get(self.url(stage), headers=HX).content.decode()
        assert "a pipeline keeps at least one" in html
        response = editor.post(self.url(stage), {}, headers=HX)
        assert "a pipeline keeps at least one" in response.content.decode()
        stage.refresh_from_db()
        assert not stage.archived

    def test_the_dialog_is_a_page_without_htmx(self, editor: Client, stages: list[Stage]) -> None:
        html = editor.get(self.url(stages[1])).content.decode()
        assert "<html" in html and "Delete the stage" in html
        response = editor.post(self.url(stages[2]), {})
        assert response.status_code == 302 and response["Location"] == "/pipelines/"


def test_the_editors_order_counts_come_from_the_maintained_totals_and_agree_with_the_orders(
    stages: list[Stage],
) -> None:
    from orders.models import Order
    from pipelines import hooks
    from pipelines.views import _order_counts

    for index, stage in enumerate(stages[:3]):
        factories.OrderFactory.create_batch(index + 2, stage=stage, pipeline=stage.pipeline)
    gone = factories.OrderFactory(stage=stages[0], pipeline=stages[0].pipeline)
    Order.objects.filter(pk=gone.pk).update(archived=True)

    direct = {
        stage.pk: n for stage in stages if (n := Order.objects.filter(stage=stage, archived=False).count())
    }
    assert len(direct) == 3
    assert hooks.count_orders([s.pk for s in stages]) == direct
    assert _order_counts(stages) == direct
