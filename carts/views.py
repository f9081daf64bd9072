"""The carts console: the list, a cart's drawer and page, sending (one or in bulk), the recovery templates,
the suppression list and the demo Mailbox. Views look up, validate, call a service and render."""

from __future__ import annotations

import re
import secrets
from typing import Any, cast

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.models import User
from django.core.cache import cache
from django.core.paginator import Paginator
from django.db.models import Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import cached_property
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import trigger_client_event

from carts import editor, queries, rows, services
from carts.forms import (
    STATE_LABELS,
    STATES,
    BulkSendForm,
    CartFilterForm,
    SendForm,
    SuppressionAddForm,
    SuppressionRemoveForm,
    SuppressionSearchForm,
    TemplateForm,
)
from carts.mailbox import Mailbox
from carts.models import Cart, RecoveryTemplate, Suppression
from config.htmx import HtmxHttpRequest
from config.permissions import PIPELINE_ADMIN, SUPPORT, group_required, in_group

PAGE = 50
SUPPRESSIONS_PAGE = 50
PREVIEW_TTL_S = 15 * 60
CART_ID = re.compile(r"^[0-9]{1,18}$")
# Mail HTML (a preview, a message in the Mailbox) is shown in an iframe whose document may never run script
# or reach our origin: an opaque-origin sandbox, nothing loaded but images; inline styles are allowed since
# mail relies on them and a sandboxed document without script can do nothing with them. Links open in a new
# tab outside the sandbox so that they can be followed.
# https://developer.mozilla.org/docs/Web/HTTP/Headers/Content-Security-Policy/sandbox
MAIL_CSP = (
    "sandbox allow-popups allow-popups-to-escape-sandbox; default-src 'none'; img-src data: https:; "
    "style-src 'unsafe-inline'; form-action 'none'; frame-ancestors 'self'"
)


class CountedPaginator(Paginator):
    """A paginator told its count (computed with others in one query) instead of asking the database."""

    def __init__(self, object_list: Any, per_page: int, *, count: int) -> None:
        super().__init__(object_list, per_page)
        self._known_count = count

    @cached_property
    def count(self) -> int:
        return self._known_count


def _user(request: HttpRequest) -> User:
    return cast(User, request.user)


def _cart_or_404(cart_id: str) -> Cart:
    if not CART_ID.match(cart_id):
        raise Http404("No such cart.")
    return get_object_or_404(Cart.objects.with_recovery_state(), hubspot_id=cart_id)


def mail_html_response(html: str) -> HttpResponse:
    """Mail HTML as a document of its own, sandboxed by its CSP (the iframe's sandbox attribute says the
    same): it can never run script in our origin. Links open in a new tab."""
    base = '<base target="_blank">'
    head = re.search(r"<head[^>]*>", html, flags=re.IGNORECASE)
    body = html[: head.end()] + base + html[head.end() :] if head else base + html
    response = HttpResponse(body, content_type="text/html; charset=utf-8")
    response["Content-Security-Policy"] = MAIL_CSP
    response["Referrer-Policy"] = "no-referrer"
    return response


# --- the list ---------------------------------------------------------------------------------------------


def _list_context(request: HtmxHttpRequest, query: QueryDict) -> dict[str, Any]:
    form = CartFilterForm(
        {k: v for k, v in query.items() if k in CartFilterForm.base_fields} or None,
    )
    filters = form.active()
    now = timezone.now()
    console = queries.console_carts(now)
    counts = queries.state_counts(queries.filtered(console, filters, now=now))
    # The tabs' counts already say how many carts the list has: no second count over them.
    total = counts.get(filters["state"], 0) if filters.get("state") else counts["all"]
    carts = queries.page_source(console, filters, filters.get("sort", "newest"), matches=total, now=now)
    page = CountedPaginator(carts, PAGE, count=total).get_page(query.get("page"))
    shown = {k: v for k, v in (form.cleaned_data if form.is_bound and form.is_valid() else {}).items() if v}
    filter_query = QueryDict(mutable=True)
    for key, value in shown.items():
        filter_query[key] = str(value)
    page_rows = queries.explain_rows(list(page.object_list))
    return {
        "form": form,
        "filters": filters,
        "filter_query": filter_query.urlencode(),
        "rows": page_rows,
        "row_html": rows.cart_rows(page_rows),
        "page_obj": page,
        "page": page.number,
        "has_next": page.has_next(),
        "total": page.paginator.count,
        "counts": counts,
        "tabs": [(key, label, counts.get(key, 0)) for key, label in STATES],
        "state": filters.get("state", ""),
        "choices": queries.filter_choices(),
        "definitions": queries.definitions(),
        "mailbox": queries.mailbox_enabled(),
    }


@group_required(SUPPORT)
@require_GET
def abandoned_carts(request: HtmxHttpRequest) -> HttpResponse:
    """Abandoned carts and the recovery state of each, under the filters, search and sort in the URL."""
    context = _list_context(request, request.GET)
    if request.htmx and request.htmx.target == "cart-list":
        return render(request, "carts/abandoned.html#cart-list", context)
    return render(request, "carts/abandoned.html", context)


# --- one cart ---------------------------------------------------------------------------------------------


def _cart_context(request: HttpRequest, cart: Cart) -> dict[str, Any]:
    sends = queries.sends(cart)
    person = queries.contact(cart)
    return {
        "cart": cart,
        "state_label": STATE_LABELS.get(getattr(cart, "recovery_state", ""), ""),
        "reason": cart.emailable_reason(contact=person),
        "contact": person,
        "line_items": queries.line_items(cart),
        "log": queries.log(cart),
        "sends": sends,
        "pending": queries.has_pending_send(sends),
        "may_edit_templates": in_group(request.user, PIPELINE_ADMIN),
        "safe_url": queries.safe_link(cart.cart_url),
    }


@group_required(SUPPORT)
@require_GET
def cart_detail(request: HtmxHttpRequest, cart_id: str) -> HttpResponse:
    """The cart's drawer (in the list) or page: items, contact, sends, its log and sync state."""
    cart = _cart_or_404(cart_id)
    context = _cart_context(request, cart)
    target = request.htmx.target if request.htmx else None
    if target == "cart-drawer-body":
        return render(request, "carts/cart.html#cart-drawer", context)
    if target == "cart-activity":
        # The state in the head follows the sends (out of band).
        return render(request, "carts/cart.html#cart-activity", {**context, "refresh": True})
    return render(request, "carts/cart.html", context)


def _default_template() -> RecoveryTemplate | None:
    return RecoveryTemplate.objects.order_by("-is_default", "step", "pk").first()


@group_required(SUPPORT)
@require_GET
def cart_preview(request: HtmxHttpRequest, cart_id: str) -> HttpResponse:
    """The recovery email as this cart would get it now: the subject, the text part, and the HTML part in a
    sandboxed iframe."""
    cart = _cart_or_404(cart_id)
    template = _default_template()
    context: dict[str, Any] = {"cart": cart, "missing": template is None, "template": template}
    if template is not None:
        context["subject"], context["text"], _html = services.render_recovery_email(
            cart=cart, template=template
        )
    if not request.htmx:
        return render(
            request, "carts/cart.html", {**_cart_context(request, cart), **context, "show_preview": True}
        )
    return render(request, "carts/cart.html#cart-preview", context)


@group_required(SUPPORT)
@require_GET
@xframe_options_sameorigin
def cart_preview_html(request: HtmxHttpRequest, cart_id: str) -> HttpResponse:
    """The preview's HTML part, as a sandboxed document for its iframe."""
    cart = _cart_or_404(cart_id)
    template = _default_template()
    if template is None:
        raise Http404("There is no recovery template yet.")
    _subject, _text, html = services.render_recovery_email(cart=cart, template=template)
    return mail_html_response(html)


@group_required(SUPPORT)
@require_POST
def cart_send(request: HtmxHttpRequest, cart_id: str) -> HttpResponse:
    """Ask for the cart's recovery email: the worker checks the guards again before it sends."""
    cart = _cart_or_404(cart_id)
    form = SendForm(request.POST)
    step = (form.cleaned_data.get("step") if form.is_valid() else None) or 1
    send = services.cart_send_request(cart=cart, step=step, by=_user(request))
    if send.status == "skipped":
        note, level = f"Not sent: {send.reason}", messages.WARNING
    else:
        note, level = "Queued: a worker checks the cart again and sends the email.", messages.SUCCESS
    if not request.htmx:
        messages.add_message(request, level, note)
        return redirect("carts:cart", cart.hubspot_id)
    cart = _cart_or_404(cart_id)
    context = {**_cart_context(request, cart), "note": note, "note_level": level, "refresh": True}
    response = render(request, "carts/cart.html#cart-activity", context)
    return trigger_client_event(response, "cartChanged", {"cart": cart.hubspot_id})


# --- bulk -------------------------------------------------------------------------------------------------


def _bulk_scope(form: BulkSendForm) -> tuple[QuerySet[Cart], dict[str, Any], str]:
    """The carts a bulk send names, the filters it was made from, and the scope in words."""
    if form.cleaned_data["scope"] == "selected":
        ids = form.cleaned_data["selected"]
        carts = queries.console_carts().filter(hubspot_id__in=ids)
        return carts, {"selected": ids}, "the ticked carts"
    query = QueryDict(form.cleaned_data.get("filters") or "")
    filter_form = CartFilterForm({k: v for k, v in query.items() if k in CartFilterForm.base_fields} or None)
    filters = filter_form.active()
    carts = queries.in_state(queries.filtered(queries.console_carts(), filters), filters)
    recorded = {k: str(v) for k, v in filters.items()}
    return carts, recorded, "all carts matching the filters"


@group_required(SUPPORT)
@require_POST
def bulk_send(request: HtmxHttpRequest) -> HttpResponse:
    """A bulk send: first the scope and what will be skipped, then (confirmed) the send and its summary."""
    form = BulkSendForm(request.POST)
    if not form.is_valid():
        return render(request, "carts/abandoned.html#bulk-dialog", {"bulk_form": form, "stage": "error"})
    carts, filters, scope = _bulk_scope(form)
    if not form.cleaned_data.get("confirm"):
        count, skip_count, reasons = services.bulk_send_preview(carts)
        context = {
            "bulk_form": form,
            "stage": "confirm",
            "scope": scope,
            "count": count,
            "skip_count": skip_count,
            "send_count": max(count - skip_count, 0),
            "reasons": queries.reason_counts(reasons),
            "selected": form.cleaned_data.get("selected") or [],
        }
        return render(request, "carts/abandoned.html#bulk-dialog", context)
    bulk = services.carts_bulk_send(carts_qs=carts, by=_user(request), filters=filters)
    context = {"bulk_form": form, "stage": "done", "bulk": bulk, "scope": scope}
    if not request.htmx:
        messages.success(request, f"Recovery emails: {bulk.queued} queued, {bulk.skipped} skipped.")
        return redirect("carts:abandoned")
    response = render(request, "carts/abandoned.html#bulk-dialog", context)
    return trigger_client_event(response, "cartsChanged", {"bulk": bulk.pk})


# --- templates (Pipeline admin) ----------------------------------------------------------------------------


@group_required(PIPELINE_ADMIN)
@require_GET
def templates_list(request: HtmxHttpRequest) -> HttpResponse:
    templates = RecoveryTemplate.objects.select_related("updated_by").order_by("step", "name", "pk")
    return render(request, "carts/templates.html", {"templates": list(templates)})


def _editor_context(form: TemplateForm, template: RecoveryTemplate | None) -> dict[str, Any]:
    return {
        "form": form,
        "template": template,
        "merge_fields": editor.MERGE_FIELDS,
        "preview_carts": queries.recent_carts(),
    }


@group_required(PIPELINE_ADMIN)
@require_http_methods(["GET", "POST"])
def template_edit(request: HtmxHttpRequest, template_pk: int | None = None) -> HttpResponse:
    """Edit a recovery template (or write a new one): saved only when it renders."""
    template = get_object_or_404(RecoveryTemplate, pk=template_pk) if template_pk is not None else None
    if request.method == "GET":
        outcome = services.template_test_outcome(template=template, by=_user(request)) if template else None
        if outcome and outcome["status"] == "failed":
            messages.error(
                request,
                f"The test to {outcome['to']} could not be sent: the mail server said “{outcome['error']}”.",
            )
        initial = (
            {
                "name": template.name,
                "subject": template.subject,
                "html_body": template.html_body,
                "text_body": template.text_body,
            }
            if template
            else editor.new_template_initial()
        )
        return render(
            request, "carts/template_edit.html", _editor_context(TemplateForm(initial=initial), template)
        )
    form = TemplateForm(request.POST)
    if form.is_valid():
        error = editor.template_error(form.cleaned_data, cart=None)
        if error:
            form.add_error(None, error)
    if not form.is_valid():
        return render(request, "carts/template_edit.html", _editor_context(form, template))
    template = editor.template_save(template=template, data=form.cleaned_data, by=_user(request))
    messages.success(request, f"Saved “{template.name}”.")
    return redirect("carts:template", template.pk)


@group_required(PIPELINE_ADMIN)
@require_POST
def template_preview(request: HtmxHttpRequest) -> HttpResponse:
    """The live preview of the editor's unsaved content, against a chosen cart or a sample one: the subject,
    the text part, and an iframe of the HTML part (kept a short while under a random token)."""
    form = TemplateForm(request.POST)
    context: dict[str, Any] = {"form": form}
    if form.is_valid():
        cart = None
        if form.cleaned_data["preview_cart"]:
            cart = Cart.objects.filter(hubspot_id=form.cleaned_data["preview_cart"]).first()
        rendered = editor.template_render(form.cleaned_data, cart=cart)
        if isinstance(rendered, str):
            context["error"] = rendered
        else:
            subject, text, html = rendered
            token = secrets.token_urlsafe(16)
            cache.set(f"carts-preview:{request.user.pk}:{token}", html, PREVIEW_TTL_S)
            context.update({"subject": subject, "text": text, "token": token, "sample": cart is None})
    return render(request, "carts/template_edit.html#template-preview", context)


@group_required(PIPELINE_ADMIN)
@require_GET
@xframe_options_sameorigin
def template_preview_html(request: HtmxHttpRequest, token: str) -> HttpResponse:
    if not re.fullmatch(r"[A-Za-z0-9_-]{10,40}", token):
        raise Http404("No such preview.")
    html = cache.get(f"carts-preview:{request.user.pk}:{token}")
    if html is None:
        raise Http404("This preview has expired; change the template to see it again.")
    return mail_html_response(str(html))


@group_required(PIPELINE_ADMIN)
@require_POST
def template_test(request: HtmxHttpRequest, template_pk: int) -> HttpResponse:
    """Send the saved template to the signed-in admin's own address."""
    template = get_object_or_404(RecoveryTemplate, pk=template_pk)
    user = _user(request)
    if not user.email:
        messages.error(request, "Your account has no email address; add one in the admin to get test sends.")
    else:
        cart_id = request.POST.get("preview_cart", "")
        cart = Cart.objects.filter(hubspot_id=cart_id).first() if CART_ID.match(cart_id) else None
        # A worker sends it; a failure is said on the template's page when it is next loaded.
        services.template_test_send(template=template, cart=cart, to_email=user.email, by=user)
        messages.success(
            request, f"A test of “{template.name}” was sent to {user.email}; it arrives in a moment."
        )
    if request.htmx:
        return render(request, "base.html#messages", {})
    return redirect("carts:template", template.pk)


# --- suppressions ------------------------------------------------------------------------------------------


@group_required(SUPPORT)
@require_http_methods(["GET", "POST"])
def suppressions(request: HtmxHttpRequest) -> HttpResponse:
    """The suppression list: search it, add an address (with why)."""
    add_form = SuppressionAddForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and add_form.is_valid():
        services.suppression_add(
            email=add_form.cleaned_data["email"],
            reason=add_form.cleaned_data["reason"],
            source="staff",
            by=_user(request),
        )
        messages.success(request, f"{add_form.cleaned_data['email']} will get no recovery email.")
        return redirect("carts:suppressions")
    search = SuppressionSearchForm(request.GET or None)
    q = search.cleaned_data.get("q", "") if search.is_valid() else ""
    rows = Suppression.objects.select_related("added_by").order_by("-created_at", "-pk")
    if q:
        rows = rows.filter(Q(email__icontains=q) | Q(reason__icontains=q))
    page = Paginator(rows, SUPPRESSIONS_PAGE).get_page(request.GET.get("page"))
    context = {
        "search": search,
        "q": q,
        "add_form": add_form,
        "page_obj": page,
        "rows": list(page.object_list),
    }
    if request.htmx and request.htmx.target == "suppression-list":
        return render(request, "carts/suppressions.html#suppression-list", context)
    return render(request, "carts/suppressions.html", context)


@group_required(SUPPORT)
@require_POST
def suppression_delete(request: HtmxHttpRequest) -> HttpResponse:
    form = SuppressionRemoveForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Say why the address may be emailed again, then remove it.")
        return redirect("carts:suppressions")
    suppression = get_object_or_404(Suppression, pk=form.cleaned_data["suppression"])
    services.suppression_remove(
        suppression=suppression, by=_user(request), reason=form.cleaned_data["reason"]
    )
    messages.success(request, f"{suppression.email} may get recovery emails again.")
    return redirect("carts:suppressions")


# --- the demo Mailbox --------------------------------------------------------------------------------------


def _mailbox() -> Mailbox:
    if not queries.mailbox_enabled():
        raise Http404("There is no demo mailbox here.")
    return Mailbox(settings.MAILBOX_DIR)


MESSAGE_ID = re.compile(r"^[A-Za-z0-9._-]{1,120}$")


def _message_or_404(mailbox: Mailbox, message_id: str) -> Any:
    message = mailbox.get(message_id) if MESSAGE_ID.match(message_id) else None
    if message is None:
        raise Http404("No such message.")
    return message


@group_required(SUPPORT)
@require_GET
def mailbox(request: HtmxHttpRequest) -> HttpResponse:
    """What the demo's local SMTP server received, newest first."""
    box = _mailbox()
    # Paged by file name (newest first); only the shown page's messages are read and parsed.
    page = Paginator(box.ids(), 50).get_page(request.GET.get("page"))
    rows = [m for m in (box.get(message_id) for message_id in page.object_list) if m is not None]
    return render(request, "carts/mailbox.html", {"page_obj": page, "rows": rows})


@group_required(SUPPORT)
@require_GET
def mailbox_message(request: HtmxHttpRequest, message_id: str) -> HttpResponse:
    message = _message_or_404(_mailbox(), message_id)
    view = request.GET.get("view") if request.GET.get("view") in ("text", "headers") else "html"
    context = {
        "message": message,
        "view": view,
        "links": queries.mail_links(message),
        "html_url": reverse("carts:mailbox-html", args=[message_id]),
    }
    return render(request, "carts/mailbox_message.html", context)


@group_required(SUPPORT)
@require_GET
@xframe_options_sameorigin
def mailbox_html(request: HtmxHttpRequest, message_id: str) -> HttpResponse:
    message = _message_or_404(_mailbox(), message_id)
    return mail_html_response(queries.mail_part(message, "html") or "<p>This message has no HTML part.</p>")
