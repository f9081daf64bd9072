"""The recovery-template editor's helpers: the merge fields it lists, rendering unsaved content for the live
preview (against a chosen cart or a sample one), and saving a checked template."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.db import transaction

from carts import services
from carts.models import Cart, RecoveryTemplate
from carts.sending import sample_cart

# What a template may use (the renderer's fixed context; nothing else is reachable).
MERGE_FIELDS: list[tuple[str, str]] = [
    ("{{ first_name }}", "The contact's first name (empty when unknown)"),
    ("{% for item in items %}…{% endfor %}", "The cart's line items"),
    ("{{ item.name }}", "An item's name"),
    ("{{ item.quantity }}", "An item's quantity"),
    ("{{ item.price }}", "An item's price"),
    ("{{ item.image_url }}", "An item's image address, when HubSpot has one"),
    ("{{ total }}", "The cart's total"),
    ("{{ currency }}", "The cart's currency code"),
    ("{{ store }}", "The store the cart is from"),
    ("{{ recovery_link }}", "The tracked link back to the cart"),
    ("{{ unsubscribe_link }}", "The one-click unsubscribe link"),
]


def _unsaved(data: dict[str, Any]) -> RecoveryTemplate:
    return RecoveryTemplate(
        name=data["name"], subject=data["subject"], html_body=data["html_body"], text_body=data["text_body"]
    )


def template_render(data: dict[str, Any], *, cart: Cart | None) -> tuple[str, str, str] | str:
    """(subject, text, html) of unsaved template content, or what is wrong with it, in words."""
    try:
        return services.render_recovery_email(cart=cart or sample_cart(), template=_unsaved(data))
    # A template is staff-written text compiled by a restricted engine: whatever it raises (a syntax
    # error, a tag it may not use, a filter given a bad argument) is shown beside the editor.
    except Exception as error:
        return f"The template cannot be rendered: {error}"


def template_error(data: dict[str, Any], *, cart: Cart | None) -> str:
    rendered = template_render(data, cart=cart)
    return rendered if isinstance(rendered, str) else ""


def new_template_initial() -> dict[str, str]:
    """A new template starts as a copy of the default one."""
    base = RecoveryTemplate.objects.order_by("-is_default", "pk").first()
    if base is None:
        return {"name": "New template"}
    return {
        "name": f"Copy of {base.name}"[:120],
        "subject": base.subject,
        "html_body": base.html_body,
        "text_body": base.text_body,
    }


@transaction.atomic
def template_save(*, template: RecoveryTemplate | None, data: dict[str, Any], by: User) -> RecoveryTemplate:
    """Save a template's content (checked by rendering it first), recording who changed it."""
    template = template or RecoveryTemplate()
    template.name = data["name"]
    template.subject = data["subject"]
    template.html_body = data["html_body"]
    template.text_body = data["text_body"]
    template.updated_by = by
    template.save()
    return template
