"""In Chromium: sign in and see the navigation."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests import factories

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_sign_in_and_see_the_navigation(live_server: Any, page: Any) -> None:
    user = factories.support_user(username="avery")
    page.goto(f"{live_server.url}/boards/")
    assert "/login/" in page.url

    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(factories.PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    nav = page.get_by_role("navigation", name="Main")
    for label in ("Boards", "Abandoned carts", "Pipelines", "Sync"):
        assert nav.get_by_role("link", name=label).is_visible()
    # Support reads the pipelines page (read only); the Recovery settings and templates are for Pipeline
    # admins, and no link leads a Support user to a refusal.
    for href in nav.locator("a").evaluate_all("links => links.map(a => a.getAttribute('href'))"):
        if href and href.startswith("/"):
            assert page.request.get(f"{live_server.url}{href}").status != 403, href
    assert re.search(r"/boards/(\d+/)?$", page.url)
    assert nav.get_by_role("link", name="Boards").get_attribute("aria-current") == "page"
    # htmx is loaded and the CSRF token is in hx-headers for every htmx request.
    assert page.evaluate("typeof window.htmx") == "object"
    assert "X-CSRFToken" in (page.locator("body").get_attribute("hx-headers") or "")


def test_a_wrong_password_shows_a_message(live_server: Any, page: Any) -> None:
    user = factories.support_user(username="blake")
    page.goto(f"{live_server.url}/login/")
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill("wrong")
    page.get_by_role("button", name="Sign in").click()
    assert page.get_by_role("alert").is_visible()
    assert "/login/" in page.url
