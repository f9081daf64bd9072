"""The board and the table draw their filters from one partial (each page's Clear goes back to itself),
and the table's pages come from Django's Paginator, linked with the filters kept."""

from __future__ import annotations

import re
from html import unescape
from typing import Any

import pytest

from pipelines.models import Pipeline
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def pipeline() -> Pipeline:
    return factories.pipeline_with_stages(label="Online orders")


def filter_fields(html: str) -> list[str]:
    """The names of the filter inputs of the page's filter form, in order."""
    form = re.search(r'<form[^>]*class="filters".*?</form>', html, re.S)
    assert form is not None
    return re.findall(r'name="([a-z_]+)"', form.group(0))


def test_the_board_and_the_table_show_the_same_filters(support_client: Any, pipeline: Pipeline) -> None:
    factories.OrderFactory(stage=pipeline.stages.get(label="Open"), store="Portland")
    query = {"store": "Portland", "stale": "on"}
    board = support_client.get(f"/boards/{pipeline.pk}/", query).content.decode()
    table = support_client.get(f"/boards/{pipeline.pk}/table/", query).content.decode()
    expected = ["q", "store", "status", "currency", "created_from", "created_to", "sync", "stale"]
    assert filter_fields(board) == filter_fields(table) == expected
    for html in (board, table):
        assert '<option value="Portland" selected>Portland</option>' in html
        assert re.search(r'<input type="checkbox" name="stale"[^>]*checked', html)
    assert f'<a href="/boards/{pipeline.pk}/" class="button">Clear</a>' in board
    assert f'<a href="/boards/{pipeline.pk}/table/" class="button">Clear</a>' in table


def test_the_table_pages_link_with_the_filters_kept(support_client: Any, pipeline: Pipeline) -> None:
    for _ in range(120):
        factories.OrderFactory(stage=pipeline.stages.get(label="Open"), store="Portland")
    first = support_client.get(f"/boards/{pipeline.pk}/table/", {"store": "Portland"})
    html = unescape(first.content.decode())
    assert first.context["page_obj"].paginator.num_pages == 3
    assert "← Previous" not in html
    assert 'href="?store=Portland&page=2">Next →' in html
    middle = unescape(
        support_client.get(
            f"/boards/{pipeline.pk}/table/", {"store": "Portland", "page": "2"}
        ).content.decode()
    )
    assert 'href="?store=Portland&page=1">← Previous' in middle
    assert 'href="?store=Portland&page=3">Next →' in middle
    assert "Page 2" in middle
    last = support_client.get(f"/boards/{pipeline.pk}/table/", {"store": "Portland", "page": "9"})
    assert last.context["page_obj"].number == 3 and len(last.context["rows"]) == 20
    assert "Next →" not in last.content.decode()
