"""The pipeline editor in Chromium, on pipelines synced from the sandbox: create a pipeline, reorder stages
by drag and by keyboard, delete a stage holding orders through its dialog and preview (and the board
follows), Support reads the page without a control to edit, axe at desktop and phone sizes, and hostile
names that neither break the layout nor run.

Waiting is done from Python (``page.evaluate`` in a loop): the pages' CSP forbids the ``eval`` that
Playwright's ``wait_for_function`` needs."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hubspot_sandbox.seed import HOSTILE_TEXT
from hubspot_sandbox.server import Sandbox
from orders.models import Order
from pipelines.models import Pipeline, Stage
from tests import factories
from tests.e2e.test_accessibility import axe_context, serious_violations, synced_hostile_portal  # noqa: F401 - a fixture
from tests.e2e.test_board_live import wait_js

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DESKTOP = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def portal(settings: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    """The sandbox seeded with hostile text, synced: its order pipelines, stages, orders and properties."""
    with synced_hostile_portal(
        settings, monkeypatch, seed_contacts=10, seed_orders=80, seed_carts=2
    ) as sandbox:
        yield sandbox


def sign_in(page: Any, live_server: Any, username: str, then: str = "/pipelines/") -> None:
    page.goto(f"{live_server.url}/login/?next={then}")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(factories.PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()
    page.goto(f"{live_server.url}{then}")
    page.wait_for_load_state("networkidle")


def shoot(page: Any, tmp_path: Path, name: str, *, full_page: bool = False) -> None:
    """A screenshot beside the test's files (and where ORDERDECK_SCREENSHOTS points, to look at)."""
    page.screenshot(path=str(tmp_path / f"{name}.png"), full_page=full_page)
    if folder := os.environ.get("ORDERDECK_SCREENSHOTS"):
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=full_page)


def stage_order(pipeline: Pipeline) -> list[str]:
    return list(
        pipeline.stages.filter(archived=False).order_by("display_order").values_list("label", flat=True)
    )


def rows(pipeline: Pipeline) -> str:
    """The stage rows of the pipeline, as a script reads them."""
    return f"[...document.querySelectorAll('#stage-list-{pipeline.pk} > li.stage')]"


def dom_order(page: Any, pipeline: Pipeline) -> list[int]:
    return [int(pk) for pk in page.evaluate(f"{rows(pipeline)}.map(li => li.dataset.stage)")]


def first_pipeline() -> Pipeline:
    pipeline = Pipeline.objects.for_orders().first()
    assert pipeline is not None
    return pipeline


def editing_the_first_pipeline(page: Any, live_server: Any) -> tuple[Pipeline, list[Stage]]:
    """A Pipeline admin on the editor at desktop size; the first pipeline and its (four or more) stages."""
    factories.pipeline_admin(username="alex")
    page.set_viewport_size(DESKTOP)
    sign_in(page, live_server, "alex")
    pipeline = first_pipeline()
    stages = list(pipeline.stages.filter(archived=False).order_by("display_order"))
    assert len(stages) >= 4
    return pipeline, stages


def hostile_names() -> Stage:
    """Give a stage and the pipeline hostile names, as HubSpot could send them (the editor itself refuses
    control characters and over-long names)."""
    pipeline = first_pipeline()
    pipeline.label = HOSTILE_TEXT[1]  # '"><img src=x onerror=alert(1)>'
    pipeline.save()
    stage = pipeline.stages.filter(archived=False).order_by("display_order")[1]
    stage.label = "W" * Stage._meta.get_field("label").max_length  # the longest the cache holds
    stage.required_properties = ["hs_shipping_tracking_number", "hs_external_order_status"]
    stage.save()
    other = pipeline.stages.filter(archived=False).order_by("display_order")[2]
    other.label = HOSTILE_TEXT[6]  # a right-to-left override
    other.save()
    return stage


def no_wider_than_the_screen(page: Any, width: int) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    widest = page.evaluate(
        "Math.max(...[...document.querySelectorAll('#pipelines *')]"
        ".map(e => e.getBoundingClientRect().right))"
    )
    assert widest <= width + 1, widest


# --- creating a pipeline ----------------------------------------------------------------------------------


def test_create_a_pipeline_with_its_stages(
    portal: Sandbox, live_server: Any, page: Any, tmp_path: Path
) -> None:
    factories.pipeline_admin(username="alex")
    page.set_viewport_size(DESKTOP)
    sign_in(page, live_server, "alex")
    page.get_by_role("link", name="New pipeline").click()
    dialog = page.locator("#editor-dialog")
    dialog.get_by_role("heading", name="New pipeline").wait_for()
    assert page.evaluate("document.getElementById('editor-dialog').matches('dialog:modal')")
    assert page.evaluate("document.activeElement.id") == "new-pipeline-label"

    page.keyboard.type("Wholesale")
    rows = dialog.locator(".new-stage-row")
    assert rows.count() == 3
    for n, label in enumerate(["Quoted", "Invoiced", "Paid"]):
        rows.nth(n).get_by_label("Stage name").fill(label)
    dialog.get_by_role("button", name="Add a stage").click()
    assert rows.count() == 4
    # The new row has the focus, ready to type in.
    assert page.evaluate("document.activeElement.closest('.new-stage-row') !== null")
    page.keyboard.type("Shipped")
    rows.nth(3).get_by_label("State").select_option("CLOSED")
    rows.nth(2).get_by_role("button", name="Remove this stage").click()
    assert rows.count() == 3
    shoot(page, tmp_path, "editor-create-dialog")
    dialog.get_by_role("button", name="Create pipeline").click()

    wait_js(page, "!document.getElementById('editor-dialog').open")
    created = Pipeline.objects.get(label="Wholesale")
    assert [(s.label, s.state) for s in created.stages.order_by("display_order")] == [
        ("Quoted", "OPEN"),
        ("Invoiced", "OPEN"),
        ("Shipped", "CLOSED"),
    ]
    section = page.locator(f"#pipeline-{created.pk}")
    section.wait_for()
    assert section.locator("li.stage").count() == 3
    # The focus is on the new pipeline's name, and what happened is said.
    assert page.evaluate("document.activeElement.id") == f"pipeline-label-{created.pk}"
    wait_js(page, "document.getElementById('editor-live').textContent.includes('Wholesale')")
    # It is on its way to HubSpot (no worker runs here): the badge says so.
    assert "Saving to HubSpot" in section.locator(".pipeline-meta").inner_text()


def test_a_refused_name_is_said_in_the_row_and_kept(portal: Sandbox, live_server: Any, page: Any) -> None:
    factories.pipeline_admin(username="alex")
    sign_in(page, live_server, "alex")
    pipeline = first_pipeline()
    first, second = list(pipeline.stages.filter(archived=False).order_by("display_order"))[:2]
    field = page.locator(f"#stage-label-{second.pk}")
    field.fill(first.label.upper())
    field.press("Enter")
    error = page.locator(f"#stage-error-{second.pk}")
    error.wait_for()
    assert "unique" in error.inner_text()
    assert page.locator(f"#stage-label-{second.pk}").input_value() == first.label.upper()
    assert Stage.objects.get(pk=second.pk).label == second.label
    # Escape puts the saved name back.
    page.locator(f"#stage-label-{second.pk}").focus()
    page.keyboard.press("Escape")
    assert page.locator(f"#stage-label-{second.pk}").input_value() == second.label


# --- reordering -------------------------------------------------------------------------------------------


def drag(page: Any, handle: Any, target: Any, *, above: bool = True) -> None:
    """Drag with the mouse, as a person would (SortableJS runs on pointer events)."""
    box, goal = handle.bounding_box(), target.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2 - 6, steps=4)
    y = goal["y"] + (4 if above else goal["height"] - 4)
    page.mouse.move(goal["x"] + 20, y, steps=25)
    page.mouse.up()


def test_reorder_stages_by_drag_and_by_keyboard(portal: Sandbox, live_server: Any, page: Any) -> None:
    pipeline, stages = editing_the_first_pipeline(page, live_server)
    assert dom_order(page, pipeline) == [s.pk for s in stages]

    # Drag the third stage above the first, by its handle.
    moved = stages[2]
    drag(page, page.locator(f"#stage-{moved.pk} .drag-handle"), page.locator(f"#stage-{stages[0].pk}"))
    expected = [moved, stages[0], stages[1], *stages[3:]]
    wait_js(
        page, f"document.querySelector('#stage-list-{pipeline.pk} > li.stage').dataset.stage === '{moved.pk}'"
    )
    wait_js(page, f"document.querySelector('#stage-up-{moved.pk}').disabled")  # drawn again by the server
    assert stage_order(pipeline) == [s.label for s in expected]
    assert dom_order(page, pipeline) == [s.pk for s in expected]

    # The keyboard: "Move down" twice on the second stage, with the focus kept on its arrow.
    second = expected[1]
    page.locator(f"#stage-down-{second.pk}").focus()
    page.keyboard.press("Enter")
    wait_js(
        page,
        f"{rows(pipeline)}[2].dataset.stage === '{second.pk}'",
    )
    wait_js(page, f"document.activeElement && document.activeElement.id === 'stage-down-{second.pk}'")
    page.keyboard.press("Enter")
    wait_js(
        page,
        f"{rows(pipeline)}[3].dataset.stage === '{second.pk}'",
    )
    wait_js(page, f"document.activeElement && document.activeElement.id === 'stage-down-{second.pk}'")
    wait_js(page, "document.getElementById('editor-live').textContent.includes('is stage 4 of')")
    expected.insert(3, expected.pop(1))
    assert stage_order(pipeline) == [s.label for s in expected]
    # Up to the top; there the focus moves to the other arrow (Up is then disabled).
    page.keyboard.press("Shift+Tab")
    assert page.evaluate("document.activeElement.id") == f"stage-up-{second.pk}"
    for place in (2, 1, 0):
        page.keyboard.press("Enter")
        wait_js(page, f"{rows(pipeline)}[{place}].dataset.stage === '{second.pk}'")
        focused = "stage-down" if place == 0 else "stage-up"
        wait_js(page, f"document.activeElement && document.activeElement.id === '{focused}-{second.pk}'")
    assert stage_order(pipeline)[0] == second.label


def test_an_arrow_pressed_again_while_its_move_is_on_its_way_moves_again(
    portal: Sandbox, live_server: Any, page: Any
) -> None:
    pipeline, stages = editing_the_first_pipeline(page, live_server)
    moving = stages[0]
    held: list[Any] = []
    hold = {"on": True}

    def slow_server(route: Any) -> None:
        if hold["on"]:
            held.append(route)  # the move is on its way until the test lets it through
        else:
            route.continue_()

    page.route(re.compile(r"/stages/\d+/move/$"), slow_server)
    page.locator(f"#stage-down-{moving.pk}").focus()
    page.keyboard.press("Enter")
    wait_js(page, "document.querySelector('form.arrows.htmx-request') !== null")
    assert len(held) == 1
    # Pressed again on the same arrow while the first move has no answer yet: kept, not sent at once...
    page.keyboard.press("Enter")
    page.wait_for_timeout(300)
    assert len(held) == 1
    # ...and made once the first move is drawn: the stage goes down two places, the focus stays on its arrow.
    hold["on"] = False
    held.pop().continue_()
    wait_js(page, f"{rows(pipeline)}[2].dataset.stage === '{moving.pk}'")
    wait_js(page, f"document.activeElement && document.activeElement.id === 'stage-down-{moving.pk}'")
    wait_js(page, "document.getElementById('editor-live').textContent.includes('is stage 3 of')")
    assert stage_order(pipeline)[:3] == [stages[1].label, stages[2].label, moving.label]
    page.wait_for_timeout(300)
    assert stage_order(pipeline)[:3] == [stages[1].label, stages[2].label, moving.label]  # no third move


# --- deleting a stage that holds orders -------------------------------------------------------------------


def test_delete_a_stage_with_orders_through_its_dialog_and_the_board_follows(
    portal: Sandbox, live_server: Any, page: Any, tmp_path: Path
) -> None:
    factories.pipeline_admin(username="alex")
    page.set_viewport_size(DESKTOP)
    sign_in(page, live_server, "alex")
    pipeline = first_pipeline()
    stages = list(pipeline.stages.filter(archived=False, state="OPEN").order_by("display_order"))
    doomed = next(s for s in stages if Order.objects.filter(stage=s, archived=False).count() >= 2)
    holding = Order.objects.filter(stage=doomed, archived=False).count()

    page.get_by_role("link", name=f"Delete {doomed.label}", exact=True).click()
    dialog = page.locator("#editor-dialog")
    dialog.locator("#editor-dialog-title").wait_for()
    assert "Delete the stage" in dialog.locator("#editor-dialog-title").inner_text()
    assert f"{holding} orders are in this stage" in dialog.inner_text()
    # Nothing can be confirmed before the orders have somewhere to go, and the dialog says why.
    confirm = dialog.get_by_role("button", name=f"Move {holding} orders and delete")
    assert confirm.is_disabled()
    assert "Choose a stage" in dialog.locator("#blocked-reason").inner_text()

    select = dialog.get_by_label("Move its orders to")
    options = select.locator("option").all_inner_texts()
    assert doomed.label not in [o.strip() for o in options]
    target_pk = int(select.locator("option").nth(1).get_attribute("value"))
    target = Stage.objects.get(pk=target_pk)
    before_target = Order.objects.filter(stage=target, archived=False).count()
    select.select_option(str(target_pk))
    wait_js(
        page,
        "document.querySelector('#editor-dialog .preview') && !document.querySelector('#blocked-reason')",
    )
    preview = dialog.locator(".preview").inner_text()
    assert f"{holding} orders move from" in preview and target.label in preview
    assert "validateReferencesBeforeDelete=true" in preview
    shoot(page, tmp_path, "editor-delete-dialog")
    assert not confirm.is_disabled()
    confirm.click()

    wait_js(page, "!document.getElementById('editor-dialog').open")
    wait_js(page, f"!document.getElementById('stage-{doomed.pk}')")
    assert Stage.objects.get(pk=doomed.pk).archived
    assert Order.objects.filter(stage=target, archived=False).count() == before_target + holding
    count = page.locator(f"#stage-{target.pk} .stage-count").inner_text()
    assert count.replace(",", "").endswith(str(before_target + holding))

    # The board follows: no column for the deleted stage, its orders in the target's.
    page.goto(f"{live_server.url}/boards/{pipeline.pk}/")
    page.locator(f"#column-header-{target.pk}").wait_for()
    assert page.locator(f"#column-{doomed.pk}").count() == 0
    header_count = page.locator(f"#column-header-{target.pk} .count").get_attribute("data-count")
    assert int(header_count) == before_target + holding


# --- Support reads ----------------------------------------------------------------------------------------


def test_support_sees_the_page_read_only(
    portal: Sandbox, live_server: Any, page: Any, tmp_path: Path
) -> None:
    hostile_names()
    factories.support_user(username="robin")
    page.set_viewport_size(DESKTOP)
    sign_in(page, live_server, "robin")
    page.get_by_role("link", name="Pipelines").wait_for()
    assert page.locator(".nav a[aria-current=page]").inner_text() == "Pipelines"
    pipeline = first_pipeline()
    assert (
        page.locator(f"#pipeline-{pipeline.pk} li.stage").count()
        == pipeline.stages.filter(archived=False).count()
    )
    # Nothing to edit: no form but sign-out, no field, no htmx edit, no link into the editor's dialogs.
    forms = page.evaluate("[...document.querySelectorAll('main form')].length")
    assert forms == 0
    assert page.locator("main input, main select, main textarea, main [hx-post]").count() == 0
    links = page.evaluate("[...document.querySelectorAll('main a')].map(a => a.getAttribute('href'))")
    assert not [href for href in links if href.startswith("/pipelines/") and href != "/pipelines/"]
    assert page.locator("#new-pipeline").count() == 0
    # The rules are there to read.
    assert "stale after" in page.locator(f"#settings-{pipeline.pk}").inner_text().lower()
    shoot(page, tmp_path, "editor-support-desktop")


# --- accessibility, hostile names, the screen ---------------------------------------------------------------


@pytest.mark.parametrize(("label", "viewport"), [("desktop", DESKTOP), ("phone", PHONE)])
def test_the_editor_passes_axe_and_hostile_names_keep_the_layout(
    portal: Sandbox,
    live_server: Any,
    axe_context: Callable[..., Any],  # noqa: F811 - the fixture imported above
    tmp_path: Path,
    label: str,
    viewport: dict[str, int],
) -> None:
    stage = hostile_names()
    factories.pipeline_admin(username="alex")
    factories.support_user(username="robin")
    width = viewport["width"]
    alerts: list[str] = []

    page = axe_context(viewport=viewport)
    page.on("dialog", lambda d: (alerts.append(d.message), d.dismiss()))
    sign_in(page, live_server, "alex")
    found = {"editor": serious_violations(page)}
    no_wider_than_the_screen(page, width)
    shoot(page, tmp_path, f"editor-{label}")
    page.locator(f"#stage-{stage.pk}").scroll_into_view_if_needed()
    shoot(page, tmp_path, f"editor-hostile-{label}")
    # The markup in a name is text.
    assert page.locator("img[src=x]").count() == 0
    assert page.locator(f"#pipeline-label-{stage.pipeline_id}").input_value() == HOSTILE_TEXT[1]

    # A dialog open: the required properties of the stage with the long name.
    page.locator(f"#stage-rules-{stage.pk}").click()
    page.locator("#editor-dialog #editor-dialog-title").wait_for()
    found["rules dialog"] = serious_violations(page)
    assert page.evaluate("document.getElementById('editor-dialog').scrollWidth") <= width
    shoot(page, tmp_path, f"editor-rules-{label}")
    page.keyboard.press("Escape")
    wait_js(page, "!document.getElementById('editor-dialog').open")
    assert page.evaluate("document.activeElement.id") == f"stage-rules-{stage.pk}"

    reader = axe_context(viewport=viewport)
    sign_in(reader, live_server, "robin")
    found["read only"] = serious_violations(reader)
    no_wider_than_the_screen(reader, width)
    shoot(reader, tmp_path, f"editor-read-only-{label}")
    assert {name: v for name, v in found.items() if v} == {}
    assert alerts == []
