"""The carts console in Chromium, against the sandbox over HTTP, a real SMTP server and a real worker:
filter the list, preview, send, read the message in the Mailbox, follow its tracked link, unsubscribe, and
see the cart's state change at each step; a bulk send of "all matching" with its scope stated before it is
confirmed."""

# The carts tests' fixtures are imported by name, and tests name them as parameters.
# ruff: noqa: F811

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from carts.models import Cart, RecoverySend, RecoveryTemplate, SendStatus
from hubspot_sync import sync
from tests import factories
from tests.carts.conftest import (  # noqa: F401 (fixtures used by name)
    Portal,
    SmtpServer,
    _set,
    _taken,
    default_template,
    emailable_cart,
    portal,
    smtp_server,
)
from tests.conftest import WorkerProcess, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def site(live_server: Any, smtp_server: SmtpServer, settings: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Links in the emails point at this live server; carts count as abandoned at once. Set before the
    worker starts, so that it has them too."""
    _set(settings, monkeypatch, {"SITE_URL": live_server.url, "CARTS_ABANDONED_AFTER_MIN": "0"})
    _taken.clear()
    return live_server


def sign_in(page: Any, live_server: Any, user: Any, to: str = "/carts/") -> None:
    page.goto(f"{live_server.url}/login/?next={to}")
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(factories.PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(re.escape(to) + "$"))


def _shot(page: Any, name: str) -> None:
    """A screenshot for people to look at, when CARTS_SCREENSHOTS names a folder."""
    import os

    if folder := os.environ.get("CARTS_SCREENSHOTS"):
        page.screenshot(path=str(Path(folder) / f"carts-{name}.png"))


def row_state(page: Any, cart: Cart) -> str:
    return str(page.locator(f"#cart-row-{cart.hubspot_id}").get_attribute("data-state"))


def test_preview_send_read_click_and_unsubscribe(
    portal: Portal,
    site: Any,
    smtp_server: SmtpServer,
    default_template: RecoveryTemplate,
    celery_worker_process: WorkerProcess,
    page: Any,
) -> None:
    cart = emailable_cart(portal, "ada.lovelace@example.com", "Ada")
    # Its recovery link leads somewhere this browser can reach (the live server's health check stands in
    # for the shop's cart page).
    portal.patch_cart(cart.hubspot_id, {"hs_cart_url": f"{site.url}/healthz?cart={cart.hubspot_id}"})
    sync.refresh_records("carts", [cart.hubspot_id])
    cart.refresh_from_db()
    other = emailable_cart(portal, "grace@example.com", "Grace")
    user = factories.support_user()
    sign_in(page, site, user)

    # Filter the list down to the cart by its contact's address (htmx swaps the list; the URL follows).
    page.get_by_label("Search").fill("ada.lovelace")
    page.wait_for_url(re.compile(r"q=ada\.lovelace"))
    rows = page.locator("tr[data-cart]")
    rows.first.wait_for()
    wait_until(lambda: rows.count() == 1, timeout_s=10)
    assert page.locator(f"#cart-row-{other.hubspot_id}").count() == 0
    assert row_state(page, cart) == "new"

    # Open the drawer, preview the email with the cart's own data.
    page.locator(f"#cart-row-{cart.hubspot_id} a.cart-open").click()
    drawer = page.locator("#cart-drawer")
    drawer.wait_for(state="visible")
    drawer.get_by_role("link", name="Preview").click()
    subject = drawer.locator("[data-preview-subject]")
    subject.wait_for()
    assert subject.inner_text().startswith("Ada, your cart")
    frame = page.frame_locator("#cart-drawer .mail-frame")
    frame.get_by_text("Return to your cart").wait_for()

    # Send: the worker re-reads the cart from HubSpot, sends, and the drawer shows it sent.
    drawer.get_by_role("button", name="Send recovery email").click()
    drawer.locator('tr[data-send-status="sent"]').wait_for(timeout=60_000)
    drawer.locator('#cart-state [data-recovery-state="emailed"]').wait_for(timeout=5_000)
    _shot(page, "drawer-sent")
    drawer.get_by_role("button", name="Close").first.click()
    # The list was drawn again after the send (the CSP forbids evaluated strings: wait on a selector).
    page.locator(f'#cart-row-{cart.hubspot_id}[data-state="emailed"]').wait_for(timeout=10_000)

    # The Mailbox has it; its links are real.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Mailbox").click()
    page.get_by_role("link", name=re.compile("Ada, your cart")).click()
    page.frame_locator(".mail-frame").get_by_text("Return to your cart").wait_for()
    links = page.locator(".mail-links a")
    hrefs = [links.nth(i).get_attribute("href") for i in range(links.count())]
    click_link = next(h for h in hrefs if "/r/c/" in h)
    unsubscribe_link = next(h for h in hrefs if "/r/u/" in h)
    assert click_link.startswith(site.url) and unsubscribe_link.startswith(site.url)

    # Follow the tracked link: it lands on the cart's own recovery link.
    page.goto(click_link)
    assert page.url == cart.cart_url
    page.goto(f"{site.url}/carts/?q=ada.lovelace")
    assert row_state(page, cart) == "clicked"

    # Unsubscribe through the email's link; the cart shows it, and it is on the suppression list.
    page.goto(unsubscribe_link)
    page.get_by_role("button", name="Unsubscribe").click()
    page.get_by_role("heading", name="You are unsubscribed").wait_for()
    page.goto(f"{site.url}/carts/?state=unsubscribed")
    assert row_state(page, cart) == "unsubscribed"
    assert page.locator(f"#cart-row-{cart.hubspot_id} .cart-why").inner_text() == "Unsubscribed"
    page.goto(f"{site.url}/carts/suppressions/?q=ada.lovelace")
    assert page.locator('tr[data-email="ada.lovelace@example.com"]').count() == 1
    assert smtp_server.mailbox.count() == 1


def test_bulk_send_to_all_matching_states_its_scope(
    portal: Portal,
    site: Any,
    smtp_server: SmtpServer,
    default_template: RecoveryTemplate,
    celery_worker_process: WorkerProcess,
    page: Any,
) -> None:
    carts = [emailable_cart(portal, f"buyer{n}@bulk.example", f"Buyer{n}") for n in range(3)]
    linkless = emailable_cart(portal, "nolink@bulk.example", "Nolink")
    portal.patch_cart(linkless.hubspot_id, {"hs_cart_url": ""})
    sync.refresh_records("carts", [linkless.hubspot_id])
    sign_in(page, site, factories.support_user(), to="/carts/?q=bulk.example")
    page.get_by_role("button", name="Email all 4 matching…").click()
    dialog = page.locator("#bulk-dialog")
    dialog.wait_for(state="visible")
    scope = dialog.locator(".cart-bulk-scope")
    assert scope.get_attribute("data-scope-count") == "4"
    assert dialog.locator("[data-send-count]").get_attribute("data-send-count") == "3"
    assert dialog.locator("[data-skip-count]").get_attribute("data-skip-count") == "1"
    assert "No recovery link" in dialog.locator(".bulk-reasons").inner_text()
    assert not RecoverySend.objects.exists()  # nothing is sent before the confirmation
    _shot(page, "bulk-confirm")

    dialog.get_by_role("button", name="Send 3 emails").click()
    summary = dialog.locator(".cart-bulk-summary")
    summary.wait_for()
    assert summary.get_attribute("data-queued") == "3" and summary.get_attribute("data-skipped") == "1"
    wait_until(lambda: smtp_server.mailbox.count() == 3, timeout_s=90)
    received = sorted(to for m in smtp_server.mailbox.list() for to in m.to)
    assert received == sorted(c.customer_email for c in carts)
    wait_until(lambda: RecoverySend.objects.filter(status=SendStatus.SENT).count() == 3, timeout_s=30)
    dialog.get_by_role("button", name="Close").click()
    page.goto(f"{site.url}/carts/?q=bulk.example&state=emailed")
    assert page.locator("tr[data-cart]").count() == 3


# --- hostile text at desktop and phone widths ------------------------------------------------------------

HOSTILE = {
    "name": "<script>alert('cart')</script>" + "Ü" * 120,
    "customer_name": "\u202eevil.exe Mallory <img src=x onerror=alert(1)>",
    "customer_email": "a" * 90 + "@" + "b" * 60 + ".example",
    "store": "متجر الشمال " + "LongStoreNameWithoutAnyBreak" * 4,
    "cart_url": "https://shop.example.com/cart/" + "x" * 400,
}


def hostile_carts() -> list[Cart]:
    from datetime import timedelta
    from decimal import Decimal

    from django.utils import timezone

    old = timezone.now() - timedelta(hours=5)
    carts = [
        Cart.objects.create(
            hubspot_id=str(70_000 + n),
            remote_updated_at=old,
            total=Decimal("1234567.89"),
            currency="EUR",
            **HOSTILE,
        )
        for n in range(3)
    ]
    Cart.objects.create(
        hubspot_id="70009", name="No link", remote_updated_at=old, customer_email="x@example.com"
    )
    return carts


@pytest.mark.parametrize(("width", "height"), [(1440, 900), (390, 844)])
def test_hostile_text_stays_inside_the_page(
    live_server: Any, chromium_browser: Any, width: int, height: int, tmp_path: Path
) -> None:
    import os

    carts = hostile_carts()
    user = factories.support_user()
    context = chromium_browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    shots = Path(os.environ.get("CARTS_SCREENSHOTS", tmp_path))
    try:
        sign_in(page, live_server, user)
        table = page.locator("table.cart-table")
        table.wait_for()
        page.screenshot(path=str(shots / f"carts-list-{width}.png"), full_page=width > 800)
        if width <= 800:
            page.locator(f"#cart-row-{carts[0].hubspot_id}").scroll_into_view_if_needed()
            page.screenshot(path=str(shots / f"carts-rows-{width}.png"))
        box = table.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width + 1
        row = page.locator(f"#cart-row-{carts[0].hubspot_id}")
        assert "<script>" in row.inner_text()  # shown as text, never run
        assert "\u202e" not in row.inner_text()
        row_box = row.bounding_box()
        assert row_box is not None and row_box["x"] + row_box["width"] <= width + 1
        page.locator(f"#cart-row-{carts[0].hubspot_id} a.cart-open").click()
        drawer = page.locator("#cart-drawer")
        drawer.wait_for(state="visible")
        page.screenshot(path=str(shots / f"carts-drawer-{width}.png"))
        title = drawer.locator("#cart-title").bounding_box()
        assert title is not None and title["x"] + title["width"] <= width + 1
        assert not dialogs
    finally:
        context.close()


@pytest.mark.parametrize(("width", "height"), [(1440, 900), (390, 844)])
def test_suppressions_templates_and_mailbox_with_hostile_text(
    live_server: Any,
    chromium_browser: Any,
    width: int,
    height: int,
    tmp_path: Path,
    settings: Any,
    default_template: RecoveryTemplate,
) -> None:
    import os
    from email.message import EmailMessage

    from django.utils import timezone

    from carts.models import Suppression, SuppressionSource, email_hash

    address = "z" * 80 + "@" + "q" * 70 + ".example"
    Suppression.objects.create(
        email=address, email_hash=email_hash(address), source=SuppressionSource.STAFF, reason=HOSTILE["name"]
    )
    settings.MAILBOX_DIR = tmp_path / "mailbox"
    settings.MAILBOX_DIR.mkdir()
    message = EmailMessage()
    message["Subject"] = HOSTILE["customer_name"]
    message["X-Mailbox-From"] = "shop@example.com"
    message["X-Mailbox-To"] = address
    message["X-Mailbox-Received"] = timezone.now().isoformat()
    message.set_content("Back to your cart: " + HOSTILE["cart_url"])
    message.add_alternative(
        f"<p>Hello<script>document.title='pwned'</script> <a href='{HOSTILE['cart_url']}'>back</a></p>",
        subtype="html",
    )
    (settings.MAILBOX_DIR / "20261206-000001.eml").write_bytes(message.as_bytes())
    template = default_template
    context = chromium_browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    shots = Path(os.environ.get("CARTS_SCREENSHOTS", tmp_path))
    try:
        sign_in(page, live_server, factories.pipeline_admin(), to="/carts/suppressions/")
        for name, path, region in (
            ("suppressions", "/carts/suppressions/", "table.suppression-table"),
            ("template", f"/carts/templates/{template.pk}/", "#template-preview iframe"),
            ("mailbox", "/carts/mailbox/", "table.mailbox-table"),
            ("sequence", "/carts/sequence/", "form.sequence-form table"),
            ("message", "/carts/mailbox/20261206-000001/", ".mail-links"),
        ):
            page.goto(f"{live_server.url}{path}")
            page.locator(region).first.wait_for()
            page.screenshot(path=str(shots / f"carts-{name}-{width}.png"))
            box = page.locator("main").bounding_box()
            assert box is not None and box["x"] + box["width"] <= width + 1, name
            assert page.evaluate("document.documentElement.scrollWidth") <= width, name
            for cell in page.locator("main td, main h1, main dd").all()[:40]:
                cell_box = cell.bounding_box()
                assert cell_box is None or cell_box["x"] + cell_box["width"] <= width + 1, (
                    name,
                    cell.inner_text(),
                )
        # Override characters are left out: the subject reads in the order it was written.
        assert page.locator("#mail-subject").inner_text().startswith("evil.exe Mallory <img")
        # The message's own script never ran (the sandbox and its CSP), in the frame or in our page.
        assert page.title() != "pwned"
        frame = page.frame_locator(".mail-frame")
        assert frame.locator("a").get_attribute("href") == HOSTILE["cart_url"]
    finally:
        context.close()


def test_template_editor_previews_as_the_admin_types(
    live_server: Any, page: Any, default_template: RecoveryTemplate
) -> None:
    admin = factories.pipeline_admin()
    sign_in(page, live_server, admin, to=f"/carts/templates/{default_template.pk}/")
    subject = page.locator("#template-preview [data-preview-subject]")
    subject.wait_for()  # the first preview comes on load
    page.get_by_label("Subject").fill("Still thinking it over, {{ first_name|default:'friend' }}?")
    page.locator("#template-preview [data-preview-subject]", has_text="Still thinking it over").wait_for()
    page.frame_locator("#template-preview .mail-frame").get_by_text("Return to your cart").wait_for()
    # A template that cannot be rendered says why, beside the editor, and is not saved.
    page.get_by_label("Subject").fill("{% if %}")
    page.locator("#template-preview .error-text").wait_for()
    page.get_by_role("button", name="Save", exact=True).click()
    page.locator(".message-error", has_text="cannot be rendered").wait_for()
    default_template.refresh_from_db()
    assert "{% if %}" not in default_template.subject
