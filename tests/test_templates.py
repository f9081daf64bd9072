"""Checks every template can fail on without rendering it."""

from __future__ import annotations

import re
from pathlib import Path

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


def test_querystring_links_are_not_given_a_second_question_mark() -> None:
    # {% querystring %} writes the leading "?" itself: "?{% querystring page=2 %}" makes "??page=2", a
    # parameter named "?page", and a pager that never leaves page 1.
    doubled = [
        f"{path.relative_to(TEMPLATES)}:{number}"
        for path in sorted(TEMPLATES.rglob("*.html"))
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if re.search(r"\?\{%\s*querystring", line)
    ]
    assert doubled == []
