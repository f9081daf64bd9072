"""The signed links of a recovery email: the tracked link back to the cart and the one-click unsubscribe.

Each names the send's random token, signed with a timestamp (django.core.signing) and a salt of its own, so
a click link can't be turned into an unsubscribe link, a changed token is refused, and a link older than
CARTS_LINK_MAX_AGE_DAYS is refused as expired.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings
from django.core import signing
from django.urls import reverse

if TYPE_CHECKING:
    from carts.models import RecoverySend

CLICK_SALT = "carts.recovery.click"
UNSUBSCRIBE_SALT = "carts.recovery.unsubscribe"


class LinkInvalid(Exception):
    """A link whose signature does not match (tampered, truncated, or from elsewhere)."""


class LinkExpired(LinkInvalid):
    """A genuine link older than CARTS_LINK_MAX_AGE_DAYS."""


def sign(token: str, salt: str) -> str:
    return signing.TimestampSigner(salt=salt).sign(token)


def unsign(value: str, salt: str) -> str:
    """The token a link names; LinkExpired or LinkInvalid when it can't be trusted."""
    if not value or len(value) > 300 or "\x00" in value:
        raise LinkInvalid("malformed")
    max_age = settings.CARTS_LINK_MAX_AGE_DAYS * 86400
    try:
        return signing.TimestampSigner(salt=salt).unsign(value, max_age=max_age)
    except signing.SignatureExpired as exc:
        raise LinkExpired(str(exc)) from exc
    except signing.BadSignature as exc:
        raise LinkInvalid(str(exc)) from exc


def click_url(send: RecoverySend) -> str:
    return settings.SITE_URL + reverse("recovery-click", args=[sign(send.token, CLICK_SALT)])


def unsubscribe_url(send: RecoverySend) -> str:
    return settings.SITE_URL + reverse("recovery-unsubscribe", args=[sign(send.token, UNSUBSCRIBE_SALT)])
