"""Response headers every page gets: the Content-Security-Policy, and no caching of what staff see."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.utils.cache import add_never_cache_headers


def content_security_policy() -> str:
    """settings.CONTENT_SECURITY_POLICY as a header value."""
    return "; ".join(f"{name} {value}" for name, value in settings.CONTENT_SECURITY_POLICY.items())


class SecurityHeadersMiddleware:
    """Adds the CSP to every response that has none, and ``Cache-Control: no-store, private`` to every
    response for a signed-in person: pages, partials and exports all show customer data, which must stay
    out of shared caches and the browser's disk cache. Static files are served before this runs (WhiteNoise)
    and keep their own caching."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response
        self.policy = content_security_policy()

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", self.policy)
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            add_never_cache_headers(response)
        return response
