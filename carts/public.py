"""The two public pages a recovery email links to: the tracked link back to the cart, and unsubscribe.

Customers are not signed in, so both are exempt from the login requirement; the unsubscribe POST is also
exempt from CSRF, since mail providers post the RFC 8058 one-click body (``List-Unsubscribe=One-Click``)
without a token. Both act only on what the signed link names, so neither needs one.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from carts import links, services

PREVIEW = "preview"


def _refused(request: HttpRequest, exc: links.LinkInvalid | None) -> HttpResponse:
    context = {"expired": isinstance(exc, links.LinkExpired), "preview": exc is None}
    return render(request, "carts/link_invalid.html", context, status=200 if exc is None else 400)


def _masked(email: str) -> str:
    local, _, domain = email.partition("@")
    return f"{local[:1]}{'•' * min(max(len(local) - 1, 1), 6)}@{domain}" if domain else ""


@login_not_required
@never_cache
@require_GET
def recovery_click(request: HttpRequest, token: str) -> HttpResponse:
    """Record the click and send the customer to the cart's stored recovery link, nowhere else."""
    if token == PREVIEW:
        return _refused(request, None)
    try:
        url = services.click(token)
    except links.LinkInvalid as exc:
        return _refused(request, exc)
    if not url:
        return render(request, "carts/link_no_cart.html", status=404)
    response = HttpResponseRedirect(url)
    response["Referrer-Policy"] = "no-referrer"
    return response


@login_not_required
@csrf_exempt
@never_cache
@require_http_methods(["GET", "POST"])
def recovery_unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """GET: a page with an Unsubscribe button (a link preview must not unsubscribe anyone). POST (that
    button, or a mail provider's RFC 8058 one-click POST): unsubscribe at once."""
    if token == PREVIEW:
        return _refused(request, None)
    try:
        if request.method == "POST":
            email = services.unsubscribe(token)
            return render(request, "carts/link_unsubscribe.html", {"done": True, "email": _masked(email)})
        email = services.unsubscribe_address(token)
    except links.LinkInvalid as exc:
        return _refused(request, exc)
    return render(request, "carts/link_unsubscribe.html", {"done": False, "email": _masked(email)})
