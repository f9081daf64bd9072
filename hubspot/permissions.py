"""Who may do what: the two staff groups, checked in views (a partial can be requested alone)."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.http.response import HttpResponseBase

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
