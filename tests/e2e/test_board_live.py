"""The board in Chromium as a person uses it: filters set without a reload are what bulk moves and saved
views use; live updates leave ticks, an open menu and scroll positions alone; the board fits the screen on
a desktop and shows one column at a time on a phone.

Waiting is done from Python (``page.evaluate`` in a loop): the pages' CSP forbids the ``eval`` that
Playwright's ``wait_for_function`` needs."""

from __future__ import annotations

import itertools
import os
import re
import time
from pathlib import Path
from typing import Any

import pytest
from django.db.models import Count

from orders import services
from orders.models import Order, SavedView
from pipelines.models import Pipeline
from tests import factories
from tests.e2e.test_board import board, portal, sign_in  # noqa: F401 - fixtures

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


# The board's columns a person can see (one on a phone).
VISIBLE_COLUMNS = (
    "[...document.querySelectorAll('.board > .column')]"
    ".filter(c => c.getClientRects().length).map(c => c.dataset.stage)"
)
COLUMN_WIDTHS = (
    "[...document.querySelectorAll('.column:not(.column-collapsed)')]"
    ".map(c => c.getBoundingClientRect().width)"
)
SCROLL_A_COLUMN = """() => {
  const lists = [...document.querySelectorAll('ol.cards')]
    .filter(l => l.scrollHeight > l.clientHeight + 40);
  if (!lists.length) return null;
  lists[0].scrollTop = 40;
  return lists[0].id;
}"""


def wait_js(page: Any, expression: str, timeout_s: float = 15.0) -> Any:
    """Evaluate ``expression`` in the page until it is truthy."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = page.evaluate(expression)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout_s} s: {expression}")
        time.sleep(0.1)


def shoot(page: Any, tmp_path: Path, name: str) -> None:
    """A screenshot beside the test's files (and where ORDERDECK_SCREENSHOTS points, to look at)."""
    page.screenshot(path=str(tmp_path / f"{name}.png"))
    if folder := os.environ.get("ORDERDECK_SCREENSHOTS"):
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"))


def a_small_store(pipeline: Pipeline) -> tuple[str, int]:
    """A store some but not all of the pipeline's orders are from."""
    rows = (
        Order.objects.filter(pipeline=pipeline, archived=False)
        .exclude(store="")
        .values_list("store")
        .annotate(n=Count("pk"))
        .order_by("n", "store")
    )
    store, n = next((s, n) for s, n in rows if n >= 2)
    assert n < Order.objects.filter(pipeline=pipeline, archived=False).count()
    return store, n


def test_filters_set_without_a_reload_are_what_bulk_moves_and_saved_views_use(
    board: tuple[Any, Pipeline],  # noqa: F811 - the fixture imported above
    tmp_path: Path,
) -> None:
    page, pipeline = board
    store, n = a_small_store(pipeline)
    everyone = Order.objects.filter(pipeline=pipeline, archived=False).count()
    loaded_at = page.evaluate("performance.timeOrigin")

    page.locator(".filters-more > summary").click()
    page.locator("#id_store").select_option(store)
    wait_js(page, f"document.querySelector('#board-body').dataset.filters === {store_query(store)!r}")

    # No reload, and the page says what it shows: the address, the count, the bulk bar.
    assert page.evaluate("performance.timeOrigin") == loaded_at
    assert f"store={store_query(store).split('=', 1)[1]}" in page.url
    assert page.locator("#matching-count").inner_text().replace(",", "") == str(n)
    assert page.locator(".filters-more .pill-count").inner_text().startswith("1")
    shoot(page, tmp_path, "filtered")

    stages = list(pipeline.stages.filter(archived=False).order_by("display_order"))
    target = stages[-1]
    before = dict(Order.objects.filter(pipeline=pipeline).values_list("hubspot_id", "stage_id"))
    page.locator("#bulk-form input[name=scope][value=all]").check()
    page.locator("#bulk-form select[name=stage]").select_option(str(target.pk))
    page.locator("#bulk-form button[type=submit]").click()
    dialog = page.locator("#bulk-dialog .bulk-confirm")
    dialog.wait_for()
    text = dialog.inner_text()
    assert f"all {n} orders matching" in text and f"all {everyone} " not in text, text
    confirm = dialog.get_by_role("button", name=re.compile(r"^Move \d+ order"))
    assert confirm.inner_text() == f"Move {n} order{'s' if n != 1 else ''}"
    confirm.click()
    wait_js(page, "document.querySelector('#bulk-dialog .message') !== null")

    after = dict(Order.objects.filter(pipeline=pipeline).values_list("hubspot_id", "stage_id"))
    moved = {hid for hid, stage in after.items() if stage != before[hid]}
    matching = set(
        Order.objects.filter(pipeline=pipeline, store__iexact=store).values_list("hubspot_id", flat=True)
    )
    assert moved, "nothing moved"
    assert moved <= matching, "orders outside the filter moved"

    # A saved view stores the filter the page shows.
    page.locator(".save-view > summary").click()
    page.locator("#view-name").fill("Small store")
    page.locator(".save-view button[type=submit]").click()
    page.wait_for_load_state()
    view = SavedView.objects.get(name="Small store")
    assert view.query == store_query(store)


def store_query(store: str) -> str:
    from urllib.parse import urlencode

    return urlencode({"store": store})


def card_name(page: Any, hubspot_id: str) -> str:
    return str(page.evaluate(f"document.querySelector('#order-{hubspot_id} .order-name').innerText"))


def test_a_live_update_keeps_ticks_an_open_menu_and_scroll_positions(
    board: tuple[Any, Pipeline],  # noqa: F811 - the fixture imported above
    settings: Any,
    tmp_path: Path,
) -> None:
    page, pipeline = board
    settings.ORDERDECK_BOARD_POLL_SECONDS = 1
    page.set_viewport_size({"width": 1440, "height": 640})
    page.reload()
    open_stages = list(pipeline.stages.filter(archived=False, state="OPEN").order_by("display_order"))
    stages = list(pipeline.stages.filter(archived=False))
    fullest = max(stages, key=lambda s: Order.objects.filter(stage=s, archived=False).count())
    cards = Order.objects.filter(stage=fullest, archived=False).order_by("-remote_created_at", "-pk")
    assert cards.count() >= 4, "the seed left too few orders in every stage"
    a, b, c = (o.hubspot_id for o in cards[:3])
    # Another order, moved on to the next stage by someone else.
    other, target = next(
        (order, second)
        for first, second in itertools.pairwise(open_stages)
        for order in Order.objects.filter(stage=first, archived=False).exclude(hubspot_id__in=[a, b, c])[:1]
    )
    moved_from = other.stage_id

    # Work in progress: two ticks, an open "Move to…" menu, a column scrolled down.
    page.locator(f"#order-{a} input.select-card").check()
    page.locator(f"#order-{b} input.select-card").check()
    page.locator(f"#order-{c} .move-menu > summary").click()
    page.locator(f"#order-{c} .move-menu select[name=stage]").wait_for()
    # (the menu's stage list takes the focus as it loads, which scrolls its column: then scroll)
    wait_js(page, f"document.activeElement === document.querySelector('#order-{c} select[name=stage]')")
    scrolled = page.evaluate(SCROLL_A_COLUMN)
    assert scrolled, "no column is tall enough to scroll at this size"
    version = page.evaluate("document.querySelector('#board-version').dataset.version")

    # Meanwhile, elsewhere: another person moves an order, names change on the ticked card and on the
    # card whose menu is open, and HubSpot deletes an order.
    someone = factories.support_user(username="robin")
    services.order_move_to_stage(
        order=Order.objects.get(pk=other.pk), stage=target, by=someone, seen_in=moved_from
    )
    for hubspot_id in (a, c):
        Order.objects.filter(hubspot_id=hubspot_id).update(name=f"Renamed {hubspot_id}")
        Order.objects.get(hubspot_id=hubspot_id).save(update_fields=["updated_at"])
    deleted = cards[3]
    assert page.locator(f"#order-{deleted.hubspot_id}").count() == 1
    deleted.archived = True
    deleted.save()

    # The redraw brings the moved card into its new column, with the new counts …
    wait_js(page, f"document.querySelector('#board-version').dataset.version !== {version!r}")
    wait_js(page, f"document.querySelector('#cards-{target.pk} #order-{other.hubspot_id}') !== null")
    assert page.locator(f"#cards-{moved_from} #order-{other.hubspot_id}").count() == 0
    wait_js(page, f"document.getElementById('order-{deleted.hubspot_id}') === null")
    expected = Order.objects.filter(stage=target, archived=False).count()
    wait_js(
        page, f"document.querySelector('#column-header-{target.pk} .count').dataset.count === '{expected}'"
    )
    wait_js(page, f"document.querySelector('#order-{a} .order-name').innerText.includes('Renamed')")
    shoot(page, tmp_path, "after-live-update")

    # … and the work is where it was: the ticks (on the redrawn card too), the open menu, the scroll.
    assert page.locator(f"#order-{a} input.select-card").is_checked()
    assert page.locator(f"#order-{b} input.select-card").is_checked()
    assert page.locator("[data-selected-count]").first.inner_text() == "2"
    assert page.locator(f"#order-{c} .move-menu").evaluate("d => d.open")
    assert page.locator(f"#order-{c} .move-menu select[name=stage]").is_visible()
    assert "Renamed" not in card_name(page, c)  # waits under the open menu
    assert page.evaluate(f"document.getElementById('{scrolled}').scrollTop") == 40

    # Closing the menu lets its card's update in.
    page.locator(f"#order-{c} .move-menu > summary").click()
    wait_js(page, f"document.querySelector('#order-{c} .order-name').innerText.includes('Renamed')")


@pytest.mark.parametrize("portal", [True], indirect=True)
def test_the_board_fits_a_desktop_and_shows_one_column_on_a_phone(
    board: tuple[Any, Pipeline],  # noqa: F811 - the fixture imported above
    chromium_browser: Any,
    live_server: Any,
    tmp_path: Path,
) -> None:
    page, pipeline = board
    page.set_viewport_size({"width": 1440, "height": 900})
    page.reload()
    stages = list(pipeline.stages.filter(archived=False))
    shoot(page, tmp_path, "desktop-1440")

    # The page is the viewport's height (the columns scroll, not the page), and as wide.
    assert page.evaluate("document.documentElement.scrollHeight") <= 900 + 2
    assert page.evaluate("document.documentElement.scrollWidth") <= 1440
    # The filters take one line until opened.
    assert page.locator("#board-filters").bounding_box()["height"] < 60
    # Every column can be reached (the board scrolls sideways) and fills the height left to it.
    for stage in stages:
        column = page.locator(f"#column-{stage.pk}")
        column.scroll_into_view_if_needed()
        box = column.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 1440 + 1, stage.label
        assert box["y"] + box["height"] >= 900 - 40, "columns should reach down to the bottom"
    # Long unbroken HubSpot text wraps inside its card instead of widening the column.
    widths = page.evaluate(COLUMN_WIDTHS)
    assert max(widths) <= 300, widths
    assert page.evaluate(
        "[...document.querySelectorAll('.order-card')].every(c => c.scrollWidth <= c.clientWidth + 1)"
    )
    page.evaluate("document.querySelector('.board').scrollLeft = 0")
    shoot(page, tmp_path, "desktop-1440")
    page.locator(".filters-more > summary").click()
    shoot(page, tmp_path, "desktop-1440-filters-open")
    # The table too: HubSpot's longest words wrap in their cells, the page stays the window's width.
    page.goto(f"{live_server.url}/boards/{pipeline.pk}/table/")
    assert page.evaluate("document.documentElement.scrollWidth") <= 1440
    shoot(page, tmp_path, "table-1440")

    phone_context = chromium_browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    phone = phone_context.new_page()
    factories.support_user(username="pat")
    sign_in(phone, live_server, "pat")
    try:
        visible = phone.evaluate(VISIBLE_COLUMNS)
        assert len(visible) == 1
        assert phone.evaluate("document.documentElement.scrollWidth") <= 390
        assert phone.evaluate("document.documentElement.scrollHeight") <= 844 + 2
        switch = phone.locator("[data-stage-switch]")
        assert switch.is_visible()
        shoot(phone, tmp_path, "phone-390")
        other = next(str(s.pk) for s in stages if str(s.pk) != visible[0])
        switch.select_option(other)
        assert phone.evaluate(VISIBLE_COLUMNS) == [other]
        shoot(phone, tmp_path, "phone-390-switched")
    finally:
        phone_context.close()
