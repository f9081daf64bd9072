"""Recovery templates are rendered by a restricted engine with a fixed context: a template cannot reach
other data, load tag libraries, include files or turn escaping off."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.template import TemplateSyntaxError

from carts.models import Cart, RecoverySend, RecoveryTemplate
from carts.rendering import check_recovery_template, merge_fields, render_recovery_email
from hubspot_sync.models import Association, Contact, LineItem

pytestmark = pytest.mark.django_db


@pytest.fixture
def cart() -> Cart:
    Contact.objects.create(hubspot_id="501", email="ann@customer.example", first_name="Ann", last_name="Lee")
    cart = Cart.objects.create(
        hubspot_id="701",
        store="Main <Store>",
        total=Decimal("59.5"),
        currency="EUR",
        contact_hubspot_id="501",
        customer_email="ann@customer.example",
        cart_url="https://shop.example.com/cart/recover/701",
    )
    LineItem.objects.create(
        hubspot_id="801",
        name="Tea & <Biscuits>",
        quantity=Decimal("2"),
        price=Decimal("9.75"),
        properties={"hs_images": "https://cdn.example.com/tea.png"},
    )
    LineItem.objects.create(
        hubspot_id="802",
        name="Mug",
        quantity=Decimal("1"),
        price=Decimal("40"),
        properties={"hs_images": "javascript:x"},
    )
    for item in ("801", "802"):
        Association.objects.create(
            from_type="carts", from_id="701", to_type="line_items", to_id=item, type_id=590
        )
    return cart


def _template(body: str, subject: str = "Hello") -> RecoveryTemplate:
    return RecoveryTemplate(name="t", subject=subject, html_body=body, text_body=body)


def test_the_context_is_the_fixed_merge_fields(cart: Cart) -> None:
    fields = merge_fields(cart)
    assert set(fields) == {
        "first_name",
        "items",
        "total",
        "currency",
        "store",
        "recovery_link",
        "unsubscribe_link",
    }
    assert fields["first_name"] == "Ann" and fields["total"] == "59.50"
    assert fields["items"] == [
        {
            "name": "Tea & <Biscuits>",
            "quantity": "2",
            "price": "9.75",
            "image_url": "https://cdn.example.com/tea.png",
        },
        {"name": "Mug", "quantity": "1", "price": "40.00", "image_url": ""},
    ]


@pytest.mark.parametrize(
    "source",
    [
        "{{ cart.__class__ }}",
        "{{ settings.SECRET_KEY }}",
        "{{ items.0.__class__.__mro__ }}",
        "{{ request.user }}",
        "{{ send.token }}",
        "{{ cart.customer_email }}{{ user.password }}",
    ],
)
def test_a_template_reaches_no_other_data(cart: Cart, settings: Any, source: str) -> None:
    try:
        _subject, text, html = render_recovery_email(cart=cart, template=_template(source))
    except TemplateSyntaxError:
        return  # refused outright is fine too
    assert text.strip() == "" and html.strip() == ""
    assert settings.SECRET_KEY not in text + html


@pytest.mark.parametrize(
    "source",
    [
        "{% load static %}",
        "{% load i18n %}{% trans 'x' %}",
        "{% include 'base.html' %}",
        "{% extends 'base.html' %}",
        "{% debug %}",
        "{% url 'home' %}",
        "{% csrf_token %}",
        "{% autoescape off %}{{ first_name }}{% endautoescape %}",
        "{{ first_name|safe }}",
        "{{ items|safeseq }}",
        "{{ items|pprint }}",
        "{% templatetag openblock %}{% ssi '/etc/passwd' %}",
    ],
)
def test_tags_and_filters_outside_the_allowed_set_are_refused(cart: Cart, source: str) -> None:
    with pytest.raises(TemplateSyntaxError):
        check_recovery_template(source)
    with pytest.raises(TemplateSyntaxError):
        render_recovery_email(cart=cart, template=_template(source))


def test_the_html_part_is_escaped_and_the_text_part_is_not(cart: Cart) -> None:
    body = "{% for item in items %}[{{ item.name }}]{% endfor %} {{ store }} {{ first_name|upper }}"
    subject, text, html = render_recovery_email(
        cart=cart, template=_template(body, subject="{{ store }}\nBcc: evil@example.com")
    )
    assert "[Tea &amp; &lt;Biscuits&gt;]" in html and "Main &lt;Store&gt;" in html and "ANN" in html
    assert "[Tea & <Biscuits>]" in text and "Main <Store>" in text
    assert subject == "Main <Store> Bcc: evil@example.com", "one line: no header can be injected"


def test_the_common_tags_and_filters_work(cart: Cart) -> None:
    body = (
        "{% if items %}{{ items|length }} item{{ items|length|pluralize }}{% endif %}"
        "{% with n=first_name %}{{ n|default:'there' }}{% endwith %}"
        "{% for item in items %}{{ forloop.counter }}:{{ item.price|floatformat:2 }}"
        "{% empty %}none{% endfor %}"
    )
    _subject, text, _html = render_recovery_email(cart=cart, template=_template(body))
    assert text == "2 itemsAnn1:9.752:40.00"


def test_links_are_stand_ins_in_a_preview_and_signed_for_a_send(cart: Cart, settings: Any) -> None:
    settings.SITE_URL = "https://deck.example.com"
    body = "{{ recovery_link }} {{ unsubscribe_link }}"
    _s, preview, _h = render_recovery_email(cart=cart, template=_template(body))
    assert preview == "https://deck.example.com/r/c/preview/ https://deck.example.com/r/u/preview/"
    send = RecoverySend.objects.create(cart=cart, step=1, token="tok-render", to_email="ann@customer.example")
    _s, text, _h = render_recovery_email(cart=cart, template=_template(body), send=send)
    click, unsubscribe = text.split(" ")
    assert click.startswith("https://deck.example.com/r/c/tok-render:")
    assert unsubscribe.startswith("https://deck.example.com/r/u/tok-render:")


def test_the_default_template_renders_every_merge_field(cart: Cart, settings: Any) -> None:
    settings.SITE_URL = "https://deck.example.com"
    template = RecoveryTemplate.objects.get(is_default=True)
    send = RecoverySend.objects.create(
        cart=cart, step=1, token="tok-default", to_email="ann@customer.example"
    )
    subject, text, html = render_recovery_email(cart=cart, template=template, send=send)
    assert subject == "Ann, your cart at Main <Store> is waiting"
    for part in (text, html):
        assert "Ann" in part and "59.50 EUR" in part and "9.75" in part and "40.00" in part
        assert "https://deck.example.com/r/c/tok-default:" in part
        assert "https://deck.example.com/r/u/tok-default:" in part
    assert '<img src="https://cdn.example.com/tea.png"' in html
    assert "Tea &amp; &lt;Biscuits&gt;" in html and "Tea & <Biscuits>" in text
