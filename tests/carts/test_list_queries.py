"""The carts list's reads made fast stay the same reads: the substring index finds exactly what the plain
search finds and follows every write; the filters' stores and currencies are the distinct ones; the tab counts
and every page under value ranges, states, searches and sorts are what the plain queries give."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.core.paginator import Paginator
from django.db import connection
from django.db.models import Count
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from carts import queries, search
from carts.forms import CartFilterForm
from carts.models import Cart, EmailState
from carts.recovery_state import recovery_state_refresh
from carts.views import PAGE, CountedPaginator

pytestmark = pytest.mark.django_db

OLD = timedelta(hours=3)


def values_of(n: int, **values: Any) -> dict[str, Any]:
    defaults: dict[str, Any] = {
        "hubspot_id": str(80_000 + n),
        "name": f"Cart #{n}",
        "external_id": f"ext-{n}",
        "status": "abandoned",
        "cart_url": f"https://shop.example/cart/{n}",
        "total": Decimal(n % 97) + Decimal("0.50"),
        "currency": ("EUR", "USD", "GBP")[n % 3],
        "store": ("North", "South", "")[n % 3],
        "customer_name": f"Kim {n}",
        "customer_email": f"kim{n}@example.com",
        "remote_updated_at": timezone.now() - OLD - timedelta(hours=n),
    }
    defaults.update(values)
    # What Cart.save() sets on a new cart (bulk_create doesn't call it): its customer's last change.
    defaults.setdefault("customer_changed_at", defaults["remote_updated_at"])
    return defaults


def make(n: int, **values: Any) -> Cart:
    return Cart.objects.create(**values_of(n, **values))


def make_many(numbers: range, **values: Any) -> None:
    """Many carts at once, with their stored recovery state worked out as the services keep it."""
    Cart.objects.bulk_create([Cart(**values_of(n, **values)) for n in numbers])
    recovery_state_refresh()


def found(q: str, *, narrow: bool) -> set[str]:
    carts = queries.filtered(queries.console_carts(), {"q": q}, narrow=narrow)
    return set(carts.values_list("hubspot_id", flat=True))


# --- the substring index ------------------------------------------------------------------------------------


class TestSearchIndex:
    QUERIES = [
        "kim1",
        "KIM1@EXAMPLE",
        "@example.com",
        "im 1",
        "Cart #1",
        "#12",
        "80007",
        "EXT-4",
        "ext-",
        "Łukasz",
        "łUKASZ",
        "Ñandú",
        'say "hi"',
        "100%",
        "a_b",
        "x\\y",
        "東京",
        "東京都",
        "zz",  # too short for the index: searched without it
        "k",
        "nothing like this",
    ]

    @pytest.fixture
    def carts(self) -> None:
        for n in range(1, 30):
            make(n)
        make(40, customer_name="Łukasz Ñandú", customer_email="lukasz@example.com")
        make(41, name='Cart say "hi" there', customer_name="100% Kim", customer_email="a_b@example.com")
        make(42, customer_name="x\\y 東京都", customer_email="tokyo@example.com")
        make(43, customer_name="ab", name="", external_id="")

    def test_the_index_is_in_place_after_every_migration(self) -> None:
        """On SQLite a migration that rebuilds carts_cart (most column changes do) drops its triggers, and the
        index would silently stop following the carts: such a migration must create them again."""
        with connection.cursor() as cursor:
            if connection.vendor == "sqlite":
                cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
                triggers = {row[0] for row in cursor.fetchall()}
                for kind in ("insert", "update", "delete"):
                    assert f"carts_cart_search_{kind}" in triggers
            else:
                cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'cart_search'")
                assert "gin_trgm_ops" in cursor.fetchone()[0]

    @pytest.mark.usefixtures("carts")
    @pytest.mark.parametrize("q", QUERIES)
    def test_the_index_finds_what_the_plain_search_finds(self, q: str) -> None:
        assert found(q, narrow=True) == found(q, narrow=False)

    @pytest.mark.usefixtures("carts")
    def test_the_index_narrows_a_search_of_three_characters_or_more(self) -> None:
        sql = str(search.candidates(Cart.objects.all(), "kim1").query)
        short = str(search.candidates(Cart.objects.all(), "ki").query)
        if connection.vendor == "sqlite":
            assert "carts_cart_search MATCH" in sql
        else:
            assert "UPPER" in sql and "||" in sql
        assert "MATCH" not in short and "||" not in short
        assert found("kim12", narrow=True) == {"80012"}

    def test_the_index_follows_every_write(self) -> None:
        cart = make(1, customer_email="old@example.com")
        make(2)
        assert found("old@exa", narrow=True) == {"80001"}
        cart.customer_email = "new@example.com"
        cart.save()
        assert found("old@exa", narrow=True) == set()
        assert found("new@exa", narrow=True) == {"80001"}
        Cart.objects.filter(pk=cart.pk).update(customer_name="Renamed Person")
        assert found("renamed", narrow=True) == {"80001"}
        Cart.objects.filter(pk=cart.pk).update(archived=True)  # not a searched column: no index change
        assert found("renamed", narrow=True) == set()  # no longer listed
        Cart.objects.filter(pk=cart.pk).update(archived=False)
        cart.delete()
        assert found("renamed", narrow=True) == set()
        assert found("kim2@", narrow=True) == {"80002"}
        assert found("kim2@", narrow=True) == found("kim2@", narrow=False)

    def test_a_paged_write_leaves_the_index_as_the_triggers_would(self) -> None:
        """The sync's way (index_by_page): the page's entries out, the write with the triggers paused, the
        page back in one statement."""
        for n in range(1, 13):
            make(n)
        ids = [str(80_000 + n) for n in range(1, 13)] + ["80099"]
        with search.index_by_page(None, ids):
            Cart.objects.filter(hubspot_id="80003").update(customer_email="moved@example.com")
            make(99, customer_name="Brand New")
        assert found("moved@", narrow=True) == {"80003"}
        assert found("kim3@", narrow=True) == set()
        assert found("brand new", narrow=True) == {"80099"}
        for q in ("kim", "@example", "Cart #1", "ext-1"):
            assert found(q, narrow=True) == found(q, narrow=False)
        if connection.vendor == "sqlite":
            with connection.cursor() as cursor:
                cursor.execute("INSERT INTO carts_cart_search (carts_cart_search) VALUES ('integrity-check')")
                cursor.execute("SELECT COUNT(*) FROM carts_cart_search_paused")
                assert cursor.fetchone()[0] == 0


# --- the filters' choices ----------------------------------------------------------------------------------


def test_the_filter_choices_are_the_distinct_stores_and_currencies_of_live_carts() -> None:
    assert queries.filter_choices() == {"stores": [], "currencies": []}
    for n in range(1, 20):
        make(n)
    make(50, store="Zeta", currency="CHF", archived=True)  # archived: not offered
    make(51, store="Alpha", currency="")
    make(52, store="", currency="JPY")
    pairs = Cart.objects.filter(archived=False).values_list("store", "currency").distinct()
    expected = {
        "stores": sorted({s for s, _ in pairs if s}),
        "currencies": sorted({c for _, c in pairs if c}),
    }
    assert queries.filter_choices() == expected
    assert expected["stores"] == ["Alpha", "North", "South"]
    assert "CHF" not in expected["currencies"] and "JPY" in expected["currencies"]


# --- counts and pages ---------------------------------------------------------------------------------------

FILTERS: list[dict[str, str]] = [
    {},
    {"state": "new"},
    {"state": "emailed"},
    {"age": "older"},
    {"age": "day"},
    {"min_total": "10", "max_total": "60"},
    {"min_total": "10", "max_total": "60", "state": "new", "store": "North"},
    {"min_total": "10", "state": "emailed", "sort": "oldest"},
    {"max_total": "40", "sort": "oldest"},
    {"store": "South", "currency": "USD"},
    {"q": "kim1"},
    {"q": "example.com"},
    {"q": "example.com", "min_total": "5", "max_total": "50"},
]


def plain_pages(filters: dict[str, Any]) -> tuple[dict[str, int], list[list[str]]]:
    """The counts and pages as one plain query each gives them (no index hints, no two-step pages)."""
    matching = queries.filtered(queries.console_carts(), filters, narrow=False)
    counts = dict.fromkeys(["new", "emailed", "clicked", "recovered", "unsubscribed", "not_emailable"], 0)
    grouped = matching.order_by().values("recovery_state").annotate(n=Count("pk"))
    for row in grouped.values_list("recovery_state", "n"):
        counts[row[0]] = row[1]
    counts["all"] = sum(counts.values())
    carts = queries.ordered(queries.in_state(matching, filters), filters.get("sort", "newest"))
    pages = Paginator(carts, PAGE)
    return counts, [[c.hubspot_id for c in pages.page(n).object_list] for n in pages.page_range]


@pytest.fixture
def many_carts() -> None:
    now = timezone.now()
    Cart.objects.bulk_create(
        [
            Cart(
                **values_of(
                    n,
                    email_state=EmailState.EMAILED if n % 4 == 0 else EmailState.NEW,
                    last_email_at=now - timedelta(hours=n) if n % 4 == 0 else None,
                    # Ties in the change time: the id decides.
                    remote_updated_at=now - OLD - timedelta(days=n // 3),
                    customer_email="" if n % 17 == 0 else f"kim{n}@example.com",
                )
            )
            for n in range(1, 130)
        ]
    )
    recovery_state_refresh()


@pytest.mark.usefixtures("many_carts")
@pytest.mark.parametrize("params", FILTERS)
@pytest.mark.parametrize("sort", ["newest", "oldest", "value_high", "last_email"])
def test_counts_and_every_page_are_what_the_plain_queries_give(params: dict[str, str], sort: str) -> None:
    filters = CartFilterForm({**params, "sort": sort}).active()
    expected_counts, expected_pages = plain_pages(filters)
    now = timezone.now()
    console = queries.console_carts(now)
    counts = queries.state_counts(queries.filtered(console, filters, now=now))
    assert counts == expected_counts
    total = counts[filters["state"]] if filters.get("state") else counts["all"]
    source = queries.page_source(console, filters, sort, matches=total, now=now)
    paginator = CountedPaginator(source, PAGE, count=total)
    pages = [[c.hubspot_id for c in paginator.page(n).object_list] for n in paginator.page_range]
    assert pages == expected_pages


@pytest.mark.usefixtures("many_carts")
def test_a_dense_search_reads_carts_in_order_and_a_sparse_one_through_the_index(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = timezone.now()
    console = queries.console_carts(now)
    dense = queries.page_source(console, {"q": "example.com"}, "newest", matches=5000, now=now)
    sparse = queries.page_source(console, {"q": "example.com"}, "newest", matches=3, now=now)
    marker = "carts_cart_search" if connection.vendor == "sqlite" else "||"
    assert marker not in str(dense.query) and marker in str(sparse.query)  # type: ignore[union-attr]
    assert list(dense[0:PAGE]) == list(sparse[0:PAGE])


@pytest.mark.usefixtures("many_carts")
@pytest.mark.parametrize(
    "params",
    [
        {},
        {"state": "new", "store": "North", "min_total": "10", "max_total": "60"},
        {"q": "kim1"},
        {"q": "kim7@example.com"},
    ],
)
def test_the_list_page_asks_the_same_number_of_queries_with_more_carts(
    support_client: Client, params: dict[str, str]
) -> None:
    support_client.get("/carts/", params)
    with CaptureQueriesContext(connection) as few:
        assert support_client.get("/carts/", params).status_code == 200
    make_many(range(200, 400))
    with CaptureQueriesContext(connection) as more:
        assert support_client.get("/carts/", params).status_code == 200
    assert len(more.captured_queries) == len(few.captured_queries)
