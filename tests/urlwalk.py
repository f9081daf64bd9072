"""Every URL of the project, discovered from the resolver, with real ids from a small dataset.

Used by the hostile-input test and the CSP test: a URL added later is walked the day it is added.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from html.parser import HTMLParser
from urllib.parse import quote

from django.contrib.auth.models import User
from django.contrib.contenttypes.models import ContentType
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

from carts.models import Cart
from config.permissions import PIPELINE_ADMIN
from hubspot_sync.models import Change, ChangeKind, ChangeStatus, PropertyDefinition, SyncKind, SyncRun
from orders.models import Order, SavedView
from pipelines.models import Pipeline
from tests import factories


@dataclass(frozen=True)
class Route:
    name: str  # namespaced, e.g. "orders:board"
    route: str  # the whole pattern, prefixes included
    params: tuple[str, ...]  # its path parameters, in order


def _params(route: str) -> tuple[str, ...]:
    return tuple(conv or group for conv, group in re.findall(r"<(?:\w+:)?(\w+)>|\(\?P<(\w+)>", route))


def routes(resolver: URLResolver | None = None, prefix: str = "", namespace: str = "") -> list[Route]:
    """Every named URL pattern, with its full route and parameters."""
    resolver = resolver or get_resolver()
    found: list[Route] = []
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            ns = entry.namespace or namespace
            sub = ns if not namespace or ns == namespace else f"{namespace}:{ns}"
            found += routes(entry, prefix + str(entry.pattern), sub)
        elif isinstance(entry, URLPattern):
            base = entry.name or str(entry.pattern)
            name = f"{namespace}:{base}" if namespace else base
            full = prefix + str(entry.pattern)
            found.append(Route(name, full, _params(full)))
    return found


def fill(route: Route, values: dict[str, str]) -> str:
    """The route as a path, each parameter replaced by its value (percent-encoded)."""
    path = route.route
    for n, param in enumerate(route.params):
        slot = f"@@{n}@@"
        path, found = re.subn(rf"\(\?P<{param}>(?:[^()]|\([^()]*\))*\)", slot, path, count=1)
        if not found:
            path = re.sub(rf"<(?:\w+:)?{param}>", slot, path, count=1)
    path = path.replace("^", "").replace("\\Z", "").replace("$", "").replace("\\", "")
    for n, param in enumerate(route.params):
        path = path.replace(f"@@{n}@@", quote(values[param], safe=""))
    return "/" + path


# Routes that answer no page a person reads: signing out (it would end a walk's session), HubSpot's webhook,
# the favicon's redirect and the admin's redirects.
NOT_PAGES = frozenset(
    {"logout", "admin:logout", "hubspot-webhook", "favicon", "admin:view_on_site", "admin:(?P<url>.*)$"}
)


# --- the dataset ------------------------------------------------------------------------------------------


@dataclass
class Dataset:
    pipeline: Pipeline
    other_pipeline: Pipeline
    orders: list[Order]
    users: dict[str, User | None]
    ids: dict[str, list[str]] = field(default_factory=dict)  # parameter name -> real values
    admin_ids: dict[str, list[str]] = field(default_factory=dict)  # the same for admin URLs


ROLES = ("anonymous", "support", "pipeline_admin", "both")


def build_dataset() -> Dataset:
    """Two pipelines with orders, a cart, property definitions, a run, changes, saved views, four roles."""
    pipeline = factories.pipeline_with_stages(label="Online orders")
    other = factories.pipeline_with_stages(label="Wholesale", labels=("New", "Done"), closed=("Done",))
    stages = list(pipeline.stages.order_by("display_order"))
    stages[1].required_properties = ["hs_shipping_tracking_number"]
    stages[1].save(update_fields=["required_properties"])
    orders = [
        factories.OrderFactory(stage=stages[n % 3], remote_created_at=timezone.now() - timedelta(days=n))
        for n in range(4)
    ]
    factories.OrderFactory(stage=other.stages.first())
    for name, label, type_, field_type in (
        ("hs_order_name", "Order name", "string", "text"),
        ("hs_shipping_tracking_number", "Tracking number", "string", "text"),
        ("hs_order_discount", "Discount", "number", "number"),
        ("hs_fulfillment_status", "Fulfillment", "enumeration", "select"),
        ("hs_external_created_date", "Created (store)", "datetime", "date"),
    ):
        factories.order_property(
            name,
            label,
            type_,
            field_type,
            options=[{"label": "Shipped", "value": "shipped"}] if type_ == "enumeration" else [],
        )
    Cart.objects.create(
        hubspot_id="80001",
        name="Cart of Kim",
        total=Decimal("12.50"),
        currency="EUR",
        cart_url="https://shop.example/cart/80001",
        customer_email="kim@example.com",
        remote_updated_at=timezone.now() - timedelta(hours=2),  # abandoned: unchanged for over an hour
    )
    run = SyncRun.objects.create(kind=SyncKind.INCREMENTAL, object_types="orders")
    failed = Change.objects.create(
        kind=ChangeKind.UPDATE,
        object_type="orders",
        object_id=orders[0].hubspot_id,
        base={"hs_order_name": orders[0].name},
        new={"hs_order_name": "Renamed"},
        status=ChangeStatus.FAILED,
        error="HubSpot refused it.",
    )
    conflict = Change.objects.create(
        kind=ChangeKind.UPDATE,
        object_type="orders",
        object_id=orders[1].hubspot_id,
        base={"hs_pipeline_stage": stages[0].hubspot_id},
        new={"hs_pipeline_stage": stages[1].hubspot_id},
        remote={"hs_pipeline_stage": stages[2].hubspot_id},
        status=ChangeStatus.CONFLICT,
    )
    users: dict[str, User | None] = {
        "anonymous": None,
        "support": factories.support_user(),
        "pipeline_admin": factories.UserFactory(groups=[PIPELINE_ADMIN]),
        # Both groups, and the Django admin too (so its pages are walked with their forms).
        "both": factories.pipeline_admin(is_staff=True, is_superuser=True),
    }
    views = [
        SavedView.objects.create(user=user, pipeline=pipeline, name="Mine", query="q=Order")
        for user in users.values()
        if user is not None
    ]
    data = Dataset(pipeline, other, orders, users)
    data.ids = {
        "pipeline_pk": [str(pipeline.pk)],
        "stage_pk": [str(stages[0].pk)],
        "view_pk": [str(v.pk) for v in views],
        "hubspot_id": [orders[0].hubspot_id],
        "name": ["hs_order_name", "hs_order_discount", "hs_external_created_date"],
        "pk": [str(run.pk), str(failed.pk), str(conflict.pk)],
        "action": ["retry", "discard", "keep-mine", "take-hubspot"],
        "object_type": ["orders", "carts"],
        "object_id": [orders[0].hubspot_id, orders[1].hubspot_id],
        "cart_id": ["80001"],
    }
    data.admin_ids = {
        "app_label": ["pipelines", "auth"],
        "object_id": [str(pipeline.pk), str(users["support"].pk)],  # type: ignore[union-attr]
        "id": [str(users["support"].pk)],  # type: ignore[union-attr]
        "content_type_id": [str(ContentType.objects.get_for_model(Pipeline).pk)],
    }
    return data


def remove_dataset() -> None:
    """Delete what build_dataset made (built once per module, outside the tests' transactions)."""
    from django.contrib.sessions.models import Session

    from orders.models import BoardTotal
    from pipelines.models import Stage

    for model in (SavedView, Change, SyncRun, Cart, PropertyDefinition, Order, BoardTotal, Stage, Pipeline):
        model.objects.all().delete()
    User.objects.all().delete()
    Session.objects.all().delete()


def real_values(route: Route, data: Dataset) -> list[dict[str, str]]:
    """Path parameters filled with real ids: one combination per value of the route's first parameter
    that has several (the rest take their first)."""
    if not route.params:
        return [{}]
    ids = data.admin_ids if route.name.startswith("admin:") else data.ids
    combos = []
    for lead in route.params:
        for value in ids.get(lead, ["1"]):
            combo = {p: (value if p == lead else ids.get(p, ["1"])[0]) for p in route.params}
            if combo not in combos:
                combos.append(combo)
    return combos


# --- pages: forms and the fields they send ----------------------------------------------------------------


@dataclass
class Form:
    action: str
    method: str
    fields: dict[str, str]


class FormParser(HTMLParser):
    """The forms of a page (and the hx-get/hx-post targets outside them), with their fields' values."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[Form] = []
        self.links: list[str] = []
        self.inline_scripts = 0
        self.inline_handlers: list[str] = []
        self.inline_styles = 0
        self.style_attributes: list[str] = []
        self._form: Form | None = None
        self._select: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: (v or "") for k, v in attrs}
        self.inline_handlers += [f"<{tag} {k}=…>" for k in a if k.startswith("on")]
        # A script element without src runs inline (JSON data blocks don't run, and are allowed).
        if tag == "script" and not a.get("src") and "json" not in a.get("type", ""):
            self.inline_scripts += 1
        if tag == "style":
            self.inline_styles += 1
        if "style" in a:
            self.style_attributes.append(f"<{tag} style=…>")
        if tag == "a" and a.get("href"):
            self.links.append(a["href"])
        if tag == "form":
            self._form = Form(
                a.get("action") or a.get("hx-post") or a.get("hx-get") or "",
                (a.get("method") or ("post" if "hx-post" in a else "get")).lower(),
                {},
            )
            self.forms.append(self._form)
        elif self._form is not None and tag in ("input", "button") and a.get("name"):
            if a.get("type") in ("checkbox", "radio") and "checked" not in a and tag == "input":
                self._form.fields.setdefault(a["name"], a.get("value") or "on")
            else:
                self._form.fields[a["name"]] = a.get("value", "")
        elif self._form is not None and tag == "select" and a.get("name"):
            self._select = a["name"]
            self._form.fields.setdefault(a["name"], "")
        elif self._form is not None and tag == "option" and self._select:
            if not self._form.fields.get(self._select) or "selected" in a:
                self._form.fields[self._select] = a.get("value", "")
        elif self._form is not None and tag == "textarea" and a.get("name"):
            self._textarea = a["name"]
            self._form.fields[a["name"]] = ""
        elif self._form is None and (target := a.get("hx-post") or a.get("hx-get")):
            self.forms.append(Form(target, "post" if "hx-post" in a else "get", {}))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None
        elif tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data: str) -> None:
        if self._textarea and self._form is not None:
            self._form.fields[self._textarea] += data


def parse(html: str) -> FormParser:
    parser = FormParser()
    parser.feed(html)
    return parser
