"""Accessibility in Chromium: axe-core (WCAG 2.1 A and AA) over every page, the drawer as a modal dialog that
gives the focus back, keyboard jumps between columns, and a drawer refresh that leaves a person's work alone.

axe-core comes from the npm registry (package.json, in node_modules like SortableJS). It is injected with a
script tag, which the site's CSP (script-src 'self') would refuse, so only the axe runs use a browser context
that bypasses the CSP; the keyboard tests run under the CSP as it is served."""

# The carts tests' fixtures are imported by name, and tests name them as parameters.
# ruff: noqa: F811

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from django.contrib.contenttypes.models import ContentType
from django.test import Client
from django.urls import resolve
from django.utils import timezone

from carts import links, sending
from carts import tasks as carts_tasks
from carts.models import Cart, RecoveryTemplate, SendStatus, SuppressionSource
from carts.services import cart_send_request, suppression_add
from hubspot_sandbox.server import Sandbox
from hubspot_sandbox.testing import start_sandbox
from hubspot_sync import sync
from hubspot_sync.models import Change, ChangeStatus, SyncKind, SyncRun, WebhookEvent
from orders.models import Order, SavedView
from pipelines.models import Pipeline
from tests import factories, urlwalk
from tests.carts.conftest import (  # noqa: F401 (fixtures used by name)
    Portal,
    SmtpServer,
    _taken,
    default_template,
    emailable_cart,
    smtp_server,
)
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


# Routes that are no page to check: urlwalk's, and a mail's own HTML (the email, not a page: shown in a
# sandboxed frame of the pages that are checked).
NOT_PAGES = urlwalk.NOT_PAGES | {"carts:preview-html", "carts:mailbox-html", "carts:template-preview-html"}
# Routes the walk must reach as whole pages (so data gone missing can't make it pass by checking less).
MUST_REACH = {
    "home",
    "login",
    "orders:board",
    "orders:table",
    "orders:move",
    "orders:drawer",
    "carts:abandoned",
    "carts:cart",
    "carts:preview",
    "carts:templates",
    "carts:template-new",
    "carts:template",
    "carts:sequence",
    "carts:suppressions",
    "carts:mailbox",
    "carts:mailbox-message",
    "carts:recovery",
    "carts:privacy",
    "recovery-click",
    "recovery-unsubscribe",
    "pipelines:list",
    "pipelines:create",
    "pipelines:archive",
    "pipelines:stage-rules",
    "pipelines:stage-delete",
    "hubspot:sync",
    "hubspot:record-changes",
    "admin:index",
    "admin:auth_user_change",
    "admin:pipelines_pipeline_change",
}


@pytest.fixture
def walk_data(
    portal: Sandbox,
    hostile_order: Order,
    smtp_server: SmtpServer,
    default_template: RecoveryTemplate,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> urlwalk.Dataset:
    """The synced hostile portal with the carts' pages given real data (two carts emailed, so the Mailbox has
    messages and the dashboard figures; a suppression; one cart's link gone, for the "no cart" page), and the
    walk's ids: each route's parameters filled with them."""
    settings.CARTS_ABANDONED_AFTER_MIN = 0
    # The sends are delivered here, one call each; nothing is queued for a worker.
    monkeypatch.setattr(carts_tasks.recovery_send_task, "delay", lambda *args, **kwargs: None)
    both = factories.pipeline_admin(username="alex", is_staff=True, is_superuser=True)
    carts = Portal(portal)
    _taken.clear()
    sends = []
    for email, first_name in (("ada@example.com", RTL_NAME), ("grace@example.com", "Grace")):
        cart = emailable_cart(carts, email, first_name)
        send = cart_send_request(cart=cart, by=both)
        assert sending.recovery_send_deliver(send_id=send.pk) == SendStatus.SENT
        sends.append(send)
    Cart.objects.filter(pk=sends[1].cart_id).update(cart_url="")
    suppression_add(email="gone@example.com", reason=LONG_WORD[:200], source=SuppressionSource.STAFF, by=both)
    (message_id,) = [m.id for m in smtp_server.mailbox.list() if m.to == ["ada@example.com"]]
    pipeline = hostile_order.pipeline
    assert pipeline is not None and hostile_order.stage is not None
    view = SavedView.objects.create(user=both, pipeline=pipeline, name=RTL_NAME, query="q=a")
    run = SyncRun.objects.order_by("-pk").first()
    assert run is not None
    failed = Change.objects.create(
        object_type="orders",
        object_id=hostile_order.hubspot_id,
        base={"hs_order_name": hostile_order.name},
        new={"hs_order_name": SPOOFED},
        status=ChangeStatus.FAILED,
        error=LONG_WORD[:500],
    )
    data = urlwalk.Dataset(pipeline, pipeline, [hostile_order], {"both": both})
    data.ids = {
        "pipeline_pk": [str(pipeline.pk)],
        "stage_pk": [str(hostile_order.stage.pk)],
        "view_pk": [str(view.pk)],
        "hubspot_id": [hostile_order.hubspot_id],
        "name": ["hs_order_name"],
        "pk": [str(run.pk), str(failed.pk)],
        "action": ["retry"],
        "object_type": ["carts", "orders"],  # with the ids below: a cart's timeline and an order's
        "object_id": [hostile_order.hubspot_id, sends[0].cart.hubspot_id],
        "cart_id": [sends[0].cart.hubspot_id],
        "template_pk": [str(default_template.pk)],
        "message_id": [message_id],
        "token": [
            "preview",  # the link in a preview: said to be one
            "not-a-signed-link",  # refused
            links.sign(sends[1].token, links.CLICK_SALT),  # a genuine link to a cart with no link left
            links.sign(sends[0].token, links.UNSUBSCRIBE_SALT),  # the unsubscribe page
        ],
    }
    data.admin_ids = {
        "app_label": ["pipelines", "auth", "hubspot"],
        "object_id": [str(pipeline.pk), str(both.pk)],
        "id": [str(both.pk)],
        "content_type_id": [str(ContentType.objects.get_for_model(Pipeline).pk)],
    }
    return data


def viewer_of(route: urlwalk.Route, path: str) -> str:
    """Who the page is for: a public page (exempt from signing in) anonymously, the start page as a person in
    no group (the "no access" page; the groups are sent on elsewhere), every other as a person in both groups
    and the Django admin."""
    if route.name == "home":
        return "no group"
    return "anonymous" if getattr(resolve(path).func, "login_required", True) is False else "both"


def whole_pages(data: urlwalk.Dataset, clients: dict[str, Client]) -> list[tuple[str, str, str]]:
    """(route name, viewer, path) of every route that answers its viewer's GET with a whole HTML document:
    each 200, and an error page (a refused link, a missing cart) once per status and template."""
    pages: list[tuple[str, str, str]] = []
    errors: set[tuple[int, str]] = set()
    for route in urlwalk.routes():
        if route.name in NOT_PAGES:
            continue
        for path in [urlwalk.fill(route, combo) for combo in urlwalk.real_values(route, data)]:
            viewer = viewer_of(route, path)
            response = clients[viewer].get(path)
            if "text/html" not in response.get("Content-Type", "") or b"<html" not in response.content:
                continue  # a redirect, a CSV or JSON answer, or a partial htmx swaps into a page
            if response.status_code != 200:
                key = (response.status_code, response.templates[0].name if response.templates else "")
                if key in errors:
                    continue
                errors.add(key)
            pages.append((route.name, viewer, path))
    return pages


def test_every_page_has_no_serious_or_critical_axe_violation(
    walk_data: urlwalk.Dataset,
    hostile_order: Order,
    live_server: Any,
    axe_context: Callable[..., Any],
    settings: Any,
) -> None:
    """Every page the URL resolver has, as the person it is for (the walk the CSP check makes), then the
    board with the drawer open, a 404 and a refusal."""
    assert AXE.exists(), "axe-core is missing: run npm ci"
    clients = {"anonymous": Client()}
    for viewer, user in (
        ("both", walk_data.users["both"]),
        ("no group", factories.UserFactory(username="nobody")),
        ("support", factories.support_user(username="robin")),
    ):
        clients[viewer] = Client()
        clients[viewer].force_login(user)
    pages = whole_pages(walk_data, clients)
    reached = {name for name, _, _ in pages}
    assert not MUST_REACH - reached, f"not reached as a whole page: {MUST_REACH - reached}"

    # One browser context and one page; the viewer's session (the walk's own) is put in its cookie jar.
    page = axe_context()
    current = ""

    def as_viewer(viewer: str) -> None:
        nonlocal current
        if viewer == current:
            return
        page.context.clear_cookies()
        if session := clients[viewer].cookies.get(settings.SESSION_COOKIE_NAME):
            page.context.add_cookies(
                [{"name": settings.SESSION_COOKIE_NAME, "value": session.value, "url": live_server.url}]
            )
        current = viewer

    found: dict[str, list[str]] = {}
    for _, viewer, path in pages:
        as_viewer(viewer)
        page.goto(live_server.url + path)
        page.wait_for_load_state("networkidle")
        found[f"{path} ({viewer})"] = serious_violations(page)

    as_viewer("both")
    page.goto(f"{live_server.url}/boards/orders/no-such-order/")
    found["a 404 (both)"] = serious_violations(page)
    # The board with the drawer open, its empty fields and groups shown too.
    pipeline = hostile_order.pipeline
    assert pipeline is not None
    page.goto(f"{live_server.url}/boards/{pipeline.pk}/")
    page.locator(f"#order-{hostile_order.hubspot_id} .order-name a").click()
    page.locator("#drawer #drawer-title").wait_for()
    for summary in page.locator("#drawer details:not([open]) > summary").all():
        if summary.is_visible():
            summary.click()
    found["the board with the drawer open (both)"] = serious_violations(page)

    as_viewer("support")
    response = page.goto(f"{live_server.url}/pipelines/new/")  # Support reads pipelines, never edits
    assert response is not None and response.status == 403
    found["a 403 (support)"] = serious_violations(page)

    failures = [f"{name}: {violation}" for name, violations in found.items() for violation in violations]
    assert not failures, (
        f"{len(failures)} serious or critical violations on {len(found)} pages:\n" + "\n".join(failures)
    )


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
