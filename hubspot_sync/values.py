"""Typed parsing of a property value a person entered, into the string HubSpot takes.

Every form that sets HubSpot properties (an inline edit, the values a move asks for, a retry's correction)
parses through ``parse_property_value``, so a value is checked the same way wherever it is entered.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation

# HubSpot's limit for a string property value.
# Reference: https://developers.hubspot.com/docs/guides/api/crm/properties#property-values
MAX_TEXT = 65_536
# Numbers: HubSpot keeps them as doubles (15–16 significant digits), and the cache's money columns hold
# |x| < 10^14 with a few decimals; beyond either a value would be rounded or dropped without a word.
MAX_NUMBER = Decimal("1e14")
MAX_DECIMAL_PLACES = 6
MAX_NUMBER_TEXT = 64  # characters, before parsing: no one types a longer number
# Dates and datetimes: 1900 leaves room for birth dates and old records; 2200 is far past any order,
# delivery or renewal date, keeps typos such as year 20245 or 1 out, and keeps epoch milliseconds well
# inside what HubSpot and browsers handle.
FIRST_YEAR = 1900
LAST_YEAR = 2200

TRUE_FALSE = ("true", "false")
# A control character other than tab and line feed (carriage returns are folded into line feeds first):
# PostgreSQL's jsonb refuses NUL, and the others are invisible in every page that shows the value.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


def parse_property_value(
    raw: str,
    *,
    type: str,
    field_type: str = "",
    options: Collection[str] | None = None,
    label: str = "This property",
) -> tuple[str, str]:
    """(value to send, error message): the value in HubSpot's string form, checked against its type.
    An empty value is "" (HubSpot clears a property with it). ``options`` are the allowed values of an
    enumeration (the visible ones); a checkbox enumeration takes several, separated by ";"."""
    text = raw.replace("\r\n", "\n").replace("\r", "\n").strip()
    if text == "":
        return "", ""
    if len(text) > MAX_TEXT:
        return "", f"{label} is too long for HubSpot ({MAX_TEXT:,} characters at most)."
    if _CONTROL.search(text):
        return "", f"{label} contains a control character; type it again without it."
    if options or type == "enumeration":
        return _option(text, field_type=field_type, options=options or (), label=label)
    if type == "number":
        return _number(text, label)
    if type == "date":
        return _date(text, label)
    if type == "datetime":
        return _datetime(text, label)
    if type == "bool":
        if text.lower() not in TRUE_FALSE:
            return "", f"{label} is yes or no."
        return text.lower(), ""
    return text, ""


def _option(text: str, *, field_type: str, options: Collection[str], label: str) -> tuple[str, str]:
    if field_type == "checkbox":
        picked = list(dict.fromkeys(v for v in text.split(";") if v != ""))
    else:
        picked = [text]
    if not picked or any(v not in options for v in picked):
        return "", f"Choose one of the options for {label}."
    return ";".join(picked), ""


def _number(text: str, label: str) -> tuple[str, str]:
    error = f"{label} takes a number."
    if len(text) > MAX_NUMBER_TEXT:
        return "", error
    try:
        number = Decimal(text)
    except InvalidOperation:
        return "", error
    if not number.is_finite():
        return "", error
    if number.is_zero():
        return "0", ""
    sign, digits, exponent = number.as_tuple()
    assert isinstance(exponent, int)  # finite, checked above
    if number.adjusted() >= MAX_NUMBER.adjusted():
        return "", f"{label} is too large (at most {MAX_NUMBER.adjusted()} digits before the point)."
    # Trailing zeros after the point are not decimal places anyone needs ("1.50" is 1.5).
    while exponent < 0 and digits and digits[-1] == 0:
        digits, exponent = digits[:-1], exponent + 1
    if -exponent > MAX_DECIMAL_PLACES:
        return "", f"{label} takes at most {MAX_DECIMAL_PLACES} decimal places."
    return format(Decimal((sign, digits, exponent)), "f"), ""


def _in_range(year: int) -> bool:
    return FIRST_YEAR <= year <= LAST_YEAR


def _date(text: str, label: str) -> tuple[str, str]:
    try:
        day = date.fromisoformat(text)
    except ValueError:
        return "", f"{label} takes a date (YYYY-MM-DD)."
    if not _in_range(day.year):
        return "", f"{label} takes a date between {FIRST_YEAR} and {LAST_YEAR}."
    return day.isoformat(), ""


def _datetime(text: str, label: str) -> tuple[str, str]:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return "", f"{label} takes a date and time."
    # A time without an offset is UTC: the editors show and take times in UTC. One with an offset is that
    # moment, converted.
    try:
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except OverflowError:
        moment = datetime.min.replace(tzinfo=UTC)
    if not _in_range(moment.year):
        return "", f"{label} takes a date between {FIRST_YEAR} and {LAST_YEAR}."
    return format_datetime(moment), ""


def format_datetime(moment: datetime) -> str:
    """HubSpot's datetime form: UTC, milliseconds, a four-digit year (``strftime`` drops the leading zeros
    of a year before 1000)."""
    m = moment.astimezone(UTC)
    return (
        f"{m.year:04d}-{m.month:02d}-{m.day:02d}T{m.hour:02d}:{m.minute:02d}:{m.second:02d}."
        f"{m.microsecond // 1000:03d}Z"
    )
