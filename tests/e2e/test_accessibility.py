"""Accessibility in Chromium: axe-core (WCAG 2.1 A and AA) over every page, the drawer as a modal dialog that
gives the focus back, keyboard jumps between columns, and a drawer refresh that leaves a person's work alone.

axe-core comes from the npm registry (package.json, in node_modules like SortableJS). It is injected with a
script tag, which the site's CSP (script-src 'self') would refuse, so only the axe runs use a browser context
that bypasses the CSP; the keyboard tests run under the CSP as it is served."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from hubspot_sandbox.server import Sandbox
from hubspot_sandbox.testing import start_sandbox
from hubspot_sync import sync
from hubspot_sync.models import Change, ChangeStatus, SyncKind, WebhookEvent
from orders.models import Order
from pipelines.models import Pipeline
from tests import factories
from tests.conftest import ROOT

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
SCREENSHOTS = ROOT / "data" / "screenshots"
# A file name with a right-to-left override: shown as stored it reads "gnp.exe", overridden "exe.png".
SPOOFED = "\u202egnp.exe\u202c Invoice"
LONG_WORD = "W" * 7000
RTL_NAME = "שלום עולם — مرحبا بالعالم"


@contextmanager
def synced_hostile_portal(settings: Any, monkeypatch: pytest.MonkeyPatch, **seed: int) -> Iterator[Sandbox]:
    """A sandbox seeded with hostile text (``seed``: its sizes), pointed at and fully synced."""
    sandbox = start_sandbox(hostile=True, rate_limits=False, **seed)
    for name, value in (
        ("HUBSPOT_API_BASE", sandbox.url),
        ("HUBSPOT_ACCESS_TOKEN", sandbox.config.token or ""),
    ):
        setattr(settings, name, value)
        monkeypatch.setenv(name, value)
    try:
        assert sync.run_sync(SyncKind.FULL).status == "succeeded"
        yield sandbox
    finally:
        sandbox.stop(save_snapshot=False)


@pytest.fixture
def portal(settings: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    with synced_hostile_portal(
        settings, monkeypatch, seed_contacts=12, seed_orders=60, seed_carts=6
    ) as sandbox:
        yield sandbox


@pytest.fixture
def hostile_order(portal: Sandbox) -> Order:
    """The first card of the first open column, given text that breaks careless pages, and a history."""
    pipeline = Pipeline.objects.for_orders().first()
    assert pipeline is not None
    stages = list(pipeline.stages.filter(archived=False, state="OPEN").order_by("display_order"))
    first = next(s for s in stages if Order.objects.filter(stage=s, archived=False).exists())
    order = Order.objects.filter(stage=first, archived=False).order_by("-remote_created_at", "-pk").first()
    assert order is not None
    later = stages[stages.index(first) + 1] if stages.index(first) + 1 < len(stages) else first
    order.name = f"{SPOOFED} {LONG_WORD[:300]}"
    order.properties.update(
        {
            "hs_order_name": order.name,
            "hs_tags": LONG_WORD,
            "hs_source_store": RTL_NAME,
            "hs_shipping_tracking_number": SPOOFED,
        }
    )
    order.save()
    Change.objects.create(
        object_type="orders",
        object_id=order.hubspot_id,
        base={"hs_pipeline_stage": first.hubspot_id},
        new={"hs_pipeline_stage": later.hubspot_id},
        status=ChangeStatus.APPLIED,
        created_by_name="Sam",
    )
    WebhookEvent.objects.create(
        event_id="a11y-1",
        subscription_type="object.propertyChange",
        object_type="orders",
        object_id=order.hubspot_id,
        occurred_at=timezone.now(),
        payload={"propertyName": "hs_pipeline_stage", "propertyValue": first.hubspot_id},
    )
    return order


def sign_in(page: Any, live_server: Any, username: str) -> None:
    page.goto(f"{live_server.url}/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(factories.PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()


def poll(page: Any, script: str, timeout_s: float = 10.0) -> Any:
    """Evaluate until truthy (page.wait_for_function compiles a string, which the CSP forbids)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = page.evaluate(script)
        if value:
            return value
        page.wait_for_timeout(100)
    raise AssertionError(f"not true within {timeout_s} s: {script}")


def serious_violations(page: Any) -> list[str]:
    page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        """async (tags) => {
            const result = await axe.run(document, {
                runOnly: {type: "tag", values: tags},
                // WCAG 2.5.3 (label in name) is an experimental rule in axe: asked for by name.
                rules: {"label-content-name-mismatch": {enabled: true}},
            });
            return {
                ran: result.passes.length,
                labelInName: [...result.passes, ...result.violations, ...result.incomplete]
                    .some(r => r.id === "label-content-name-mismatch"),
                violations: result.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                    count: v.nodes.length, nodes: v.nodes.slice(0, 3).map(n => n.target.join(" "))})),
            };
        }""",
        WCAG_TAGS,
    )
    assert result["ran"] > 0, "axe checked nothing"
    violations = result["violations"]
    return [
        f"{v['id']} ({v['impact']}, {v['count']}×): {v['help']} — e.g. {v['nodes']}"
        for v in violations
        if v["impact"] in ("critical", "serious")
    ]


@pytest.fixture
def axe_context(chromium_browser: Any) -> Iterator[Callable[..., Any]]:
    contexts: list[Any] = []

    def make(**options: Any) -> Any:
        context = chromium_browser.new_context(bypass_csp=True, **options)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15_000)
        return page

    yield make
    for context in contexts:
        context.close()


def test_every_page_has_no_serious_or_critical_axe_violation(
    portal: Sandbox, hostile_order: Order, live_server: Any, axe_context: Callable[..., Any]
) -> None:
    assert AXE.exists(), "axe-core is missing: run npm ci"
    factories.pipeline_admin(username="alex", is_staff=True, is_superuser=True)
    factories.support_user(username="robin")
    pipeline = hostile_order.pipeline
    assert pipeline is not None
    found: dict[str, list[str]] = {}

    anonymous = axe_context()
    anonymous.goto(f"{live_server.url}/login/")
    found["login"] = serious_violations(anonymous)

    page = axe_context()
    sign_in(page, live_server, "alex")
    pages = {
        "boards": "/boards/",
        "board": f"/boards/{pipeline.pk}/",
        "order page": f"/boards/orders/{hostile_order.hubspot_id}/",
        "table": f"/boards/{pipeline.pk}/table/",
        "carts": "/carts/",
        "pipelines": "/pipelines/",
        "sync": "/sync/",
        "record timeline": f"/sync/records/orders/{hostile_order.hubspot_id}/",
        "404": "/boards/orders/no-such-order/",
        "admin": "/admin/",
    }
    for name, path in pages.items():
        page.goto(live_server.url + path)
        page.wait_for_load_state("networkidle")
        found[name] = serious_violations(page)

    # The board with the drawer open, its empty fields and groups shown too.
    page.goto(f"{live_server.url}/boards/{pipeline.pk}/")
    page.locator(f"#order-{hostile_order.hubspot_id} .order-name a").click()
    page.locator("#drawer #drawer-title").wait_for()
    for summary in page.locator("#drawer details:not([open]) > summary").all():
        if summary.is_visible():
            summary.click()
    found["board with the drawer open"] = serious_violations(page)

    support = axe_context()
    sign_in(support, live_server, "robin")
    response = support.goto(f"{live_server.url}/pipelines/new/")  # Support reads pipelines, never edits
    assert response is not None and response.status == 403
    found["403"] = serious_violations(support)

    assert {name: v for name, v in found.items() if v} == {}


def test_the_drawer_is_a_modal_dialog_and_gives_the_focus_back(
    hostile_order: Order, live_server: Any, page: Any
) -> None:
    factories.support_user(username="sam")
    sign_in(page, live_server, "sam")
    link = page.locator(f"#order-{hostile_order.hubspot_id} .order-name a")
    link.focus()
    page.keyboard.press("Enter")
    page.locator("#drawer #drawer-title").wait_for()

    # A modal dialog, named by the order, with the focus moved into it.
    assert page.evaluate("document.getElementById('drawer').matches('dialog:modal')")
    assert page.locator("#drawer").get_attribute("aria-labelledby") == "drawer-title"
    assert page.evaluate("document.getElementById('drawer').contains(document.activeElement)")
    # Shift+Tab and Tab never leave it (the board under it is not reachable).
    for key in ["Shift+Tab"] * 6 + ["Tab"] * 40:
        page.keyboard.press(key)
        assert page.evaluate("document.getElementById('drawer').contains(document.activeElement)"), key

    # Escape in an inline edit cancels the edit and keeps the drawer open…
    page.locator("#drawer #property-hs_external_order_status a.edit").click()
    page.locator("#input-hs_external_order_status").wait_for()
    # The editor takes the focus once htmx has settled it (a person cannot type into it before that).
    poll(page, "document.activeElement?.id === 'input-hs_external_order_status'")
    page.keyboard.press("Escape")
    poll(
        page,
        "document.activeElement?.matches('#property-hs_external_order_status a.edit')",
    )
    assert page.evaluate("document.getElementById('drawer').open")
    # …and Escape again closes it, with the focus back on the card that opened it.
    page.keyboard.press("Escape")
    poll(page, "!document.getElementById('drawer').open")
    assert (
        page.evaluate(
            "document.activeElement.closest('.card-item') && document.activeElement.closest('.card-item').id"
        )
        == f"order-{hostile_order.hubspot_id}"
    )
    assert "/orders/" not in page.url

    # The Close button does the same.
    link.focus()
    page.keyboard.press("Enter")
    page.locator("#drawer .drawer-close").wait_for()
    page.locator("#drawer .drawer-close").click()
    poll(page, "!document.getElementById('drawer').open")
    assert (
        page.evaluate(
            "document.activeElement.closest('.card-item') && document.activeElement.closest('.card-item').id"
        )
        == f"order-{hostile_order.hubspot_id}"
    )


def test_brackets_jump_between_columns(hostile_order: Order, live_server: Any, page: Any) -> None:
    factories.support_user(username="sam")
    sign_in(page, live_server, "sam")
    columns = page.evaluate("[...document.querySelectorAll('.board .column')].map(c => c.id)")
    assert len(columns) >= 3
    page.locator("#board-keys").wait_for()  # the help line says how
    page.locator(f"#{columns[0]} .order-name a").first.focus()

    page.keyboard.press("]")
    assert page.evaluate("document.activeElement.closest('.column').id") == columns[1]
    page.keyboard.press("]")
    assert page.evaluate("document.activeElement.closest('.column').id") == columns[2]
    page.keyboard.press("[")
    assert page.evaluate("document.activeElement.closest('.column').id") == columns[1]
    # Typed into a field, a bracket is only a character.
    page.locator("#id_q").focus()
    page.keyboard.press("]")
    assert page.evaluate("document.activeElement.id") == "id_q"


def open_all(root: Any) -> None:
    """Open every closed group and "Show empty" list, as someone looking for a field would."""
    closed = root.locator("details:not(.move-menu):not([open]) > summary:visible")
    for _ in range(50):
        if not closed.count():
            return
        closed.first.click()


def test_the_refresh_after_a_save_keeps_open_groups_and_a_half_typed_edit(
    hostile_order: Order, live_server: Any, page: Any
) -> None:
    factories.support_user(username="sam")
    sign_in(page, live_server, "sam")
    page.goto(f"{live_server.url}/boards/orders/{hostile_order.hubspot_id}/")
    drawer = page.locator("#drawer-body")
    open_all(drawer)
    open_before = drawer.locator("details[open]").count()

    # Start editing one field and leave it half typed…
    page.locator("#property-hs_shipping_carrier a.edit").click()
    half = page.locator("#input-hs_shipping_carrier")
    half.fill("Half typ")
    # …then save another.
    page.locator("#property-hs_external_order_status a.edit").click()
    page.locator("#input-hs_external_order_status").fill("Waiting for stock")
    page.locator("#property-hs_external_order_status button[type=submit]").click()
    page.locator("#property-hs_external_order_status .pill").wait_for()
    half.focus()
    half.press("End")
    page.keyboard.type("ed")

    # The refresh comes 2 s after the save: the timeline gets the new change, nothing else is lost.
    poll(page, "document.querySelector('#drawer-timeline').textContent.includes('Waiting for stock')")
    assert (
        half.input_value() == "Half typed"
        and page.evaluate("document.activeElement.id") == "input-hs_shipping_carrier"
    )
    assert drawer.locator("details[open]").count() == open_before
    # The saved row was brought up to date; the timeline says what changed in words, not ids.
    timeline = page.locator("#drawer-timeline").inner_text()
    assert (
        "External order status: (empty) → Waiting for stock" in timeline
        or "External order status" in timeline
    )
    assert re.search(r"Stage: .+ → .+", timeline)


def _screenshots(page: Any, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=False)
    return path


@pytest.mark.parametrize(("label", "viewport"), [("desktop", (1440, 900)), ("phone", (390, 844))])
def test_hostile_text_wraps_and_reads_as_stored(
    hostile_order: Order, live_server: Any, chromium_browser: Any, label: str, viewport: tuple[int, int]
) -> None:
    factories.support_user(username="sam")
    context = chromium_browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
    page = context.new_page()
    sign_in(page, live_server, "sam")
    page.locator(f"#order-{hostile_order.hubspot_id} .order-name a").click()
    page.locator("#drawer #drawer-title").wait_for()
    _screenshots(page, f"drawer-{label}")

    width = viewport[0]
    # No region of the drawer is wider than the screen, whatever HubSpot sent.
    widest = page.evaluate(
        "Math.max(...[...document.querySelectorAll('#drawer *')].map(e => e.getBoundingClientRect().right))"
    )
    assert widest <= width + 1
    assert page.evaluate("document.getElementById('drawer').scrollWidth") <= width
    # The override is gone from what is shown: the name reads as stored ("gnp.exe"), never "exe.png".
    title = page.locator("#drawer-title").inner_text()
    assert "gnp.exe" in title and "\u202e" not in title
    timeline = page.locator("#drawer-timeline").inner_text()
    assert "Stage:" in timeline and "hs_pipeline_stage" not in timeline
    page.locator("#drawer-timeline").scroll_into_view_if_needed()
    _screenshots(page, f"drawer-timeline-{label}")
    page.keyboard.press("Escape")
    _screenshots(page, f"board-{label}")
    page.goto(f"{live_server.url}/sync/records/orders/{hostile_order.hubspot_id}/")
    _screenshots(page, f"record-{label}")
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    context.close()


def test_empty_fields_wait_behind_show_empty(hostile_order: Order, live_server: Any, page: Any) -> None:
    factories.support_user(username="sam")
    sign_in(page, live_server, "sam")
    page.goto(f"{live_server.url}/boards/orders/{hostile_order.hubspot_id}/")
    # What support reads first comes first.
    headings = page.locator("#drawer-body h3").all_inner_texts()
    assert headings[:4] == ["Status", "Customer", "Cart", "Line items"]
    assert page.locator("#drawer-body > details").nth(1).get_attribute("data-group") == "shipping"
    # The drawer opens on values: every row shown has one; the empty ones wait behind "Show empty".
    shown = page.locator("#drawer-body .property-row:visible .value").all_inner_texts()
    assert shown and "—" not in shown
    empty = page.locator("#drawer-body :is(.empty-fields, .empty-groups) .property-row")
    assert empty.count() > 0 and not any(row.is_visible() for row in empty.all())
    open_all(page.locator("#drawer-body"))
    assert all(row.is_visible() for row in empty.all())
    assert set(page.locator("#drawer-body :is(.empty-fields, .empty-groups) .value").all_inner_texts()) == {
        "—"
    }


def test_the_axe_run_finds_what_the_review_found(axe_context: Callable[..., Any]) -> None:
    """The harness itself: the card menu and badge as they were are reported (so a clean run means clean)."""
    page = axe_context()
    page.set_content(
        '<!doctype html><html lang="en"><head><title>Cards</title></head><body><main>'
        '<details><summary aria-label="Move Order 1 to another stage">Move to…</summary><p>x</p></details>'
        '<p><span style="color:#5d6878;background:#d9dce1;font-size:12px">closed</span></p>'
        "</main></body></html>"
    )
    found = " ".join(serious_violations(page))
    assert "label-content-name-mismatch" in found and "color-contrast" in found


def test_a_live_redraw_of_the_board_keeps_the_focus(
    hostile_order: Order, live_server: Any, page: Any, settings: Any
) -> None:
    settings.ORDERDECK_BOARD_POLL_SECONDS = 1
    factories.support_user(username="sam")
    sign_in(page, live_server, "sam")
    focused = page.locator(f"#order-{hostile_order.hubspot_id} .order-name a")
    focused.focus()
    # Another order of the same column changes (as a sync or a colleague would), and so does this one.
    other = (
        Order.objects.filter(stage=hostile_order.stage, archived=False)
        .exclude(pk=hostile_order.pk)
        .order_by("-remote_created_at")
        .first()
    )
    assert other is not None
    other.name = "Renamed while you looked"
    other.save()
    poll(page, "document.body.textContent.includes('Renamed while you looked')", timeout_s=15)
    hostile_order.store = "Changed store"
    hostile_order.save()
    page.wait_for_timeout(3000)  # a few polls
    assert (
        page.evaluate("document.activeElement.closest('.card-item')?.id")
        == f"order-{hostile_order.hubspot_id}"
    )


def test_the_board_and_drawer_on_a_phone_have_no_serious_axe_violation(
    hostile_order: Order, live_server: Any, axe_context: Callable[..., Any]
) -> None:
    factories.support_user(username="sam")
    page = axe_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    sign_in(page, live_server, "sam")
    found = {"board": serious_violations(page)}
    page.locator(f"#order-{hostile_order.hubspot_id} .order-name a").click()
    page.locator("#drawer #drawer-title").wait_for()
    found["drawer"] = serious_violations(page)
    assert {name: v for name, v in found.items() if v} == {}
