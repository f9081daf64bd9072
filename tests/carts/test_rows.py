"""The carts list's rows drawn in Python (carts.rows) are the markup the list's template drew, for every kind
of cart: hostile HubSpot text, missing names, contacts, totals and links, each recovery state, long and
unusual links, and dates in another time zone."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.template import engines
from django.test import Client
from django.utils import timezone

from carts.models import Cart, EmailState, Suppression, SuppressionSource
from carts.rows import cart_rows

pytestmark = pytest.mark.django_db

# The rows as the list's template drew them before they were drawn in Python.
TEMPLATE_ROWS = """{% load humanize orders_extras hubspot_labels carts_extras %}
    {% for cart in rows %}{% url 'carts:cart' cart.hubspot_id as cart_page %}
    <tr id="cart-row-{{ cart.hubspot_id }}" data-cart="{{ cart.hubspot_id }}" data-state="{{ cart.recovery_state }}">
      <td class="tick"><input type="checkbox" name="selected" value="{{ cart.hubspot_id }}" form="bulk-form" data-tick
             aria-label="Tick {{ cart.name|plain|default:'cart' }} ({{ cart.hubspot_id }})"></td>
      <td data-label="Cart"><a class="cart-open" href="{{ cart_page }}"
             hx-get="{{ cart_page }}" hx-target="#cart-drawer-body" hx-swap="innerHTML" hx-push-url="false"
             data-open-drawer><bdi>{{ cart.name|plain|default:"(no name)" }}</bdi></a>
          <span class="muted cart-id">#{{ cart.hubspot_id }}</span></td>
      <td data-label="Customer">{% if cart.customer_name %}<bdi>{{ cart.customer_name|plain }}</bdi><br>{% endif %}
          {% if cart.customer_email %}<span class="muted"><bdi>{{ cart.customer_email|plain }}</bdi></span>{% elif not cart.customer_name %}<span class="muted">No contact</span>{% endif %}</td>
      <td data-label="Recovery"><span class="pill {{ cart.recovery_state|state_pill }}">{{ cart.recovery_state|state_label }}</span>
          {% if cart.recovery_state == "not_emailable" %}<span class="cart-why">{{ cart.why }}</span>{% elif cart.recovery_state == "unsubscribed" %}<span class="cart-why">Unsubscribed</span>{% endif %}</td>
      <td data-label="Value" class="num">{% if cart.total is not None %}{{ cart.total|money }} <span class="muted">{{ cart.currency }}</span>{% else %}—{% endif %}</td>
      <td data-label="Store"><bdi>{{ cart.store|plain|default:"—" }}</bdi></td>
      <td data-label="Changed">{% if cart.remote_updated_at %}<time datetime="{{ cart.remote_updated_at|date:'c' }}">{{ cart.remote_updated_at|naturaltime }}</time>{% else %}—{% endif %}</td>
      <td data-label="Last email">{% if cart.last_email_at %}<time datetime="{{ cart.last_email_at|date:'c' }}">{{ cart.last_email_at|naturaltime }}</time>{% else %}<span class="muted">Never</span>{% endif %}</td>
      <td data-label="Recovery link" class="link-cell">{% with url=cart.cart_url|safe_link %}{% if url %}
          <a href="{{ url }}" target="_blank" rel="noopener noreferrer" class="cart-link"><bdi>{{ url|truncatechars:44 }}</bdi></a>
          <button type="button" class="button copy" data-copy="{{ url }}">Copy<span class="visually-hidden"> the recovery link of cart {{ cart.hubspot_id }}</span></button>
          {% else %}<span class="muted">No link</span>{% endif %}{% endwith %}</td>
    </tr>
    {% endfor %}"""  # noqa: E501

HOSTILE = "<script>alert('x')</script>\u202eevil & \"quoted\" 'single'"
AGO = timedelta(hours=5, minutes=30)


def make(n: int, **values: Any) -> Cart:
    defaults: dict[str, Any] = {
        "hubspot_id": str(70_000 + n),
        "name": f"Cart {n}",
        "status": "abandoned",
        "cart_url": f"https://shop.example/cart/{n}",
        "total": Decimal("10.00") + n,
        "currency": "EUR",
        "store": "North",
        "customer_name": f"Kim {n}",
        "customer_email": f"kim{n}@example.com",
        "remote_updated_at": timezone.now() - AGO - timedelta(days=n % 9, hours=n),
    }
    defaults.update(values)
    return Cart.objects.create(**defaults)


def every_kind() -> None:
    make(1, name=HOSTILE, customer_name=HOSTILE, store=HOSTILE, currency="<b>")
    make(2, name="", customer_name="", customer_email="")
    make(3, customer_name="", customer_email="only@example.com")
    make(4, customer_email="")
    make(5, total=None)
    make(6, total=Decimal("1234567.891"))
    make(7, cart_url="")
    make(8, cart_url="javascript:alert(1)")
    make(9, cart_url="https://shop.example/cart/" + "r" * 80 + "?a=1&b=<2>")
    make(10, cart_url="https://shop.example/caf\u0065\u0301/" + "e\u0301" * 30)
    make(11, cart_url="https://shop.example/" + "x" * 23)  # exactly 44 characters
    make(12, email_state=EmailState.EMAILED, last_email_at=timezone.now() - timedelta(days=3, hours=2))
    make(13, email_state=EmailState.CLICKED, last_email_at=timezone.now() - timedelta(minutes=90))
    make(14, status="completed", email_state=EmailState.EMAILED, last_email_at=timezone.now() - AGO)
    make(15, order_hubspot_id="555", email_state=EmailState.EMAILED, last_email_at=timezone.now() - AGO)
    make(16, customer_email="gone@example.com")
    Suppression.objects.create(
        email="gone@example.com", email_hash="h" * 64, source=SuppressionSource.UNSUBSCRIBE
    )
    make(17, name="\u202e\u2066bidi\u2069", customer_name="Łukasz Ñandú 東京")


def template_drawn(rows: list[Cart]) -> str:
    return engines["django"].from_string(TEMPLATE_ROWS).render({"rows": rows})


class TestRows:
    def test_the_rows_are_what_the_template_drew(self, support_client: Client) -> None:
        every_kind()
        rows = support_client.get("/carts/").context["rows"]
        states = {cart.recovery_state for cart in rows}
        assert {"new", "emailed", "clicked", "recovered", "unsubscribed", "not_emailable"} <= states
        assert len(rows) == 17
        drawn = str(cart_rows(rows))
        assert "    " + drawn == template_drawn(rows).split("\n", 1)[1]

    def test_dates_follow_the_time_zone_as_the_template_did(self, support_client: Client) -> None:
        every_kind()
        rows = support_client.get("/carts/").context["rows"]
        with timezone.override("America/Los_Angeles"):
            drawn = str(cart_rows(rows))
            assert "    " + drawn == template_drawn(rows).split("\n", 1)[1]
        assert "-08:00" in drawn or "-07:00" in drawn

    def test_the_page_shows_the_drawn_rows(self, support_client: Client) -> None:
        every_kind()
        page = support_client.get("/carts/").content.decode()
        html = page[page.index("<tbody>") : page.index("</tbody>")]
        assert html.count('<tr id="cart-row-') == 17
        assert "<script>alert" not in html and "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html
        assert "\u202e" not in html  # override characters are left out of shown HubSpot text
        assert 'href="javascript' not in html
        assert '<span class="cart-why">Unsubscribed</span>' in html
        assert '<span class="muted">No contact</span>' in html
        assert 'href="/carts/70001/"' in html
