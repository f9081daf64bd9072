"""Typed parsing of entered property values (orders.details.clean_value, which the inline editor, the move
prompt and a retry's corrections share): offsets converted to UTC, sane years, bounded numbers, no control
characters, capped lengths, enumerations only from their options."""

from __future__ import annotations

from typing import Any

import pytest

from orders.details import Field, clean_value


def field(type_: str, *, options: list[str] | None = None, field_type: str = "text") -> Field:
    return Field(
        name="p",
        label="Value",
        type=type_,
        field_type=field_type,
        group="g",
        value="",
        options=[(o, o.title()) for o in options or []],
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2024-05-01T10:00+05:00", "2024-05-01T05:00:00.000Z"),
        ("2024-05-01T10:00:30-02:30", "2024-05-01T12:30:30.000Z"),
        ("2024-05-01T10:00:00Z", "2024-05-01T10:00:00.000Z"),
        ("2024-05-01T23:30-01:00", "2024-05-02T00:30:00.000Z"),
        ("2024-05-01T10:00", "2024-05-01T10:00:00.000Z"),  # no offset: the editors take UTC
        ("2024-05-01T10:00:00.123456", "2024-05-01T10:00:00.123Z"),
        ("1900-01-01T00:00", "1900-01-01T00:00:00.000Z"),
    ],
)
def test_datetimes_are_converted_to_utc(raw: str, expected: str) -> None:
    assert clean_value(field("datetime"), raw) == (expected, "")


@pytest.mark.parametrize(
    "raw",
    [
        "0001-01-01T00:00",
        "0001-01-01T00:00+05:00",
        "1899-12-31T23:59",
        "2201-01-01T00:00",
        "9999-12-31T23:59-05:00",
    ],
)
def test_datetimes_outside_the_sane_range_are_refused(raw: str) -> None:
    value, error = clean_value(field("datetime"), raw)
    assert value == "" and "between 1900 and 2200" in error


@pytest.mark.parametrize(("raw", "ok"), [("2024-02-29", True), ("0001-01-01", False), ("2300-01-01", False)])
def test_dates_are_in_range(raw: str, ok: bool) -> None:
    value, error = clean_value(field("date"), raw)
    assert (value, bool(error)) == ((raw, False) if ok else ("", True))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("12.50", "12.5"),
        ("1E+3", "1000"),
        ("-0.000001", "-0.000001"),
        ("0E-99999", "0"),
        ("99999999999999", "99999999999999"),
    ],
)
def test_numbers_are_written_plainly(raw: str, expected: str) -> None:
    assert clean_value(field("number"), raw) == (expected, "")


@pytest.mark.parametrize(
    "raw",
    [
        "1E+999999",
        "NaN",
        "-Infinity",
        "Infinity",
        "sNaN",
        "1e14",
        "-123456789012345",
        "0.0000001",
        "1E-999999",
        "1" * 100,
        "ten",
    ],
)
def test_numbers_are_finite_and_bounded(raw: str) -> None:
    value, error = clean_value(field("number"), raw)
    assert value == "" and error.startswith("Value ")


@pytest.mark.parametrize("raw", ["a\x00b", "\x00", "bell\x07", "esc\x1b[31m", "del\x7f", "c1\x85x"])
def test_control_characters_are_refused(raw: str) -> None:
    value, error = clean_value(field("string"), raw)
    assert value == "" and "control character" in error


def test_tabs_and_line_breaks_are_kept() -> None:
    assert clean_value(field("string"), "a\tb\r\nc\rd") == ("a\tb\nc\nd", "")


def test_text_is_capped_at_hubspots_limit() -> None:
    assert clean_value(field("string"), "x" * 65_536) == ("x" * 65_536, "")
    value, error = clean_value(field("string"), "x" * 100_000)
    assert value == "" and "65,536" in error


@pytest.mark.parametrize(
    ("options", "field_type", "raw", "expected"),
    [
        (["packing", "shipped"], "select", "shipped", ("shipped", "")),
        (["packing", "shipped"], "select", "teleported", None),
        (["packing", "shipped"], "select", "packing;shipped", None),
        (["a", "b", "c"], "checkbox", "a;c;a", ("a;c", "")),
        (["a", "b"], "checkbox", "a;x", None),
        ([], "select", "anything", None),  # an enumeration without options takes no value
    ],
)
def test_enumerations_take_only_their_options(
    options: list[str], field_type: str, raw: str, expected: Any
) -> None:
    result = clean_value(field("enumeration", options=options, field_type=field_type), raw)
    if expected is None:
        assert result[0] == "" and "Choose one of the options" in result[1]
    else:
        assert result == expected


def test_booleans_and_empty_values() -> None:
    assert clean_value(field("bool"), "TRUE") == ("true", "")
    assert clean_value(field("bool"), "maybe")[1] == "Value is yes or no."
    assert clean_value(field("number"), "   ") == ("", "")  # "" clears the value in HubSpot
