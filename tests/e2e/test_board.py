"""The order board in Chromium, against the sandbox over HTTP with a real worker pushing the moves."""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest

from hubspot_sandbox.server import Sandbox
from hubspot_sandbox.testing import start_sandbox
from hubspot_sync import sync
from hubspot_sync.models import SyncKind
from orders.models import Order
from pipelines.models import Pipeline, Stage
from tests import factories
from tests.conftest import WorkerProcess, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def portal(
    request: pytest.FixtureRequest, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Sandbox]:
    hostile = bool(getattr(request, "param", False))
    # The hostile seed plants markup in about one text value in twenty: enough orders to be sure of some.
    sandbox = start_sandbox(
        seed_contacts=12, seed_orders=160 if hostile else 40, seed_carts=6, hostile=hostile, rate_limits=False
    )
    for name, value in (
        ("HUBSPOT_API_BASE", sandbox.url),
        ("HUBSPOT_ACCESS_TOKEN", sandbox.config.token or ""),
    ):
        setattr(settings, name, value)
        monkeypatch.setenv(name, value)
    assert sync.run_sync(SyncKind.FULL).status == "succeeded"
    try:
        yield sandbox
    finally:
        sandbox.stop(save_snapshot=False)


def wait_for_js(page: Any, expression: str, timeout: float = 15_000) -> Any:
    """Evaluate ``expression`` in the page until it is truthy (from here: the pages' CSP forbids the eval
    that Playwright's own wait_for_function needs)."""
    deadline = time.monotonic() + timeout / 1000
    while True:
        if value := page.evaluate(expression):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout / 1000:g} s: {expression}")
        time.sleep(0.1)


def sign_in(page: Any, live_server: Any, username: str) -> None:
    page.goto(f"{live_server.url}/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(factories.PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/boards/\d+/"))


def open_stage_pair(pipeline: Pipeline) -> tuple[Stage, Stage]:
    """Two adjacent open stages, the first with orders in it."""
    stages = list(pipeline.stages.filter(archived=False, state="OPEN").order_by("display_order"))
    for first, second in itertools.pairwise(stages):
        if Order.objects.filter(stage=first, archived=False).exists():
            return first, second
    raise AssertionError("no open stage with orders")


def column_count(page: Any, stage: Stage) -> int:
    return int(page.locator(f"#column-header-{stage.pk} .count").get_attribute("data-count"))


def remote_stage(portal: Sandbox, hubspot_id: str) -> str | None:
    record = portal.state.get("orders", hubspot_id)
    return record.properties.get("hs_pipeline_stage") if record else None


def drag(page: Any, card: Any, target: Any) -> None:
    """Drag with the mouse, as a person would (SortableJS runs on pointer events)."""
    box, goal = card.bounding_box(), target.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + 15)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 2 + 10, box["y"] + 25, steps=5)
    page.mouse.move(goal["x"] + goal["width"] / 2, goal["y"] + 40, steps=20)
    page.mouse.up()


@pytest.fixture
def board(portal: Sandbox, live_server: Any, page: Any) -> tuple[Any, Pipeline]:
    factories.support_user(username="sam")
    sign_in(page, live_server, "sam")
    pipeline = Pipeline.objects.get(pk=int(re.search(r"/boards/(\d+)/", page.url).group(1)))  # type: ignore[union-attr]
    return page, pipeline


def test_drag_a_card_updates_counts_and_reaches_hubspot(
    board: tuple[Any, Pipeline], portal: Sandbox, celery_worker_process: WorkerProcess
) -> None:
    page, pipeline = board
    source, target = open_stage_pair(pipeline)
    before_source, before_target = column_count(page, source), column_count(page, target)
    card = page.locator(f"#cards-{source.pk} > li.card-item").first
    order_id = card.get_attribute("data-order")

    drag(page, card, page.locator(f"#cards-{target.pk}"))

    wait_for_js(page, f"document.querySelector('#cards-{target.pk} #order-{order_id}') !== null")
    wait_for_js(
        page,
        f"document.querySelector('#column-header-{target.pk} .count').dataset.count == '{before_target + 1}'",
    )
    assert column_count(page, source) == before_source - 1
    assert Order.objects.get(hubspot_id=order_id).stage_id == target.pk
    try:
        wait_until(lambda: remote_stage(portal, order_id) == target.hubspot_id, timeout_s=30)
    except AssertionError:
        pytest.fail("the sandbox never got the move; worker log:\n" + celery_worker_process.output())


def test_move_with_the_keyboard_only(board: tuple[Any, Pipeline]) -> None:
    page, pipeline = board
    source, target = open_stage_pair(pipeline)
    card = page.locator(f"#cards-{source.pk} > li.card-item").first
    order_id = card.get_attribute("data-order")

    summary = card.locator("summary")
    summary.focus()
    page.keyboard.press("Enter")  # opens "Move to…", which loads its form
    select = card.locator("select[name=stage]")
    select.wait_for()
    if not select.evaluate("el => el === document.activeElement"):
        page.keyboard.press("Tab")  # to the stage list
    assert select.evaluate("el => el === document.activeElement")
    select.select_option(str(target.pk))  # as the arrow keys would
    page.keyboard.press("Tab")  # to "Move"
    page.keyboard.press("Enter")

    wait_for_js(page, f"document.querySelector('#cards-{target.pk} #order-{order_id}') !== null")
    assert Order.objects.get(hubspot_id=order_id).stage_id == target.pk
    # Focus stays on the moved card, so the next key press goes on from there.
    assert page.evaluate("document.activeElement && document.activeElement.id") == f"order-{order_id}"


def test_a_required_value_is_asked_for_before_the_move(board: tuple[Any, Pipeline]) -> None:
    page, pipeline = board
    source, target = open_stage_pair(pipeline)
    target.required_properties = ["hs_shipping_tracking_number"]
    target.save()
    card = page.locator(f"#cards-{source.pk} > li.card-item").first
    order_id = card.get_attribute("data-order")
    Order.objects.filter(hubspot_id=order_id).update(
        properties={**Order.objects.get(hubspot_id=order_id).properties, "hs_shipping_tracking_number": ""}
    )

    drag(page, card, page.locator(f"#cards-{target.pk}"))

    prompt = page.locator(f"#order-{order_id} .card-prompt")
    prompt.wait_for()
    # The card is back where it was until the value is given.
    assert page.locator(f"#cards-{source.pk} #order-{order_id}").count() == 1
    assert Order.objects.get(hubspot_id=order_id).stage_id == source.pk
    prompt.get_by_label(re.compile("Tracking", re.I)).fill("1Z999AA10123456784")
    prompt.get_by_role("button", name=re.compile("Move to")).click()

    wait_for_js(page, f"document.querySelector('#cards-{target.pk} #order-{order_id}') !== null")
    order = Order.objects.get(hubspot_id=order_id)
    assert (
        order.stage_id == target.pk
        and order.properties["hs_shipping_tracking_number"] == "1Z999AA10123456784"
    )


def test_a_move_hubspot_rejects_returns_the_card_with_the_reason(
    board: tuple[Any, Pipeline], portal: Sandbox, celery_worker_process: WorkerProcess
) -> None:
    page, pipeline = board
    source, _ = open_stage_pair(pipeline)
    # A stage this app knows but HubSpot doesn't (deleted there a moment ago): HubSpot refuses the move.
    ghost = Stage.objects.create(
        pipeline=pipeline, hubspot_id="deleted-in-hubspot", label="Ghost stage", display_order=99
    )
    page.reload()
    card = page.locator(f"#cards-{source.pk} > li.card-item").first
    order_id = card.get_attribute("data-order")

    drag(page, card, page.locator(f"#cards-{ghost.pk}"))
    wait_for_js(page, f"document.querySelector('#cards-{ghost.pk} #order-{order_id}') !== null")

    # The push fails; the card goes back to the stage HubSpot has, and says why.
    wait_for_js(
        page, f"document.querySelector('#cards-{source.pk} #order-{order_id}') !== null", timeout=30_000
    )
    reason = page.locator(f"#order-{order_id} .sync-state")
    reason.wait_for()
    assert "Failed" in reason.inner_text()
    assert remote_stage(portal, order_id) == source.hubspot_id


def test_a_second_browser_sees_the_move_within_ten_seconds(
    board: tuple[Any, Pipeline], live_server: Any, chromium_browser: Any
) -> None:
    page, pipeline = board
    other_context = chromium_browser.new_context()
    other = other_context.new_page()
    factories.support_user(username="robin")
    sign_in(other, live_server, "robin")
    source, target = open_stage_pair(pipeline)
    card = page.locator(f"#cards-{source.pk} > li.card-item").first
    order_id = card.get_attribute("data-order")

    drag(page, card, page.locator(f"#cards-{target.pk}"))
    wait_for_js(page, f"document.querySelector('#cards-{target.pk} #order-{order_id}') !== null")
    moved_at = time.monotonic()

    wait_for_js(
        other, f"document.querySelector('#cards-{target.pk} #order-{order_id}') !== null", timeout=10_000
    )
    assert time.monotonic() - moved_at <= 10
    other_context.close()


@pytest.mark.parametrize("portal", [True], indirect=True)
def test_hostile_order_names_render_as_text(board: tuple[Any, Pipeline]) -> None:
    page, pipeline = board
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    hostile = [o.name for o in Order.objects.filter(pipeline=pipeline) if "<" in o.name]
    assert hostile, "the seeder planted no markup in order names"
    page.fill("#id_q", hostile[0][:40])
    page.press("#id_q", "Enter")
    wait_for_js(page, "document.querySelector('#board-body').dataset.filters.startsWith('q=')")

    names = page.locator(".order-name a").all_inner_texts()
    assert any("<" in name for name in names)  # shown as the text it is
    assert dialogs == []  # no script ran
    assert (
        page.evaluate(
            "document.querySelectorAll('.order-name script, .order-name img, .order-name iframe').length"
        )
        == 0
    )
