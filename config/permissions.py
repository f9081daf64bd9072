"""Who may do what: the two staff groups, checked in views (a partial can be requested alone)."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.utils.functional import SimpleLazyObject

R = TypeVar("R", bound=HttpResponseBase)

SUPPORT = "Support"
PIPELINE_ADMIN = "Pipeline admin"
GROUPS = (SUPPORT, PIPELINE_ADMIN)


def in_group(user: AbstractBaseUser | AnonymousUser, group: str) -> bool:
    if not user.is_authenticated or not user.is_active:
        return False
    if getattr(user, "is_superuser", False):
        return True
    return user.groups.filter(name=group).exists()  # type: ignore[attr-defined]


def group_required(group: str) -> Callable[[Callable[..., R]], Callable[..., R]]:
    """Refuse (403) a signed-in user outside the group; LoginRequiredMiddleware handles anonymous users."""

    def decorator(view: Callable[..., R]) -> Callable[..., R]:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> R:
            if not in_group(request.user, group):
                raise PermissionDenied(f"This page is for the “{group}” group.")
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


def _may(request: HttpRequest) -> dict[str, bool]:
    # Read once per request: partials rendered within a page run the context processors again.
    cached: dict[str, bool] | None = getattr(request, "_orderdeck_may", None)
    if cached is not None:
        return cached
    user = request.user
    if not user.is_authenticated or not user.is_active:
        cached = {"support": False, "pipelines": False}
    elif getattr(user, "is_superuser", False):
        cached = {"support": True, "pipelines": True}
    else:
        names = set(user.groups.values_list("name", flat=True))  # type: ignore[attr-defined]
        cached = {"support": SUPPORT in names, "pipelines": PIPELINE_ADMIN in names}
    request._orderdeck_may = cached  # type: ignore[attr-defined]
    return cached


def navigation(request: HttpRequest) -> dict[str, Any]:
    """Template context ``may``: which parts the signed-in person may open (``may.support``,
    ``may.pipelines``), so navigation shows only links that lead somewhere, never to a refusal (403)."""
    if not getattr(request, "user", None):
        return {"may": {"support": False, "pipelines": False}}
    return {"may": SimpleLazyObject(lambda: _may(request))}
