"""Every URL pattern sends an anonymous visitor to the login page, except an explicit allow-list."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

pytestmark = pytest.mark.django_db

# Names of the views an anonymous visitor may reach, and why.
ALLOWED_ANONYMOUS = {
    "login",  # the sign-in page itself
    "healthz",  # probed by load balancers
    "admin:login",  # Django admin's own sign-in page
    "hubspot-webhook",  # HubSpot posts here; the v3 signature is checked instead of a login
    "favicon",  # browsers ask for it on every site; a redirect to the static icon
    "recovery-click",  # a recovery email's tracked link: customers are not signed in; the link is signed
    "recovery-unsubscribe",  # a recovery email's one-click unsubscribe (RFC 8058), signed likewise
}


def all_patterns(
    resolver: URLResolver | None = None, prefix: str = "", namespace: str = ""
) -> list[tuple[str, str]]:
    """(name, example path) for every URL pattern, with path parameters filled by sample values."""
    resolver = resolver or get_resolver()
    found: list[tuple[str, str]] = []
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            ns = entry.namespace or namespace
            sub = ns if not namespace or ns == namespace else f"{namespace}:{ns}"
            found += all_patterns(entry, prefix + str(entry.pattern), sub)
        elif isinstance(entry, URLPattern):
            name = (
                f"{namespace}:{entry.name}"
                if namespace and entry.name
                else (entry.name or str(entry.pattern))
            )
            found.append((name, prefix + str(entry.pattern)))
    return found


def example_path(pattern: str) -> str:
    path = re.sub(r"<(?:int|slug|str|uuid|path):?[^>]*>|<[^>]+>", "1", pattern)
    path = path.lstrip("^").rstrip("$").replace("\\Z", "")
    path = re.sub(r"\(\?P<\w+>[^)]*\)", "1", path)
    return "/" + path.replace("\\", "")


def test_the_allow_list_names_real_patterns() -> None:
    names = {name for name, _ in all_patterns()}
    assert names >= ALLOWED_ANONYMOUS


@pytest.mark.parametrize(("name", "pattern"), [p for p in all_patterns() if p[0] not in ALLOWED_ANONYMOUS])
def test_anonymous_visitors_are_sent_to_login(client: Any, name: str, pattern: str) -> None:
    response = client.get(example_path(pattern))
    assert response.status_code == 302, f"{name} answered {response.status_code} to an anonymous visitor"
    assert re.match(r"^/(admin/)?login/", response["Location"]), response["Location"]


@pytest.mark.parametrize(("name", "pattern"), [p for p in all_patterns() if p[0] in ALLOWED_ANONYMOUS])
def test_the_allow_list_answers_anonymous_visitors(client: Any, name: str, pattern: str) -> None:
    # The webhook takes only POST: a GET is refused as a method, not sent to a login page.
    # The favicon is a redirect to the static file.
    # A recovery link with a made-up token shows the friendly "this link does not work" page, as a 400.
    expected = {
        "hubspot-webhook": 405,
        "favicon": 302,
        "recovery-click": 400,
        "recovery-unsubscribe": 400,
    }.get(name, 200)
    assert client.get(example_path(pattern)).status_code == expected
