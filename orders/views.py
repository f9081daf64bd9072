"""Views of the orders app: the boards, moves, the table, the CSV export and saved views."""

from __future__ import annotations

from typing import Any, cast

from django.contrib import messages
from django.contrib.auth.models import User
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, QueryDict, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import push_url, replace_url, trigger_client_event

from config.htmx import HtmxHttpRequest
from config.permissions import SUPPORT, group_required
from hubspot_sync.models import Change
from hubspot_sync.tasks import refresh_records_task
from orders import board as boards
from orders import details, export, services
from orders.forms import BoardFilterForm, BulkMoveForm, MoveForm, SavedViewForm
from orders.models import Order, SavedView
from pipelines.models import Pipeline, Stage

TABLE_PAGE = 50


def _user(request: HttpRequest) -> User:
    """The signed-in person (every view here is behind a login and a group check)."""
    return cast(User, request.user)


def _filters(
    request: HtmxHttpRequest, pipeline: Pipeline | None = None
) -> tuple[BoardFilterForm, dict[str, Any]]:
    """The board's filters from the URL; with the pipeline, the form offers the values its orders have."""
    choices = boards.filter_choices(pipeline) if pipeline is not None else None
    form = BoardFilterForm(request.GET or None, choices=choices)
    return form, form.active()


def _board_query(request: HtmxHttpRequest) -> QueryDict:
    """The board's filters as they came (moves carry them in ``filters`` so counts are recomputed alike)."""
    return QueryDict(request.POST.get("filters", "")) if request.method == "POST" else request.GET


@group_required(SUPPORT)
@require_GET
def boards_home(request: HtmxHttpRequest) -> HttpResponse:
    pipeline = Pipeline.objects.for_orders().first()
    if pipeline is None:
        return render(request, "orders/boards.html")
    return redirect("orders:board", pipeline.pk)


@group_required(SUPPORT)
@require_GET
def board(request: HtmxHttpRequest, pipeline_pk: int) -> HttpResponse:
    pipelines = list(Pipeline.objects.for_orders())  # the switcher's, and this board's among them
    pipeline = next((p for p in pipelines if p.pk == pipeline_pk), None)
    if pipeline is None:
        raise Http404("No such order pipeline.")
    # Read before the board: whatever changes meanwhile comes with the first poll.
    version = boards.version(pipeline)
    form, filters = _filters(request, pipeline)
    shown = form.data if isinstance(form.data, QueryDict) else request.GET  # as the form spells them
    board = boards.build_board(pipeline, filters, shown)
    context = {
        "board": board,
        "form": form,
        "pipelines": pipelines,
        "saved_views": SavedView.objects.filter(user=_user(request), pipeline=pipeline),
        "version": version,
        "pipeline_pk": pipeline.pk,
        "query": board.query,
        "poll_seconds": boards.poll_seconds(),
    }
    if not (request.htmx and request.htmx.target == "board-body"):
        return render(request, "orders/board.html", context)
    # Filtering without a reload: the board, and what outside it depends on the filters (the bulk bar's
    # count, the saved views, the links to the table and the export), and the URL says what is shown.
    response = render(request, "orders/board.html#board-refresh", context)
    url = f"{request.path}?{board.query}" if board.query else request.path
    if request.htmx.trigger == "board-filters":
        return push_url(response, url)
    return replace_url(response, url)


@group_required(SUPPORT)
@require_GET
def column(request: HtmxHttpRequest, pipeline_pk: int, stage_pk: int) -> HttpResponse:
    """The next page of one column's cards (loaded when the end of the column scrolls into view)."""
    pipeline = get_object_or_404(Pipeline.objects.for_orders(), pk=pipeline_pk)
    stage = get_object_or_404(pipeline.stages.filter(archived=False), pk=stage_pk)
    _, filters = _filters(request)
    orders = boards.filtered(pipeline, filters)
    cards, next_cursor = boards.column_page(orders, stage, request.GET.get("after"))
    context = {
        "cards": cards,
        "next_cursor": next_cursor,
        "column_stage": stage,
        "pipeline": pipeline,
        "query": boards.filter_query(request.GET),
        "card_fields": boards.card_fields(pipeline),
    }
    return render(request, "orders/board.html#column-page", context)


@group_required(SUPPORT)
@require_GET
def board_version(request: HtmxHttpRequest, pipeline_pk: int) -> HttpResponse:
    """The live poll: 204 while nothing changed; otherwise the changed cards (each drawn by the page in its
    place, unless someone is working on it) and every column's header, as out-of-band swaps."""
    pipeline = get_object_or_404(Pipeline.objects.for_orders(), pk=pipeline_pk)
    _, filters = _filters(request)
    changes = boards.changes_since(pipeline, filters, request.GET.get("v", ""))
    if changes is None:
        return HttpResponse(status=204)
    context = {
        "changes": changes,
        "pipeline": pipeline,
        "pipeline_pk": pipeline.pk,
        "version": changes.version,
        "query": boards.filter_query(request.GET),
        "card_fields": boards.card_fields(pipeline),
        "poll_seconds": boards.poll_seconds(),
    }
    response = render(request, "orders/board.html#board-changes", context)
    if changes.reload:
        return trigger_client_event(response, "boardReload", {})
    return response


@group_required(SUPPORT)
@require_http_methods(["GET", "POST"])
def move(request: HtmxHttpRequest, hubspot_id: str) -> HttpResponse:
    """Drag, "Move to…" and the required-values prompt all post here; GET gives the "Move to…" form."""
    if request.method == "GET":
        return _move_form(request, hubspot_id)
    order = get_object_or_404(
        Order.objects.select_related("stage", "pipeline"), hubspot_id=hubspot_id, archived=False
    )
    form = MoveForm(request.POST, order=order)
    if not form.is_valid():
        return _move_invalid(request, order, form)
    stage, seen_in, old_stage = form.cleaned_data["stage"], form.cleaned_data["from_stage"], order.stage
    try:
        moved = services.order_move_to_stage(
            order=order, stage=stage, by=_user(request), values=form.values(), seen_in=seen_in
        )
    except services.MovedMeanwhile:
        return _moved_meanwhile(request, order, seen_in)
    except services.MoveRefused as refused:
        prompt = form.prompt(refused.missing)
        return _card_refused(
            request, order, refused.reason, prompt_stage=stage if prompt else None, prompt=prompt
        )
    if not moved:
        return _card_unchanged(request, order, seen_in)
    if not request.htmx:
        messages.success(request, f"Moved “{order}” to {stage.label}.")
        return redirect(_board_url(order.pipeline_id, request.POST.get("filters", "")))
    return _card_moved(request, order, stage.pipeline, old_stage)


def _board_url(pipeline_pk: int | None, filters: str) -> str:
    """The board a move came from, with its filters (re-encoded: they came from the client)."""
    url = reverse("orders:board", args=[pipeline_pk]) if pipeline_pk else reverse("orders:boards")
    query = QueryDict(filters[:2000]).urlencode()
    return f"{url}?{query}" if query else url


def _move_invalid(request: HtmxHttpRequest, order: Order, form: MoveForm) -> HttpResponse:
    """A move that doesn't parse: a bad stage, no stage seen, or a required value of the wrong type."""
    if "stage" in form.errors:
        return _card_refused(request, order, " ".join(str(e) for e in form.errors["stage"]))
    if "from_stage" in form.errors:
        return _moved_meanwhile(request, order, None)
    # The stage parsed, so the errors are the typed values'.
    return _card_refused(
        request, order, form.error_text(), prompt_stage=form.target, prompt=form.prompt_again()
    )


def _moved_meanwhile(request: HtmxHttpRequest, order: Order, seen_in: int | None) -> HttpResponse:
    """Refuse a move from an out-of-date card: say who moved the order, and show it where it is."""
    where = order.stage.label if order.stage else "no stage"
    who = boards.who_moved(order)
    if seen_in is None:
        reason = (
            f"Nothing moved: this move didn't say which stage the card was in. The order is in “{where}” "
            f"({who} moved it there); move it again from there."
        )
    else:
        reason = f"{who} moved this order to “{where}” meanwhile; it stays there."
    seen = order.pipeline.stages.filter(pk=seen_in).first() if seen_in and order.pipeline else None
    return _card_refused(request, order, reason, columns=[seen, order.stage])


def _card_unchanged(request: HtmxHttpRequest, order: Order, seen_in: int) -> HttpResponse:
    """A move to the stage the order is in already: nothing is recorded, sent or reset."""
    label = order.stage.label if order.stage else "this stage"
    notice = f"Already in “{label}”; nothing changed."
    if (order.stage_id or 0) != seen_in:
        notice += f" {boards.who_moved(order)} moved it there meanwhile."
    seen = order.pipeline.stages.filter(pk=seen_in).first() if seen_in and order.pipeline else None
    return _card_refused(request, order, "", notice=notice, columns=[seen, order.stage])


def _move_form(request: HtmxHttpRequest, hubspot_id: str) -> HttpResponse:
    order = get_object_or_404(
        Order.objects.select_related("stage", "pipeline"), hubspot_id=hubspot_id, archived=False
    )
    context = {
        "order": order,
        "stages": boards.stages_of(order.pipeline) if order.pipeline else [],
        "query": request.GET.get("filters", ""),
    }
    if request.htmx:
        return render(request, "orders/board.html#move-form", context)
    return render(request, "orders/move.html", context)


def _card_context(request: HtmxHttpRequest, order: Order, **extra: Any) -> dict[str, Any]:
    pipeline = order.pipeline
    return {
        "order": order,
        "pipeline": pipeline,
        "query": _board_query(request).urlencode(),
        "card_fields": boards.card_fields(pipeline) if pipeline else [],
        **extra,
    }


def _card_moved(
    request: HtmxHttpRequest, order: Order, pipeline: Pipeline, old_stage: Stage | None
) -> HttpResponse:
    filters = BoardFilterForm(_board_query(request)).active()
    # The two columns whose headers change: the board's (live, this pipeline's), in the board's order.
    changed = sorted(
        {
            s.pk: s
            for s in (old_stage, order.stage)
            if s is not None and s.pipeline_id == pipeline.pk and not s.archived
        }.values(),
        key=lambda s: (s.display_order, s.label),
    )
    totals = boards.column_totals(pipeline, filters, [s.pk for s in changed])
    context = _card_context(request, order, headers=[(s, totals[s.pk]) for s in changed])
    response = render(request, "orders/board.html#moved-card", context)
    return trigger_client_event(
        response, "orderMoved", {"order": order.hubspot_id, "stage": order.stage_id}, after="swap"
    )


def _card_refused(
    request: HtmxHttpRequest,
    order: Order,
    reason: str,
    *,
    prompt_stage: Stage | None = None,
    prompt: list[Any] | None = None,
    columns: list[Stage | None] | None = None,
    notice: str = "",
) -> HttpResponse:
    """Nothing changes: the card goes back to the column of the stage it is in and says why (or asks for the
    missing values); ``columns`` are stages whose headers the page shows out of date (a stale card's)."""
    if not request.htmx:
        (messages.info if notice else messages.error)(request, reason or notice)
        return redirect(_board_url(order.pipeline_id, request.POST.get("filters", "")))
    headers = _column_headers(request, order.pipeline, columns or [])
    context = _card_context(
        request,
        order,
        refusal=reason,
        prompt_stage=prompt_stage,
        prompt=prompt or [],
        notice=notice,
        headers=headers,
    )
    response = render(request, "orders/board.html#moved-card", context)
    return trigger_client_event(
        response, "moveRefused", {"order": order.hubspot_id, "stage": order.stage_id}, after="swap"
    )


def _column_headers(
    request: HtmxHttpRequest, pipeline: Pipeline | None, stages: list[Stage | None]
) -> list[tuple[Stage, Any]]:
    """Fresh headers (counts and sums under the board's filters) of these columns of the board."""
    live = {s.pk: s for s in stages if s is not None and pipeline and s.pipeline_id == pipeline.pk}
    if pipeline is None or not live:
        return []
    ordered = sorted(live.values(), key=lambda s: (s.display_order, s.label))
    totals = boards.column_totals(pipeline, BoardFilterForm(_board_query(request)).active(), list(live))
    return [(s, totals[s.pk]) for s in ordered if not s.archived]


def _without(query: QueryDict, *names: str) -> str:
    copy = query.copy()
    for name in names:
        copy.pop(name, None)
    return copy.urlencode()


@group_required(SUPPORT)
@require_GET
def table(request: HtmxHttpRequest, pipeline_pk: int) -> HttpResponse:
    """The same orders and filters as a list, a page at a time."""
    pipeline = get_object_or_404(Pipeline.objects.for_orders(), pk=pipeline_pk)
    form, filters = _filters(request, pipeline)
    orders = boards.filtered(pipeline, filters).select_related("stage").order_by("-remote_created_at", "-pk")
    # get_page: a page that is no number is the first, one past the end (however large) the last.
    page = Paginator(orders, TABLE_PAGE).get_page(request.GET.get("page"))
    context = {
        "pipeline": pipeline,
        "form": form,
        "pipelines": Pipeline.objects.for_orders(),
        "page_obj": page,
        "rows": list(page.object_list),
        "page": page.number,
        "has_next": page.has_next(),
        "total": page.paginator.count,
        "query": _without(request.GET, "page"),
    }
    return render(request, "orders/table.html", context)


@group_required(SUPPORT)
@require_GET
def export_csv(request: HtmxHttpRequest, pipeline_pk: int) -> StreamingHttpResponse:
    """Every filtered order, all pages, streamed."""
    pipeline = get_object_or_404(Pipeline.objects.for_orders(), pk=pipeline_pk)
    _, filters = _filters(request)
    lines = export.csv_lines(boards.filtered(pipeline, filters))
    response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
    stamp = timezone.now().strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = f'attachment; filename="orders-{pipeline.pk}-{stamp}.csv"'
    return response


def _board_with(pipeline_pk: int, query: str) -> str:
    return reverse("orders:board", args=[pipeline_pk]) + ("?" + query if query else "")


@group_required(SUPPORT)
@require_POST
def saved_view_create(request: HtmxHttpRequest, pipeline_pk: int) -> HttpResponse:
    pipeline = get_object_or_404(Pipeline.objects.for_orders(), pk=pipeline_pk)
    form = SavedViewForm(request.POST)
    if not form.is_valid():
        messages.error(request, "A saved view needs a name of at most 80 characters.")
        return redirect("orders:board", pipeline.pk)
    # The filters the page shows (the page fills this in as it is sent); the service keeps the filters alone.
    view = services.saved_view_save(
        user=_user(request),
        pipeline=pipeline,
        name=form.cleaned_data["name"],
        query=form.cleaned_data["query"],
    )
    messages.success(request, f"Saved the view “{view.name}”.")
    return redirect(_board_with(pipeline.pk, view.query))


@group_required(SUPPORT)
@require_POST
def saved_view_delete(request: HtmxHttpRequest, pipeline_pk: int, view_pk: int) -> HttpResponse:
    view = get_object_or_404(SavedView, pk=view_pk, user=_user(request), pipeline_id=pipeline_pk)
    services.saved_view_delete(view=view)
    messages.success(request, f"Deleted the view “{view.name}”.")
    # Back to the board as it was filtered (the filters, and nothing else, from what the page sent).
    return redirect(
        _board_with(pipeline_pk, boards.filter_query(QueryDict(request.POST.get("query", "")[:2000])))
    )


# --- the order drawer ---------------------------------------------------------------------------------------


@group_required(SUPPORT)
@require_GET
def drawer(request: HtmxHttpRequest, hubspot_id: str) -> HttpResponse:
    """Everything about one order; a drawer over the board, or a page of its own at the same URL."""
    order = get_object_or_404(Order.objects.select_related("stage", "pipeline"), hubspot_id=hubspot_id)
    context = drawer_context(order)
    if request.htmx and "seen" in request.GET:
        # The drawer's own refresh: only what changed since the page drew it, swapped out of band by id.
        context["changed"] = details.changed_regions(context["versions"], request.GET["seen"])
        return render(request, "orders/drawer.html#drawer-refresh", context)
    template = "orders/drawer.html#drawer" if request.htmx else "orders/drawer.html"
    return render(request, template, context)


def drawer_context(order: Order) -> dict[str, Any]:
    associated = details.associated(order)
    groups = details.property_groups(order)
    context = {
        "order": order,
        "status_group": groups[0],
        "groups": groups,
        "filled_groups": [g for g in groups[1:] if g.filled],
        "empty_groups": [g for g in groups[1:] if g.fields and not g.filled],
        "stages": boards.stages_of(order.pipeline) if order.pipeline and not order.archived else [],
        "line_items": details.line_items(associated["line_items"]),
        "customer": details.customer(order, associated["contacts"]),
        "carts": details.carts(associated["carts"]),
        "timeline": details.timeline(order, Change.objects.timeline("orders", order.hubspot_id)[:50]),
    }
    context["versions"] = versions = details.region_versions(context)
    context["v"] = {key.removeprefix("drawer-").replace("-", "_"): v for key, v in versions.items()}
    return context


@group_required(SUPPORT)
@require_GET
def property_edit(request: HtmxHttpRequest, hubspot_id: str, name: str) -> HttpResponse:
    """The inline editor of one property (or its plain row again, with ?cancel)."""
    order = get_object_or_404(Order, hubspot_id=hubspot_id, archived=False)
    field = details.field_for(order, name)
    if field is None:
        return HttpResponse("This property can't be shown.", status=404)
    editing = "cancel" not in request.GET and field.editable
    return render(
        request, "orders/drawer.html#property-row", {"order": order, "field": field, "editing": editing}
    )


@group_required(SUPPORT)
@require_POST
def property_save(request: HtmxHttpRequest, hubspot_id: str, name: str) -> HttpResponse:
    order = get_object_or_404(Order, hubspot_id=hubspot_id, archived=False)
    field = details.field_for(order, name)
    if field is None or not field.editable:
        return render(
            request,
            "orders/drawer.html#property-row",
            {"order": order, "field": field, "error": "HubSpot doesn't let this property be edited."},
        )
    value, error = details.clean_value(field, request.POST.get("value", ""))
    if error:
        return render(
            request,
            "orders/drawer.html#property-row",
            {
                "order": order,
                "field": field,
                "editing": True,
                "error": error,
                "entered": request.POST.get("value", ""),
            },
        )
    services.order_update_properties(order=order, values={name: value}, by=_user(request))
    field = details.field_for(order, name)
    response = render(
        request, "orders/drawer.html#property-row", {"order": order, "field": field, "saved": True}
    )
    return trigger_client_event(response, "orderChanged", {"order": order.hubspot_id})


@group_required(SUPPORT)
@require_POST
def resync(request: HtmxHttpRequest, hubspot_id: str) -> HttpResponse:
    """Read this order from HubSpot again, in the background."""
    order = get_object_or_404(Order, hubspot_id=hubspot_id)
    refresh_records_task.delay("orders", [order.hubspot_id])
    messages.success(request, "Reading this order from HubSpot again; the page updates when it's done.")
    if request.htmx:
        return render(request, "base.html#messages", {})
    return redirect("orders:drawer", hubspot_id)


# --- bulk moves ---------------------------------------------------------------------------------------------


@group_required(SUPPORT)
@require_POST
def bulk_move(request: HtmxHttpRequest, pipeline_pk: int) -> HttpResponse:
    """Move the selected cards, or all orders matching the filters, after a confirmation stating the scope;
    orders that changed stage after the confirmation was shown stay where they are."""
    pipeline = get_object_or_404(Pipeline.objects.for_orders(), pk=pipeline_pk)
    form = BulkMoveForm(request.POST, pipeline=pipeline, query=_board_query(request))
    if not form.is_valid() or not form.cleaned_data["confirm"]:
        return render(request, "orders/board.html#bulk-confirm", _bulk_confirmation(form))
    stage = form.cleaned_data["stage"]
    result = services.orders_bulk_move_confirmed(
        orders=form.orders,
        stage=stage,
        by=_user(request),
        seen=form.seen_stages(),
        shown_at=form.cleaned_data["shown_at"],
    )
    (messages.warning if result.warns else messages.success)(
        request, result.summary(described=form.described, stage=stage)
    )
    if not request.htmx:
        return redirect(_board_url(pipeline.pk, form.cleaned_data["filters"]))
    return trigger_client_event(render(request, "orders/board.html#bulk-done", {}), "boardChanged", {})


def _bulk_confirmation(form: BulkMoveForm) -> dict[str, Any]:
    """The confirmation of a bulk move (stating its scope), or why it can't be made."""
    data = form.cleaned_data
    context: dict[str, Any] = {
        "pipeline": form.pipeline,
        "stage": data.get("stage"),
        "scope": data.get("scope") or "selected",
        "described": form.described,
        "filters": data.get("filters") or "",
        "selected": data.get("selected") or [],
        "count": form.count,
    }
    if form.errors:
        context["error"] = form.error_text()
    else:
        context.update(boards.bulk_promise(form.orders, form.count))
    return context
