"""The signed links in a recovery email: the tracked redirect (to the cart's stored link only) and the
one-click unsubscribe (RFC 8058), both public and CSRF-free, with a friendly page for bad links."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.core import signing
from django.test import Client
from django.utils import timezone

from carts import links
from carts.models import Cart, CartEvent, EmailState, EventKind, RecoverySend, SendStatus, Suppression

pytestmark = pytest.mark.django_db


def _sent(
    cart_url: str = "https://shop.example.com/cart/recover/abc", email: str = "ann@customer.example"
) -> RecoverySend:
    cart = Cart.objects.create(
        hubspot_id=str(900_000 + Cart.objects.count()),
        cart_url=cart_url,
        customer_email=email,
        email_state=EmailState.EMAILED,
    )
    return RecoverySend.objects.create(
        cart=cart,
        step=1,
        to_email=email,
        status=SendStatus.SENT,
        token=f"tok-{cart.hubspot_id}",
        sent_at=timezone.now(),
    )


def _path(url: str) -> str:
    return url.split("deck.example.com", 1)[-1] if "deck.example.com" in url else "/" + url.split("/", 3)[3]


@pytest.fixture(autouse=True)
def _site(settings: Any) -> None:
    settings.SITE_URL = "https://deck.example.com"


def test_a_click_is_recorded_and_redirects_to_the_carts_stored_link(client: Client) -> None:
    send = _sent()
    response = client.get(_path(links.click_url(send)))
    assert response.status_code == 302
    assert response["Location"] == "https://shop.example.com/cart/recover/abc"
    send.refresh_from_db()
    assert send.clicked_at is not None
    cart = Cart.objects.with_recovery_state().get(pk=send.cart_id)
    assert cart.email_state == EmailState.CLICKED and cart.recovery_state == "clicked"
    assert CartEvent.objects.filter(send=send, kind=EventKind.CLICKED).count() == 1
    # A second click redirects again and logs no second click.
    assert client.get(_path(links.click_url(send))).status_code == 302
    assert CartEvent.objects.filter(send=send, kind=EventKind.CLICKED).count() == 1


def test_the_redirect_goes_to_the_link_stored_now_and_ignores_anything_in_the_request(client: Client) -> None:
    send = _sent()
    Cart.objects.filter(pk=send.cart_id).update(cart_url="https://shop.example.com/cart/recover/newer")
    path = _path(links.click_url(send))
    for query in ("?next=https://evil.example", "?url=//evil.example", "?redirect=javascript:alert(1)"):
        response = client.get(path + query)
        assert response["Location"] == "https://shop.example.com/cart/recover/newer"


@pytest.mark.parametrize(
    "stored",
    ["javascript:alert(1)", "//evil.example/x", "data:text/html,<script>x</script>", "/relative", ""],
)
def test_a_stored_link_that_is_no_web_address_is_never_followed(client: Client, stored: str) -> None:
    send = _sent(cart_url=stored)
    response = client.get(_path(links.click_url(send)))
    assert response.status_code == 404
    assert "Location" not in response
    assert b"no longer available" in response.content


@pytest.mark.parametrize(
    "mangle",
    [
        lambda value: value[:-2] + ("AA" if not value.endswith("AA") else "BB"),  # signature changed
        lambda value: "other-token" + value[value.index(":") :],  # token changed
        lambda value: value.split(":")[0],  # signature cut off
        lambda value: "x" * 400,  # too long
    ],
)
def test_a_tampered_link_shows_the_friendly_page(client: Client, mangle: Any) -> None:
    send = _sent()
    signed = links.sign(send.token, links.CLICK_SALT)
    response = client.get(f"/r/c/{mangle(signed)}/")
    assert response.status_code == 400
    assert b"This link does not work" in response.content
    assert RecoverySend.objects.get(pk=send.pk).clicked_at is None


def test_an_unsubscribe_link_is_no_click_link_and_the_reverse(client: Client) -> None:
    send = _sent()
    unsubscribe_value = links.sign(send.token, links.UNSUBSCRIBE_SALT)
    click_value = links.sign(send.token, links.CLICK_SALT)
    assert client.get(f"/r/c/{unsubscribe_value}/").status_code == 400
    assert client.post(f"/r/u/{click_value}/").status_code == 400
    assert not Suppression.objects.exists()


def test_an_expired_link_says_so(client: Client, settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    settings.CARTS_LINK_MAX_AGE_DAYS = 30
    send = _sent()
    real_time = time.time
    monkeypatch.setattr(signing.time, "time", lambda: real_time() - 31 * 86400)
    old_click, old_unsubscribe = links.click_url(send), links.unsubscribe_url(send)
    monkeypatch.setattr(signing.time, "time", real_time)
    response = client.get(_path(old_click))
    assert response.status_code == 400 and b"This link has expired" in response.content
    response = client.post(_path(old_unsubscribe), {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 400 and not Suppression.objects.exists()


def test_unsubscribe_get_asks_first_and_post_unsubscribes_without_csrf_or_login() -> None:
    client = Client(enforce_csrf_checks=True)
    send = _sent(email="bob@customer.example")
    path = _path(links.unsubscribe_url(send))
    page = client.get(path)
    assert page.status_code == 200
    assert b"Unsubscribe from cart reminders?" in page.content and b'method="post"' in page.content
    assert b"bob@customer.example" not in page.content, "the address is shown masked"
    assert not Suppression.objects.exists(), "a GET (a link preview) unsubscribes no one"

    # RFC 8058: the mail provider POSTs this body, with no cookie and no CSRF token.
    response = client.post(
        path, "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 200 and b"You are unsubscribed" in response.content
    suppression = Suppression.objects.get(email="bob@customer.example")
    assert suppression.source == "unsubscribe" and suppression.added_by is None
    assert CartEvent.objects.filter(cart_id=send.cart_id, kind=EventKind.UNSUBSCRIBED).count() == 1
    assert Cart.objects.with_recovery_state().get(pk=send.cart_id).recovery_state == "unsubscribed"
    # Twice is harmless.
    assert (
        client.post(
            path, "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded"
        ).status_code
        == 200
    )
    assert Suppression.objects.count() == 1


def test_preview_links_lead_to_a_page_saying_so(client: Client) -> None:
    for path in ("/r/c/preview/", "/r/u/preview/"):
        response = client.get(path)
        assert response.status_code == 200 and b"This is a preview link" in response.content
    assert client.post("/r/u/preview/").status_code == 200
    assert not Suppression.objects.exists()


def test_the_link_pages_run_no_inline_script(client: Client) -> None:
    send = _sent()
    for response in (
        client.get(_path(links.unsubscribe_url(send))),
        client.get("/r/c/bad-token/"),
        client.get("/r/u/preview/"),
    ):
        body = response.content.decode()
        assert "<script>" not in body and " onclick=" not in body
        assert "script-src 'self'" in response.get("Content-Security-Policy", "script-src 'self'")
