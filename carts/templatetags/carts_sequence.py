"""The cart drawer's sequence block: each step sent, skipped (why) or due (when)."""

from __future__ import annotations

from django import template

from carts.models import Cart
from carts.sequences import StepLine, cart_steps

register = template.Library()

STATE_LABELS = {
    "sent": "Sent",
    "queued": "Queued",
    "sending": "Sending",
    "uncertain": "Uncertain",
    "skipped": "Skipped",
    "failed": "Failed",
    "due": "Due",
    "waiting": "Waiting",
    "off": "Off",
    "stopped": "Won't be sent",
}


@register.simple_tag
def sequence_steps_of(cart: Cart) -> list[dict[str, object]]:
    """``{% sequence_steps_of cart as steps %}``: the rows of the block."""
    lines: list[StepLine] = cart_steps(cart)
    return [
        {
            "step": line.step,
            "state": line.state,
            "label": STATE_LABELS.get(line.state, line.state),
            "when": line.when,
            "why": line.why,
            "manual": line.manual,
        }
        for line in lines
    ]
