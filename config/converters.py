"""Path converters shared by every app's URLs."""

from __future__ import annotations


class IdConverter:
    """A database id in a path: digits that fit a 64-bit key. A longer number matches no URL (a 404), where
    Django's ``int`` would pass it on to a query that some databases refuse with an error."""

    # 18 digits are below 2**63 - 1, the largest BigAutoField value.
    regex = "[0-9]{1,18}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int | str) -> str:
        return str(value)


class KeyConverter:
    """A HubSpot id or property name in a path (digits, "tmp-…" ids, snake_case names): word characters,
    dashes and dots, at most 100. A NUL byte or other control character matches no URL (a 404), where ``str``
    passed it on to PostgreSQL, which refuses it in text with an error."""

    regex = r"[-\w.]{1,100}"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return str(value)
