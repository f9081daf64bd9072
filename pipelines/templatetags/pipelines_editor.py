"""Filters of the pipeline editor's templates."""

from __future__ import annotations

import unicodedata

from django import template

register = template.Library()

# Kept in a name being edited: the joiner of emoji sequences (HubSpot keeps it, and so does the service).
_KEPT = {"\u200d"}


@register.filter
def editable(value: object) -> str:
    """A name as its field shows it for editing: without invisible control and format characters (a
    right-to-left override would show "gnp.exe" as "exe.png"; the services refuse them in a new name), so
    what is seen is what is sent when the name is changed."""
    text = "" if value is None else str(value)
    return "".join(ch for ch in text if ch in _KEPT or unicodedata.category(ch) not in ("Cc", "Cf"))
