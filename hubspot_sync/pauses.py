"""What stops sync and push, and what ends it: a rejected token (until someone fixes it and syncs) and
HubSpot's daily API limit (until its reset at midnight in the account's time zone, a successful probe, or a
Pipeline admin's "Resume now"); and HubSpot's errors in plain words for runs and cards.

Every pause is a ``ConnectionProblem`` row: its banner shows on every page, and both sync and push look at
it before they spend a call.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.utils import timezone

from hubspot_sync import client, jobs
from hubspot_sync.leases import lease_acquire
from hubspot_sync.models import ConnectionProblem

logger = logging.getLogger(__name__)

# A lease row named so throttles the probe: it is taken at most once per HUBSPOT_DAILY_LIMIT_PROBE_S.
PROBE_LEASE = "probe:daily-limit"

AUTH_ADVICE = (
    "Set HUBSPOT_ACCESS_TOKEN to a valid private-app token with read and write scopes for orders, carts, "
    "line items and contacts, then press “Sync now”."
)


# --- the daily reset ---------------------------------------------------------------------------------------


def account_zone() -> ZoneInfo:
    """The HubSpot account's time zone (HUBSPOT_ACCOUNT_TIMEZONE); UTC when unset or unknown."""
    try:
        return ZoneInfo(settings.HUBSPOT_ACCOUNT_TIMEZONE or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        logger.warning("HUBSPOT_ACCOUNT_TIMEZONE is not a known time zone; UTC is used")
        return ZoneInfo("UTC")


def next_daily_reset(after: datetime | None = None) -> datetime:
    """The first midnight in the account's time zone after ``after`` (default now), in UTC.

    "The daily limit resets at midnight based on your time zone setting" (reference §3, usage details). Which
    API call would tell the account's time zone is UNCONFIRMED (the reference names none), so it is a
    setting. Whether the reset on a daylight-saving day follows the wall clock is UNCONFIRMED too; this
    follows the wall clock. A Retry-After on the 429, when HubSpot sends one, wins (daily_limit_until)."""
    zone = account_zone()
    local = (after or timezone.now()).astimezone(zone)
    midnight = datetime.combine(local.date() + timedelta(days=1), time(0, 0), tzinfo=zone)
    return midnight.astimezone(ZoneInfo("UTC"))


def reset_label(moment: datetime) -> str:
    """A reset time as staff read it: "00:00 UTC", "00:00 Europe/Berlin"."""
    zone = account_zone()
    return f"{moment.astimezone(zone):%H:%M} {zone.key}"


def daily_limit_until(exc: client.DailyLimitReached) -> datetime:
    """When a daily-limit pause ends: HubSpot's Retry-After when it sent one, else the next reset."""
    return exc.resets_at or next_daily_reset()


def daily_limit_message(until: datetime) -> str:
    return (
        f"HubSpot's daily API limit is spent until {reset_label(until)}. Edits are saved here and reach "
        "HubSpot then; syncing resumes then too (or sooner, if a check finds the limit lifted)."
    )


# --- recording and ending pauses ----------------------------------------------------------------------


def record_daily_limit(exc: client.DailyLimitReached) -> ConnectionProblem:
    """Pause sync and push until the daily limit resets; never without an end."""
    until = daily_limit_until(exc)
    problem, _ = ConnectionProblem.objects.update_or_create(
        kind=ConnectionProblem.Kind.DAILY_LIMIT,
        defaults={"message": daily_limit_message(until), "detail": exc.message[:4000], "until": until},
    )
    return problem


def record_auth_failed(exc: client.AuthFailed, message: str | None = None) -> ConnectionProblem:
    problem, _ = ConnectionProblem.objects.update_or_create(
        kind=ConnectionProblem.Kind.AUTH,
        defaults={
            "message": message or f"HubSpot refused the access token. {AUTH_ADVICE}",
            "detail": exc.message[:4000],
        },
    )
    return problem


def record(exc: client.HubSpotError) -> ConnectionProblem | None:
    """The pause an error calls for, if any (a rejected token, the daily limit)."""
    if isinstance(exc, client.DailyLimitReached):
        return record_daily_limit(exc)
    if isinstance(exc, client.AuthFailed):
        return record_auth_failed(exc)
    return None


def end_expired(now: datetime | None = None) -> int:
    """Drop daily-limit pauses whose reset has passed. One stored without an end (before ends were always
    set) ends at the first reset after it began."""
    now = now or timezone.now()
    count = ConnectionProblem.objects.filter(
        kind=ConnectionProblem.Kind.DAILY_LIMIT, until__lte=now
    ).delete()[0]
    for problem in ConnectionProblem.objects.filter(kind=ConnectionProblem.Kind.DAILY_LIMIT, until=None):
        if next_daily_reset(problem.since) <= now:
            count += ConnectionProblem.objects.filter(pk=problem.pk).delete()[0]
    return count


def active() -> ConnectionProblem | None:
    """The pause in force now, if any (ended daily-limit pauses are dropped first)."""
    if not ConnectionProblem.objects.exists():
        return None  # the common case, read without a write (which on SQLite would hold up edits)
    end_expired()
    return ConnectionProblem.objects.order_by("kind").first()


def probe_daily_limit(*, force: bool = False) -> bool | None:
    """While a daily-limit pause is in force, try one cheap call (a one-record list) at most every
    HUBSPOT_DAILY_LIMIT_PROBE_S; when HubSpot answers, the pause ends at once. Returns True when it ended the
    pause, False when HubSpot still refuses, None when no probe was due."""
    if not ConnectionProblem.objects.filter(kind=ConnectionProblem.Kind.DAILY_LIMIT).exists():
        return None
    if end_expired():
        return True
    if not ConnectionProblem.objects.filter(kind=ConnectionProblem.Kind.DAILY_LIMIT).exists():
        return None
    # A lease no one releases: whoever takes it probes, and nobody else can until it expires.
    if not force and not lease_acquire(PROBE_LEASE, uuid.uuid4().hex, settings.HUBSPOT_DAILY_LIMIT_PROBE_S):
        return None
    try:
        client.list_objects("contacts", properties=["hs_object_id"], limit=1)
    except client.DailyLimitReached as exc:
        logger.info("daily-limit probe: HubSpot still refuses (%s)", exc.message[:200])
        return False
    except client.HubSpotError as exc:
        # Not the daily limit any more, but not an answer either: leave the pause to the next probe.
        logger.info("daily-limit probe: %s", plain_words(exc))
        return False
    ended = ConnectionProblem.objects.filter(kind=ConnectionProblem.Kind.DAILY_LIMIT).delete()[0]
    if ended:
        logger.info("daily-limit probe: HubSpot answers again; sync and push resume")
        _queue_catch_up()
    return bool(ended)


def resume_now() -> int:
    """A Pipeline admin's "Resume now": end the daily-limit pause and queue a sync and a push at once."""
    ended = ConnectionProblem.objects.filter(kind=ConnectionProblem.Kind.DAILY_LIMIT).delete()[0]
    _queue_catch_up()
    return int(ended)


def _queue_catch_up() -> None:
    jobs.task("sync_incremental").delay(manual=True)
    jobs.task("push_changes").delay()


# --- errors in plain words ---------------------------------------------------------------------------------


def _tries(exc: client.HubSpotError) -> str:
    attempts = int(getattr(exc, "attempts", 1) or 1)
    return "once" if attempts == 1 else f"for {attempts} tries"


def plain_words(exc: BaseException) -> str:
    """What went wrong, as staff would say it; HubSpot's own message is kept apart (``error_detail``)."""
    if isinstance(exc, client.DailyLimitReached):
        return daily_limit_message(daily_limit_until(exc))
    if isinstance(exc, client.AuthFailed):
        return f"HubSpot refused the token. {AUTH_ADVICE}"
    if isinstance(exc, client.RateLimited):
        if exc.policy_name == "LOCAL_LIMITER":
            return "OrderDeck's shared rate limit had no room for HubSpot calls for too long; it tries again."
        return f"HubSpot kept answering “too many requests” {_tries(exc)}; it tries again shortly."
    if isinstance(exc, client.Retryable):
        if exc.status is None:
            how = "timing out" if "timed out" in exc.message else "the connection failing"
            return f"HubSpot was unreachable {_tries(exc)} ({how}); it tries again shortly."
        if exc.status == 423:
            return f"HubSpot kept the records locked {_tries(exc)}; it tries again shortly."
        return f"HubSpot had a server error (HTTP {exc.status}) {_tries(exc)}; it tries again shortly."
    if isinstance(exc, client.NotFound):
        return f"HubSpot could not find what was asked for: {exc.message}"
    if isinstance(exc, client.Rejected):
        return f"HubSpot refused a request (HTTP {exc.status}): {exc.message}"
    if isinstance(exc, client.HubSpotError):
        return f"HubSpot answered with an error: {exc.message}"
    return "The sync stopped on an unexpected error; it resumes from where it stopped."
