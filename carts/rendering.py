"""Recovery emails rendered from staff-edited templates: a restricted template engine and a fixed context.

A template sees only the merge fields built here (plain strings and lists of them), through a small set of
tags and filters: no {% load %}, {% include %}, {% extends %}, {% url %}, {% debug %} or {% autoescape %}, and
no |safe. The HTML body is autoescaped, the text body and subject are not (they are not HTML).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.template import Context, Engine, Library, Template, defaultfilters, defaulttags

from carts.links import click_url, unsubscribe_url
from carts.models import Cart, RecoveryTemplate, is_web_link

if TYPE_CHECKING:
    from carts.models import RecoverySend

# The merge fields, named for the editor's list.
MERGE_FIELDS: tuple[tuple[str, str], ...] = (
    ("first_name", 'The contact\'s first name (may be empty: use |default:"there")'),
    (
        "items",
        "The cart's line items: {% for item in items %}{{ item.name }} {{ item.quantity }} "
        "{{ item.price }} {{ item.image_url }}{% endfor %}",
    ),
    ("total", "The cart's total, e.g. 49.90"),
    ("currency", "The cart's currency code, e.g. EUR"),
    ("store", "The store the cart was started in"),
    ("recovery_link", "The tracked link back to the cart"),
    ("unsubscribe_link", "The one-click unsubscribe link"),
)

ALLOWED_TAGS = ("if", "for", "with", "comment", "firstof", "spaceless", "cycle", "now", "verbatim")
ALLOWED_FILTERS = (
    "add",
    "capfirst",
    "center",
    "cut",
    "date",
    "default",
    "default_if_none",
    "divisibleby",
    "escape",
    "first",
    "floatformat",
    "force_escape",
    "join",
    "last",
    "length",
    "linebreaks",
    "linebreaksbr",
    "ljust",
    "lower",
    "make_list",
    "phone2numeric",
    "pluralize",
    "random",
    "rjust",
    "slice",
    "striptags",
    "time",
    "title",
    "truncatechars",
    "truncatechars_html",
    "truncatewords",
    "truncatewords_html",
    "upper",
    "urlencode",
    "wordcount",
    "wordwrap",
    "yesno",
)

register = Library()
for _name in ALLOWED_TAGS:
    register.tags[_name] = defaulttags.register.tags[_name]
for _name in ALLOWED_FILTERS:
    register.filters[_name] = defaultfilters.register.filters[_name]


class _RestrictedEngine(Engine):
    # Django adds its default tags and filters (with {% load %}, {% include %}, …) to every engine; this one
    # has only the library above.
    default_builtins: list[str] = []


ENGINE = _RestrictedEngine(
    dirs=[],
    app_dirs=False,
    loaders=[],
    libraries={},
    builtins=["carts.rendering"],
    autoescape=True,
    debug=False,
    string_if_invalid="",
)


def compile_template(source: str) -> Template:
    """Compile a recovery template's subject or body; a bad one raises TemplateSyntaxError."""
    return ENGINE.from_string(source.replace("\x00", ""))


def check_recovery_template(source: str) -> None:
    """Raise TemplateSyntaxError when ``source`` uses anything but the allowed tags and filters."""
    compile_template(source)


def _money(value: Any) -> str:
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return ""
    if not amount.is_finite():
        return ""
    return f"{amount.quantize(Decimal('0.01')):f}"


def _quantity(value: Any) -> str:
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return ""
    if not amount.is_finite():
        return ""
    return f"{amount.normalize():f}" if amount == amount.to_integral_value() else f"{amount:f}"


def _image(properties: dict[str, Any]) -> str:
    """The first https image of a line item (hs_images: one or more URLs, comma-separated)."""
    for candidate in str(properties.get("hs_images") or "").split(","):
        url = candidate.strip()
        if url.startswith("https://") and is_web_link(url):
            return url
    return ""


def cart_items(cart: Cart) -> list[dict[str, str]]:
    """The cart's line items as merge fields, in HubSpot id order."""
    from hubspot_sync.models import Association, LineItem

    if not cart.hubspot_id:
        return []
    ids = Association.objects.from_record("carts", cart.hubspot_id, "line_items").values_list(
        "to_id", flat=True
    )
    items = LineItem.objects.filter(hubspot_id__in=list(ids), archived=False).order_by("hubspot_id")
    return [
        {
            "name": item.name,
            "quantity": _quantity(item.quantity) if item.quantity is not None else "",
            "price": _money(item.price) if item.price is not None else "",
            "image_url": _image(item.properties),
        }
        for item in items
    ]


def first_name(cart: Cart) -> str:
    contact = cart.contact()
    if contact is not None and contact.first_name:
        return contact.first_name
    return cart.customer_name.split(" ")[0] if cart.customer_name else ""


def merge_fields(cart: Cart, send: RecoverySend | None = None) -> dict[str, Any]:
    """The fixed context of a recovery email. Without a send (a preview) the links are stand-ins that lead
    to a page saying so."""
    if send is not None:
        recovery_link, unsubscribe_link = click_url(send), unsubscribe_url(send)
    else:
        recovery_link = f"{settings.SITE_URL}/r/c/preview/"
        unsubscribe_link = f"{settings.SITE_URL}/r/u/preview/"
    return {
        "first_name": first_name(cart),
        "items": cart_items(cart),
        "total": _money(cart.total) if cart.total is not None else "",
        "currency": cart.currency,
        "store": cart.store,
        "recovery_link": recovery_link,
        "unsubscribe_link": unsubscribe_link,
    }


def render_recovery_email(
    *, cart: Cart, template: RecoveryTemplate, send: RecoverySend | None = None
) -> tuple[str, str, str]:
    """(subject, text, html) of a recovery email about ``cart``; TemplateSyntaxError for a bad template."""
    fields = merge_fields(cart, send)
    subject_tpl = compile_template(template.subject)
    text_tpl = compile_template(template.text_body)
    html_tpl = compile_template(template.html_body)
    plain = Context(fields, autoescape=False)
    subject = " ".join(subject_tpl.render(plain).split())[:500]
    text = text_tpl.render(Context(fields, autoescape=False))
    html = html_tpl.render(Context(fields, autoescape=True))
    return subject, text, html
