"""The sign-in throttle: failed sign-ins counted per account and per client address in the cache.

Both sign-in pages (/login/ and /admin/login/) use the forms below. An account or address that reaches its
limit within the window may not sign in, not even with the right password, until the lockout ends; the form
says for how long. Counters live in the default cache, which production shares between processes (Redis).
Passwords are never logged; usernames are logged with repr(), so a crafted one cannot forge a log line.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from typing import Any

from django import forms
from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.core.cache import cache
from django.http import HttpRequest

logger = logging.getLogger("orderdeck.signin")


def client_address(request: HttpRequest | None) -> str:
    """The client's address: the connection's, or X-Forwarded-For's entry written by our own proxies."""
    if request is None:
        return "unknown"
    proxies = settings.LOGIN_THROTTLE_PROXY_COUNT
    if proxies > 0:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        forwarded = [part for part in forwarded if part]
        if len(forwarded) >= proxies:
            return forwarded[-proxies][:64]
    return str(request.META.get("REMOTE_ADDR") or "unknown")[:64]


def _account_key(username: str) -> str:
    # Case-folded, so "Alice" and "alice" share a count; hashed, so any text makes a valid cache key.
    return hashlib.sha256(username.casefold().encode("utf-8", "replace")).hexdigest()


def _keys(request: HttpRequest | None, username: str) -> list[tuple[str, str, int]]:
    """(counter key, lock key, limit) for the account and for the address."""
    account, address = _account_key(username), client_address(request)
    return [
        (
            f"signin:fail:user:{account}",
            f"signin:lock:user:{account}",
            settings.LOGIN_THROTTLE_ACCOUNT_FAILURES,
        ),
        (
            f"signin:fail:addr:{address}",
            f"signin:lock:addr:{address}",
            settings.LOGIN_THROTTLE_ADDRESS_FAILURES,
        ),
    ]


def wait_s(request: HttpRequest | None, username: str) -> float:
    """Seconds until this account and address may try again (0: now)."""
    locks = cache.get_many([lock for _, lock, _ in _keys(request, username)])
    until = max((float(value) for value in locks.values()), default=0.0)
    return max(0.0, until - time.time())


def record_failure(request: HttpRequest | None, username: str) -> None:
    """Count a failed sign-in for the account and the address; lock whichever reaches its limit."""
    address = client_address(request)
    for counter, lock, limit in _keys(request, username):
        cache.add(counter, 0, timeout=settings.LOGIN_THROTTLE_WINDOW_S)
        try:
            failures = cache.incr(counter)
        except ValueError:  # expired between add and incr
            cache.set(counter, 1, timeout=settings.LOGIN_THROTTLE_WINDOW_S)
            failures = 1
        if failures >= limit:
            lockout = settings.LOGIN_THROTTLE_LOCKOUT_S
            cache.set(lock, time.time() + lockout, timeout=lockout)
            logger.warning(
                "sign-in locked for %d s: %d failed sign-ins for %s (account %r, address %s)",
                lockout,
                failures,
                "the account" if ":user:" in lock else "the address",
                username[:150],
                address,
            )
    logger.warning("sign-in failed: account %r from address %s", username[:150], address)


def record_success(username: str) -> None:
    """A successful sign-in clears its account's count (not the address's: one good account must not
    reset the count of an address trying many)."""
    counter, _, _ = _keys(None, username)[0]
    cache.delete(counter)


def _minutes(seconds: float) -> str:
    minutes = max(1, math.ceil(seconds / 60))
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


class ThrottledLoginMixin:
    """For AuthenticationForm and its admin form: refuse while locked, count failures, clear on success."""

    request: HttpRequest | None
    cleaned_data: dict[str, Any]
    user_cache: Any

    def clean(self) -> dict[str, Any]:
        username = str(self.cleaned_data.get("username") or "")
        attempted = bool(username and self.cleaned_data.get("password"))
        if attempted and (wait := wait_s(self.request, username)):
            logger.warning(
                "sign-in refused while locked: account %r from address %s",
                username[:150],
                client_address(self.request),
            )
            raise forms.ValidationError(
                f"Too many failed sign-ins; try again in {_minutes(wait)}.", code="throttled"
            )
        try:
            cleaned: dict[str, Any] = super().clean()  # type: ignore[misc]
        except forms.ValidationError:
            # Only a wrong username or password counts (not, say, a non-staff account on the admin's page).
            if attempted and self.user_cache is None:
                record_failure(self.request, username)
            raise
        if attempted:
            record_success(username)
        return cleaned


class ThrottledLoginForm(ThrottledLoginMixin, AuthenticationForm):
    """The sign-in form of /login/."""


class ThrottledAdminLoginForm(ThrottledLoginMixin, AdminAuthenticationForm):
    """The sign-in form of /admin/login/."""
