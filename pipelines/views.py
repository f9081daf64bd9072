"""Views of the pipelines app: the pipeline editor.

One page lists every order pipeline with its stages, order counts, sync state, stage rules and card
settings. Pipeline admins edit it in place: each edit is an htmx POST that calls a service (the local change
is immediate, HubSpot gets it through the outbox) and returns the changed region; destructive changes go
through a dialog that previews what moves and which calls reach HubSpot. Support sees the page read-only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from django.contrib import messages
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import reswap, retarget, trigger_client_event

from config.htmx import HtmxHttpRequest
from config.permissions import PIPELINE_ADMIN, SUPPORT, group_required, in_group
from hubspot_sync.labels import without_bidi_overrides
from hubspot_sync.models import PropertyDefinition
from hubspot_sync.sync_state import sync_state_for
from pipelines import board_settings, hooks, services
from pipelines.forms import (
    ArchiveForm,
    BoardSettingsForm,
    MoveForm,
    PipelineCreateForm,
    RenameForm,
    StageCreateForm,
    StageDeleteForm,
    StageOrderForm,
    StageRulesForm,
    StageStateForm,
    error_text,
)
from pipelines.models import Pipeline, Stage

LIST = "pipelines/list.html"
DIALOGS = "pipelines/dialogs.html"


# --- what the page shows ----------------------------------------------------------------------------------


@dataclass
class Editor:
    """One pipeline as the editor shows it."""

    pipeline: Pipeline
    stages: list[Stage]
    first: bool = False
    last: bool = False
    settings: BoardSettingsForm | None = None
    new_stage: StageCreateForm | None = None

    @property
    def orders(self) -> int:
        return sum(getattr(s, "order_count", 0) for s in self.stages)


def _labels() -> dict[str, str]:
    return dict(PropertyDefinition.objects.filter(object_type="orders").values_list("name", "label"))


def _order_counts(stages: list[Stage]) -> dict[int, int]:
    """Live orders per stage: from the counter the orders app registers (its maintained totals), else one
    grouped count that the orders' column index answers (the orders model is reached through the relation,
    since this app may not import the one above it)."""
    counted = hooks.count_orders([s.pk for s in stages])
    if counted is not None:
        return counted
    orders = Stage._meta.get_field("orders").related_model._default_manager  # type: ignore[union-attr]
    rows = (
        orders.filter(stage__in=[s.pk for s in stages], archived=False)
        .order_by()
        .values_list("stage")
        .annotate(n=Count("pk"))
    )
    return dict(rows)


def _stages(pipelines: list[Pipeline]) -> dict[int, list[Stage]]:
    """The live stages of the pipelines in order, each with ``order_count``."""
    stages = list(
        Stage.objects.filter(pipeline__in=pipelines, archived=False).order_by(
            "pipeline", "display_order", "label"
        )
    )
    counts = _order_counts(stages)
    by_pipeline: dict[int, list[Stage]] = {p.pk: [] for p in pipelines}
    for stage in stages:
        stage.order_count = counts.get(stage.pk, 0)  # type: ignore[attr-defined]
        by_pipeline[stage.pipeline_id].append(stage)
    return by_pipeline


# The stage rows' routes: each is reversed once per page with a marker id, then filled in for every stage (a
# page has hundreds of row URLs, and reversing is the slowest part of drawing a row).
STAGE_ROUTES = ("rename", "state", "rules", "move", "delete")
_MARKER = "987654321987654321"


def _stage_urls(pipeline_pk: int) -> dict[str, str]:
    return {name: reverse(f"pipelines:stage-{name}", args=[pipeline_pk, _MARKER]) for name in STAGE_ROUTES}


def _editors(request: HttpRequest, only: Pipeline | None = None) -> list[Editor]:
    """Every order pipeline (or only one, placed among them) with what the editor shows of it."""
    pipelines = list(Pipeline.objects.for_orders())
    shown = [p for p in pipelines if only is None or p.pk == only.pk]
    stages, labels = _stages(shown), _labels()
    for pipeline_pk, listed in stages.items():
        urls = _stage_urls(pipeline_pk)
        for n, stage in enumerate(listed):
            stage.urls = {k: url.replace(_MARKER, str(stage.pk)) for k, url in urls.items()}  # type: ignore[attr-defined]
            # Where the row is (a row drawn alone still knows), its name as the row's buttons say it, whether
            # it has a sync state to show (most stages have none), and its required properties' labels.
            stage.position, stage.is_first, stage.is_last = n + 1, n == 0, n == len(listed) - 1  # type: ignore[attr-defined]
            stage.short_label = _short(without_bidi_overrides(stage.label))  # type: ignore[attr-defined]
            state = sync_state_for(stage, request=request).state
            stage.has_sync_state = state != "settled"  # type: ignore[attr-defined]
            names = [r for r in stage.required_properties or [] if isinstance(r, str)]
            stage.required_list = [(name, labels.get(name) or name) for name in names]  # type: ignore[attr-defined]
    return [
        Editor(
            pipeline=p,
            stages=stages[p.pk],
            first=p.pk == pipelines[0].pk,
            last=p.pk == pipelines[-1].pk,
            settings=BoardSettingsForm(pipeline=p),
            new_stage=StageCreateForm(pipeline=p),
        )
        for p in shown
    ]


def _editor(request: HttpRequest, pipeline: Pipeline) -> Editor:
    editors = _editors(request, only=pipeline)
    return editors[0] if editors else Editor(pipeline=pipeline, stages=[])


def _may_edit(request: HttpRequest) -> bool:
    return in_group(request.user, PIPELINE_ADMIN)


def _user(request: HttpRequest) -> User:
    # group_required has let only signed-in members of the group through.
    return cast(User, request.user)


def _pipeline(pipeline_pk: int) -> Pipeline:
    return get_object_or_404(Pipeline.objects.for_orders(), pk=pipeline_pk)


def _stage(pipeline: Pipeline, stage_pk: int) -> Stage:
    return get_object_or_404(pipeline.stages.filter(archived=False).select_related("pipeline"), pk=stage_pk)


def _short(label: str) -> str:
    return label if len(label) <= 60 else label[:59] + "…"


def _done(
    request: HtmxHttpRequest,
    response: HttpResponse,
    *,
    message: str,
    focus: str = "",
    close: bool = False,
    anchor: str = "",
) -> HttpResponse:
    """An edit went through: htmx gets the region with an event (say it, move the focus, close the
    dialog); a plain form post goes back to the page (PRG)."""
    if not request.htmx:
        messages.success(request, message)
        return redirect(reverse("pipelines:list") + (f"#{anchor}" if anchor else ""))
    return trigger_client_event(
        response, "editorDone", {"announce": message, "focus": focus, "close": close}, after="settle"
    )


def _refused(request: HtmxHttpRequest, response: HttpResponse, message: str) -> HttpResponse:
    """A refusal: htmx gets the region with the message in it; a plain form post goes back to the page
    with the message on top."""
    if not request.htmx:
        messages.error(request, message)
        return redirect("pipelines:list")
    return response


# --- the page ---------------------------------------------------------------------------------------------


@require_GET
def pipeline_list(request: HtmxHttpRequest) -> HttpResponse:
    """Every order pipeline with its stages; Support reads it, Pipeline admins edit it."""
    if not (in_group(request.user, SUPPORT) or in_group(request.user, PIPELINE_ADMIN)):
        raise PermissionDenied(f"This page is for the “{SUPPORT}” and “{PIPELINE_ADMIN}” groups.")
    return render(request, LIST, {"editors": _editors(request), "may_edit": _may_edit(request)})


def _pipelines_region(request: HtmxHttpRequest, **extra: Any) -> HttpResponse:
    return render(request, f"{LIST}#pipelines", {"editors": _editors(request), "may_edit": True, **extra})


def _dialog(
    request: HtmxHttpRequest, partial: str, context: dict[str, Any], *, error: bool = False
) -> HttpResponse:
    """A dialog's content: into the page's dialog for htmx (also when a refused post re-draws it), or a page
    of its own."""
    if not request.htmx:
        return render(request, "pipelines/dialog_page.html", {**context, "dialog": f"{DIALOGS}#{partial}"})
    response = render(request, f"{DIALOGS}#{partial}", context)
    if error:
        return reswap(retarget(response, "#editor-dialog-body"), "innerHTML")
    return response


# --- pipelines --------------------------------------------------------------------------------------------


@group_required(PIPELINE_ADMIN)
@require_http_methods(["GET", "POST"])
def pipeline_create(request: HtmxHttpRequest) -> HttpResponse:
    """The new-pipeline dialog (GET), and its creation with its stages (POST)."""
    if request.method == "GET":
        return _dialog(request, "create", {"form": PipelineCreateForm()})
    form = PipelineCreateForm(request.POST)
    if form.is_valid():
        try:
            pipeline = services.pipeline_create(
                label=form.cleaned_data["label"], stages=form.cleaned_data["stages"], by=_user(request)
            )
        except services.PipelineRuleError as exc:
            form.add_error(None, str(exc))
        else:
            return _done(
                request,
                _pipelines_region(request),
                message=f"Pipeline “{_short(pipeline.label)}” created; it is on its way to HubSpot.",
                focus=f"pipeline-label-{pipeline.pk}",
                close=True,
                anchor=f"pipeline-{pipeline.pk}",
            )
    return _dialog(request, "create", {"form": form}, error=True)


def _pipeline_head(request: HtmxHttpRequest, pipeline: Pipeline, **extra: Any) -> HttpResponse:
    context = {"editor": _editor(request, pipeline), "may_edit": True, **extra}
    return render(request, f"{LIST}#pipeline-head", context)


@group_required(PIPELINE_ADMIN)
@require_POST
def pipeline_rename(request: HtmxHttpRequest, pipeline_pk: int) -> HttpResponse:
    pipeline = _pipeline(pipeline_pk)
    form = RenameForm(request.POST)
    if not form.is_valid():
        error = error_text(form)
        typed = str(request.POST.get("label", ""))[:300]
        return _refused(
            request, _pipeline_head(request, pipeline, label_error=error, label_value=typed), error
        )
    label = form.cleaned_data["label"]
    if label != pipeline.label:
        try:
            services.pipeline_update(pipeline=pipeline, by=_user(request), label=label)
        except services.PipelineRuleError as exc:
            pipeline.refresh_from_db()
            response = _pipeline_head(request, pipeline, label_error=str(exc), label_value=label)
            return _refused(request, response, str(exc))
    return _done(request, _pipeline_head(request, pipeline), message=f"Renamed to “{_short(label)}”.")


@transaction.atomic
def _reorder_pipelines(pipelines: list[Pipeline], by: User) -> None:
    """Give each pipeline its place as its display order (only those whose order changes are sent)."""
    for order, pipeline in enumerate(pipelines):
        if pipeline.display_order != order:
            services.pipeline_update(pipeline=pipeline, by=by, display_order=order)


@group_required(PIPELINE_ADMIN)
@require_POST
def pipeline_move(request: HtmxHttpRequest, pipeline_pk: int) -> HttpResponse:
    """Move a pipeline up or down one place (the order of the board's pipeline switch)."""
    pipeline = _pipeline(pipeline_pk)
    form = MoveForm(request.POST)
    if not form.is_valid():
        return _refused(request, _pipelines_region(request), error_text(form))
    pipelines = list(Pipeline.objects.for_orders())
    at = next(n for n, p in enumerate(pipelines) if p.pk == pipeline.pk)
    to = max(0, min(len(pipelines) - 1, at + (-1 if form.cleaned_data["direction"] == "up" else 1)))
    pipelines.insert(to, pipelines.pop(at))
    try:
        _reorder_pipelines(pipelines, _user(request))
    except services.PipelineRuleError as exc:
        return _refused(request, _pipelines_region(request, region_error=str(exc)), str(exc))
    edge = "down" if to == 0 else "up" if to == len(pipelines) - 1 else form.cleaned_data["direction"]
    message = f"“{_short(pipeline.label)}” is pipeline {to + 1} of {len(pipelines)}."
    return _done(request, _pipelines_region(request), message=message, focus=f"pipeline-{edge}-{pipeline.pk}")


@group_required(PIPELINE_ADMIN)
@require_POST
def pipeline_settings(request: HtmxHttpRequest, pipeline_pk: int) -> HttpResponse:
    """Stage rules (no skipping, no moving back), the stale threshold and the card lines."""
    pipeline = _pipeline(pipeline_pk)
    form = BoardSettingsForm(request.POST, pipeline=pipeline)
    context: dict[str, Any] = {
        "editor": Editor(pipeline=pipeline, stages=[], settings=form),
        "may_edit": True,
    }
    if not form.is_valid():
        response = render(request, f"{LIST}#settings", context)
        return _refused(request, response, error_text(form))
    data = form.cleaned_data
    board_settings.pipeline_settings_update(
        pipeline=pipeline,
        by=_user(request),
        allow_skipping=not data["no_skipping"],
        allow_moving_back=not data["no_moving_back"],
        stale_after_days=data["stale_after_days"],
        card_properties=data["card_properties"],
    )
    context["editor"].settings = BoardSettingsForm(pipeline=pipeline)
    focus = ""
    if form.moved:
        name, direction = form.moved
        at, count = data["card_properties"].index(name), len(data["card_properties"])
        edge = "down" if at == 0 else "up" if at == count - 1 else direction
        focus = f"card-{edge}-{pipeline.pk}-{at}"
    context["saved"] = True
    response = render(request, f"{LIST}#settings", context)
    return _done(
        request, response, message="Board settings saved.", focus=focus, anchor=f"pipeline-{pipeline.pk}"
    )


@group_required(PIPELINE_ADMIN)
@require_http_methods(["GET", "POST"])
def pipeline_archive(request: HtmxHttpRequest, pipeline_pk: int) -> HttpResponse:
    """The archive dialog with its preview (GET, ``move_to`` chosen), and the archive (POST)."""
    pipeline = _pipeline(pipeline_pk)
    data = request.POST if request.method == "POST" else request.GET or None
    form = ArchiveForm(data, targets=services.allowed_archive_targets(pipeline))
    if request.method == "POST" and form.is_valid():
        try:
            services.pipeline_delete(pipeline=pipeline, by=_user(request), move_to=form.target())
        except services.PipelineRuleError as exc:
            form.add_error(None, str(exc))
        else:
            return _done(
                request,
                _pipelines_region(request),
                message=f"Pipeline “{_short(pipeline.label)}” archived.",
                focus="new-pipeline",
                close=True,
            )
    preview = services.pipeline_archive_preview(pipeline=pipeline, move_to=form.target())
    context = {"form": form, "pipeline": pipeline, "preview": preview}
    return _dialog(request, "archive", context, error=request.method == "POST")


# --- stages -----------------------------------------------------------------------------------------------


def _stages_region(request: HtmxHttpRequest, pipeline: Pipeline, **extra: Any) -> HttpResponse:
    editor = _editor(request, pipeline)
    if "new_stage" in extra:
        editor.new_stage = extra.pop("new_stage")
    return render(request, f"{LIST}#stages", {"editor": editor, "may_edit": True, **extra})


def _stage_row(request: HtmxHttpRequest, stage: Stage, **extra: Any) -> HttpResponse:
    editor = _editor(request, stage.pipeline)
    shown = next((s for s in editor.stages if s.pk == stage.pk), stage)
    context = {"editor": editor, "stage": shown, "may_edit": True, **extra}
    return render(request, f"{LIST}#stage", context)


@group_required(PIPELINE_ADMIN)
@require_POST
def stage_create(request: HtmxHttpRequest, pipeline_pk: int) -> HttpResponse:
    """Add a stage at the end; orders may move into it at once."""
    pipeline = _pipeline(pipeline_pk)
    form = StageCreateForm(request.POST, pipeline=pipeline)
    if form.is_valid():
        try:
            stage = services.stage_create(
                pipeline=pipeline,
                label=form.cleaned_data["label"],
                state=form.cleaned_data["state"],
                by=_user(request),
            )
        except services.PipelineRuleError as exc:
            form.add_error("label", str(exc))
        else:
            response = _stages_region(request, pipeline)
            message = f"Stage “{_short(stage.label)}” added."
            return _done(request, response, message=message, anchor=f"stage-{stage.pk}")
    response = _stages_region(request, pipeline, new_stage=form)
    return _refused(request, response, error_text(form))


@group_required(PIPELINE_ADMIN)
@require_POST
def stages_order(request: HtmxHttpRequest, pipeline_pk: int) -> HttpResponse:
    """The stages in the order a drag left them."""
    pipeline = _pipeline(pipeline_pk)
    stages = list(pipeline.stages.filter(archived=False).order_by("display_order", "label"))
    form = StageOrderForm(request.POST, stages=stages)
    if not form.is_valid():
        return _refused(
            request, _stages_region(request, pipeline, region_error=error_text(form)), error_text(form)
        )
    try:
        services.stages_reorder(pipeline=pipeline, stages=form.cleaned_data["stage"], by=_user(request))
    except services.PipelineRuleError as exc:
        return _refused(request, _stages_region(request, pipeline, region_error=str(exc)), str(exc))
    return _done(request, _stages_region(request, pipeline), message="Stage order saved.")


@group_required(PIPELINE_ADMIN)
@require_POST
def stage_move(request: HtmxHttpRequest, pipeline_pk: int, stage_pk: int) -> HttpResponse:
    """Move a stage up or down one place (the keyboard's way to reorder)."""
    pipeline = _pipeline(pipeline_pk)
    stage = _stage(pipeline, stage_pk)
    form = MoveForm(request.POST)
    if not form.is_valid():
        return _refused(request, _stages_region(request, pipeline), error_text(form))
    stages = list(pipeline.stages.filter(archived=False).order_by("display_order", "label"))
    at = next(n for n, s in enumerate(stages) if s.pk == stage.pk)
    to = max(0, min(len(stages) - 1, at + (-1 if form.cleaned_data["direction"] == "up" else 1)))
    stages.insert(to, stages.pop(at))
    try:
        services.stages_reorder(pipeline=pipeline, stages=stages, by=_user(request))
    except services.PipelineRuleError as exc:
        return _refused(request, _stages_region(request, pipeline, region_error=str(exc)), str(exc))
    edge = "down" if to == 0 else "up" if to == len(stages) - 1 else form.cleaned_data["direction"]
    message = f"“{_short(stage.label)}” is stage {to + 1} of {len(stages)}."
    return _done(
        request, _stages_region(request, pipeline), message=message, focus=f"stage-{edge}-{stage.pk}"
    )


@group_required(PIPELINE_ADMIN)
@require_POST
def stage_rename(request: HtmxHttpRequest, pipeline_pk: int, stage_pk: int) -> HttpResponse:
    """Rename a stage (names are unique within the pipeline: the service refuses a taken one)."""
    stage = _stage(_pipeline(pipeline_pk), stage_pk)
    form = RenameForm(request.POST)
    if not form.is_valid():
        typed = str(request.POST.get("label", ""))[:300]
        response = _stage_row(request, stage, label_error=error_text(form), label_value=typed)
        return _refused(request, response, error_text(form))
    label = form.cleaned_data["label"]
    if label != stage.label:
        try:
            services.stage_update(stage=stage, by=_user(request), label=label)
        except services.PipelineRuleError as exc:
            stage.refresh_from_db()
            response = _stage_row(request, stage, label_error=str(exc), label_value=label)
            return _refused(request, response, str(exc))
    return _done(request, _stage_row(request, stage), message=f"Stage renamed to “{_short(label)}”.")


@group_required(PIPELINE_ADMIN)
@require_POST
def stage_state(request: HtmxHttpRequest, pipeline_pk: int, stage_pk: int) -> HttpResponse:
    """Mark a stage Open or Closed."""
    stage = _stage(_pipeline(pipeline_pk), stage_pk)
    form = StageStateForm(request.POST)
    if not form.is_valid():
        return _refused(request, _stage_row(request, stage, state_error=error_text(form)), error_text(form))
    state = form.cleaned_data["state"]
    if state != stage.state:
        try:
            services.stage_update(stage=stage, by=_user(request), state=state)
        except services.PipelineRuleError as exc:
            stage.refresh_from_db()
            return _refused(request, _stage_row(request, stage, state_error=str(exc)), str(exc))
    word = "closed" if state == "CLOSED" else "open"
    return _done(request, _stage_row(request, stage), message=f"“{_short(stage.label)}” is now {word}.")


@group_required(PIPELINE_ADMIN)
@require_http_methods(["GET", "POST"])
def stage_rules(request: HtmxHttpRequest, pipeline_pk: int, stage_pk: int) -> HttpResponse:
    """The required-properties dialog (GET) and its save (POST)."""
    stage = _stage(_pipeline(pipeline_pk), stage_pk)
    form = StageRulesForm(request.POST if request.method == "POST" else None, stage=stage)
    if request.method == "POST" and form.is_valid():
        board_settings.stage_rules_update(
            stage=stage, by=_user(request), required_properties=form.cleaned_data["required"]
        )
        count = len(stage.required_properties)
        message = f"“{_short(stage.label)}” requires {count} propert{'y' if count == 1 else 'ies'} on entry."
        response = _stage_row(request, stage)
        return _done(
            request,
            response,
            message=message,
            focus=f"stage-rules-{stage.pk}",
            close=True,
            anchor=f"stage-{stage.pk}",
        )
    return _dialog(request, "rules", {"form": form, "stage": stage}, error=request.method == "POST")


@group_required(PIPELINE_ADMIN)
@require_http_methods(["GET", "POST"])
def stage_delete(request: HtmxHttpRequest, pipeline_pk: int, stage_pk: int) -> HttpResponse:
    """The delete dialog with its preview (GET, ``move_to`` chosen), and the delete (POST)."""
    pipeline = _pipeline(pipeline_pk)
    stage = _stage(pipeline, stage_pk)
    data = request.POST if request.method == "POST" else request.GET or None
    form = StageDeleteForm(data, targets=services.allowed_delete_targets(stage))
    if request.method == "POST" and form.is_valid():
        try:
            services.stage_delete(stage=stage, by=_user(request), move_to=form.target())
        except services.PipelineRuleError as exc:
            form.add_error(None, str(exc))
        else:
            response = render(
                request, f"{LIST}#pipeline", {"editor": _editor(request, pipeline), "may_edit": True}
            )
            message = f"Stage “{_short(stage.label)}” deleted."
            return _done(
                request, response, message=message, focus=f"stage-new-{pipeline.pk}-label", close=True
            )
    preview = services.stage_delete_preview(stage=stage, move_to=form.target())
    context = {"form": form, "stage": stage, "pipeline": pipeline, "preview": preview}
    return _dialog(request, "delete", context, error=request.method == "POST")
