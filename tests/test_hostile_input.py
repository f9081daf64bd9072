"""No input gives a server error: hostile values in every query parameter, form field and path parameter of
every URL, by GET and POST, as each role.

The URLs come from walking the resolver, so a URL added later is covered the day it is added. The fields come
from the forms (and htmx targets) of every page, found by fetching each page as the role, plus the query
names the views read. Path parameters get the ids of a small dataset and hostile ones. Runs on whichever
database the suite uses (SQLite and PostgreSQL in CI).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
from celery.app.task import Task
from django.test import Client
from django.urls import Resolver404, resolve

from orders.models import Order
from tests import urlwalk
from tests.urlwalk import ROLES, Dataset, Route

pytestmark = pytest.mark.django_db

ROUTES = urlwalk.routes()

# Values no form would send: non-numbers, numbers past every column's range, far and impossible dates,
# NUL bytes, 100 kB strings, markup, unknown ids.
HOSTILE = [
    "abc",
    "-1",
    "99999999999999999999",
    "-99999999999999999999",
    "1e999",
    "NaN",
    "9999-12-31",
    "0001-01-01",
    "2026-02-30",
    "9999-12-31T23:59:59+14:00",
    "nul\x00byte",
    "x" * 100_000,
    "<script>alert(1)</script>",
    "unknown-987654321",
]
# The hardest of them, for names sent one at a time outside a form.
ONE_AT_A_TIME = [
    "abc",
    "-1",
    "99999999999999999999",
    "1e999",
    "9999-12-31",
    "0001-01-01",
    "nul\x00byte",
    "x" * 100_000,
    "unknown-987654321",
]
# For path parameters (an int converter takes only digits; the rest reach str and slug parameters).
PATH_HOSTILE = ["99999999999999999999", "0", "987654321", "abc", "nul\x00byte", "x" * 5_000]
# Names the views read from the query string or the body besides the fields their pages' forms show.
KNOWN_NAMES = [
    "page",
    "q",
    "store",
    "status",
    "currency",
    "created_from",
    "created_to",
    "sync",
    "stale",
    "after",
    "v",
    "filters",
    "scope",
    "stage",
    "from_stage",
    "selected",
    "confirm",
    "kind",
    "name",
    "query",
    "value",
    "next",
    "ids",
    "action",
]

# role -> target route name -> (source route name, index of its real-id combination): the pages whose forms
# post or link to the target. Found once per role by fetching every page.
_SOURCES: dict[str, dict[str, set[tuple[str, int]]]] = {}


@pytest.fixture(scope="module")
def shared_world(django_db_setup: None, django_db_blocker: Any) -> Iterator[Dataset]:
    """Built once for the module; each test runs in a transaction that is rolled back, so what one test's
    requests change, the next never sees."""
    with django_db_blocker.unblock():
        data = urlwalk.build_dataset()
    yield data
    with django_db_blocker.unblock():
        urlwalk.remove_dataset()


@pytest.fixture
def world(
    shared_world: Dataset, db: None, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> Iterator[Dataset]:
    # Sign-in pages hash every password they are sent: a fast hasher keeps hundreds of them quick.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # Input handling is under test, not tasks: nothing is queued (the broker is shared with other runs).
    monkeypatch.setattr(Task, "apply_async", lambda *args, **kwargs: None)
    # Each 5xx is reported below with its exception; the request log's tracebacks would only repeat them.
    monkeypatch.setattr(logging.getLogger("django.request"), "disabled", True)
    yield shared_world


def client_for(role: str, data: Dataset) -> Client:
    client = Client(raise_request_exception=False)
    if (user := data.users[role]) is not None:
        client.force_login(user)
    return client


def _route_name(path: str) -> str | None:
    try:
        return resolve(urlsplit(path).path).view_name
    except Resolver404:
        return None


def _pages(route: Route, data: Dataset) -> list[str]:
    return [urlwalk.fill(route, combo) for combo in urlwalk.real_values(route, data)]


def sources(role: str, data: Dataset) -> dict[str, set[tuple[str, int]]]:
    """Which pages carry forms aimed at each route, for this role."""
    if role in _SOURCES:
        return _SOURCES[role]
    client = client_for(role, data)
    found: dict[str, set[tuple[str, int]]] = {}
    for route in ROUTES:
        for index, path in enumerate(_pages(route, data)):
            response = client.get(path)
            if response.status_code != 200 or "html" not in response.get("Content-Type", ""):
                continue
            for form in urlwalk.parse(response.content.decode()).forms:
                target = _route_name(form.action or path)
                if target:
                    found.setdefault(target, set()).add((route.name, index))
    _SOURCES[role] = found
    return found


def forms_for(route: Route, role: str, data: Dataset, client: Client) -> list[urlwalk.Form]:
    """The forms aimed at this route on the pages that carry them, with this dataset's values."""
    by_name = {r.name: r for r in ROUTES}
    forms = []
    for source_name, index in sorted(sources(role, data).get(route.name, set())):
        pages = _pages(by_name[source_name], data)
        if index >= len(pages):
            continue
        response = client.get(pages[index])
        if response.status_code != 200:
            continue
        for form in urlwalk.parse(response.content.decode()).forms:
            if _route_name(form.action or pages[index]) == route.name:
                forms.append(form)
    return forms


class Sender:
    def __init__(self, client: Client, role: str, data: Dataset, relogin: bool) -> None:
        self.client, self.role, self.data, self.relogin = client, role, data, relogin
        self.failures: list[str] = []
        self.sent = 0

    def __call__(self, method: str, path: str, params: dict[str, Any] | None = None) -> None:
        params = params or {}
        send = self.client.get if method == "get" else self.client.post
        response = send(path, params)
        self.sent += 1
        if response.status_code >= 500:
            shown = {
                k: (v if len(str(v)) < 40 else f"{str(v)[:20]}…({len(str(v))})") for k, v in params.items()
            }
            exc = getattr(response, "exc_info", None)
            why = f"{exc[0].__name__}: {str(exc[1])[:120]}" if exc else ""
            self.failures.append(f"{method.upper()} {path[:80]} {shown} -> {response.status_code} {why}")
        if self.relogin and (user := self.data.users[self.role]) is not None:
            self.client.force_login(user)  # a sign-out (or a failed admin sign-in) must not end the walk


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("route", ROUTES, ids=[r.name for r in ROUTES])
def test_no_hostile_input_gives_a_server_error(route: Route, role: str, world: Dataset) -> None:
    data = world
    client = client_for(role, data)
    send = Sender(client, role, data, relogin=route.name.endswith(("logout", "login")))
    is_admin = route.name.startswith("admin:")
    forms = [] if role == "anonymous" else forms_for(route, role, data, client)
    form_names = sorted({name for form in forms for name in form.fields})
    names = sorted(set(KNOWN_NAMES) | set(form_names))
    for combo in urlwalk.real_values(route, data):
        path = urlwalk.fill(route, combo)
        send("get", path)
        send("post", path)
        # Every name at once, one hostile value at a time.
        for value in HOSTILE:
            for method in ("get", "post"):
                send(method, path, dict.fromkeys(names, value))
        if role == "anonymous" or is_admin:
            continue  # redirected to a sign-in page, or Django's admin: every name at once is enough
        # One field at a time, the others as the page's form fills them (so the hostile one is reached);
        # forms alike (a move form on every card) once.
        kinds = {(form.method, tuple(sorted(form.fields))): form for form in forms}
        other_stage = str(data.other_pipeline.stages.first().pk)  # type: ignore[union-attr]
        for form in kinds.values():
            for name in form.fields:
                for value in [*ONE_AT_A_TIME, other_stage]:
                    send(form.method, path, {**form.fields, name: value})
        # The query names the views read, one at a time (those the forms hold were sent above).
        for name in sorted(set(KNOWN_NAMES) - set(form_names)):
            for value in ONE_AT_A_TIME[2:8]:
                send("get", path, {name: value})
        # A reversed date range, and a far one.
        send("get", path, {"created_from": "2026-12-31", "created_to": "2026-01-01"})
        send("get", path, {"created_from": "0001-01-01", "created_to": "9999-12-31"})
    # Hostile path parameters: unknown, huge, another pipeline's.
    hostile_ids = {
        "pipeline_pk": [str(data.other_pipeline.pk)],
        "stage_pk": [str(data.other_pipeline.stages.first().pk)],  # type: ignore[union-attr]
    }
    base = urlwalk.real_values(route, data)[0]
    for param in route.params:
        for value in PATH_HOSTILE + hostile_ids.get(param, []):
            path = urlwalk.fill(route, {**base, param: value})
            send("get", path)
            send("post", path)
    assert not send.failures, f"{len(send.failures)} of {send.sent} requests gave 5xx:\n" + "\n".join(
        send.failures[:30]
    )


# --- the 500s this walk found, each where it was fixed ------------------------------------------------------


def test_a_far_date_filter_is_a_form_error(world: Dataset) -> None:
    # "to" is read up to the next day: 9999-12-31 + 1 day overflowed.
    client = client_for("support", world)
    for url in (f"/boards/{world.pipeline.pk}/", f"/boards/{world.pipeline.pk}/table/"):
        response = client.get(url, {"created_to": "9999-12-31"})
        assert response.status_code == 200
        assert "Dates go from 1900-01-01 to 2199-12-31." in response.content.decode()
    export = client.get(f"/boards/{world.pipeline.pk}/export.csv", {"created_to": "9999-12-31"})
    assert export.status_code == 200
    assert len(b"".join(export.streaming_content).decode().splitlines()) == 1  # the header alone


def test_reversed_dates_show_the_error_and_no_orders(world: Dataset) -> None:
    client = client_for("support", world)
    reversed_range = {"created_from": "2026-12-31", "created_to": "2026-01-01"}
    board = client.get(f"/boards/{world.pipeline.pk}/", reversed_range)
    assert "“Created from” is after “to”" in board.content.decode()
    assert board.context["board"].total == 0  # not every order
    table = client.get(f"/boards/{world.pipeline.pk}/table/", reversed_range)
    assert "“Created from” is after “to”" in table.content.decode()
    assert table.context["total"] == 0
    # A bulk move of "all matching" under such filters moves nothing.
    response = client.post(
        f"/boards/{world.pipeline.pk}/bulk-move/",
        {
            "scope": "all",
            "stage": world.pipeline.stages.order_by("display_order").last().pk,  # type: ignore[union-attr]
            "filters": urlencode(reversed_range),
            "confirm": "1",
        },
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    assert [o.stage_id for o in world.orders] == [Order.objects.get(pk=o.pk).stage_id for o in world.orders]


def test_unreadable_filters_are_named(world: Dataset) -> None:
    client = client_for("support", world)
    response = client.get(f"/boards/{world.pipeline.pk}/", {"created_from": "abc", "sync": "bogus"})
    html = response.content.decode()
    assert "These filters could not be read: Created from, Sync state." in html
    assert response.context["board"].total == 0


@pytest.mark.parametrize("url", ["/boards/{pk}/table/", "/carts/"])
def test_a_page_past_the_end_is_the_last_page(world: Dataset, url: str) -> None:
    client = client_for("support", world)
    response = client.get(url.format(pk=world.pipeline.pk), {"page": "99999999999999999999"})
    assert response.status_code == 200
    assert response.context["page"] == 1  # the last (and only) page
    assert response.context["rows"]
    assert client.get(url.format(pk=world.pipeline.pk), {"page": "abc"}).context["page"] == 1


def test_an_id_too_large_for_the_database_is_no_url(world: Dataset) -> None:
    client = client_for("support", world)
    view_pk = world.ids["view_pk"][0]
    assert client.post(f"/boards/99999999999999999999/views/{view_pk}/delete/").status_code == 404
    assert client.get("/sync/runs/99999999999999999999/").status_code == 404


def test_a_list_of_ids_past_64_bits_matches_nothing(world: Dataset) -> None:
    # SQLite's driver raised OverflowError (a 500) for such a number in an ``__in`` list.
    from django.contrib.auth.models import Group

    assert list(Order.objects.filter(pk__in=[99999999999999999999, world.orders[0].pk])) == [world.orders[0]]
    assert not Group.objects.filter(pk__in=[-99999999999999999999]).exists()
    client = client_for("support", world)
    response = client.post("/sync/outbox/bulk/", {"action": "discard", "change": "99999999999999999999"})
    assert response.status_code < 500


def test_heartbeats_are_not_added_in_the_admin(world: Dataset) -> None:
    client = client_for("both", world)
    assert client.get("/admin/hubspot/workerheartbeat/add/").status_code == 403
    assert client.post("/admin/hubspot/workerheartbeat/add/", {}).status_code == 403


def test_a_nul_byte_in_a_record_id_is_no_url(world: Dataset) -> None:
    # PostgreSQL refuses NUL in text: the id reached a query and gave a 500.
    client = client_for("support", world)
    order = world.orders[0].hubspot_id
    for path in (
        "/boards/orders/nul%00byte/",
        "/boards/orders/nul%00byte/move/",
        f"/boards/orders/{order}/properties/nul%00byte/",
        "/sync/records/orders/nul%00byte/state/",
    ):
        assert client.get(path).status_code == 404, path
    assert client.get(f"/boards/orders/{order}/").status_code == 200
