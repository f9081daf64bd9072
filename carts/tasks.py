"""Celery tasks of the carts app: ids in, one service call, retry only what may succeed later."""

from __future__ import annotations

import logging
import random
from datetime import timedelta

from celery import Task, shared_task
from django.conf import settings
from django.utils import timezone

from carts import sending, services
from carts.models import RecoverySend, SendStatus

logger = logging.getLogger(__name__)


def _backoff_s(retries: int) -> int:
    """Doubling from 10 s, jittered, up to CARTS_SEND_RETRY_CAP_S."""
    ceiling = min(settings.CARTS_SEND_RETRY_CAP_S, 10 * 2**retries)
    return max(1, int(ceiling / 2 + random.random() * ceiling / 2))


@shared_task(bind=True, max_retries=None)
def recovery_send_task(self: Task, send_id: int) -> str:
    """Check and send one recovery email (carts.sending). A deferral (4xx), an unreachable mail server or an
    unreadable HubSpot is retried with backoff, up to CARTS_SEND_MAX_RETRIES times; then the send fails."""
    try:
        return sending.recovery_send_deliver(send_id=send_id)
    except sending.RetryLater as exc:
        retries = int(self.request.retries or 0)
        if retries >= settings.CARTS_SEND_MAX_RETRIES:
            return sending.recovery_send_gave_up(send_id=send_id, why=str(exc))
        countdown = _backoff_s(retries)
        # The send's task is due then: the resume sweep leaves it alone until that time has passed.
        RecoverySend.objects.filter(pk=send_id, status=SendStatus.QUEUED).update(
            queued_at=timezone.now() + timedelta(seconds=countdown)
        )
        logger.info("recovery send %s: retry in %s s (%s)", send_id, countdown, exc)
        raise self.retry(countdown=countdown, exc=exc) from exc


def _defer(send_id: int, retries: int, why: Exception) -> None:
    """Queue one send again after a backoff (its own task from then on)."""
    countdown = _backoff_s(retries)
    RecoverySend.objects.filter(pk=send_id, status=SendStatus.QUEUED).update(
        queued_at=timezone.now() + timedelta(seconds=countdown)
    )
    logger.info("recovery send %s: retry in %s s (%s)", send_id, countdown, why)
    recovery_send_task.apply_async(args=(send_id,), countdown=countdown)


@shared_task(bind=True, max_retries=None)
def recovery_send_batch_task(self: Task, send_ids: list[int]) -> int:
    """Check and send a batch of recovery emails (a bulk send), their carts refreshed from HubSpot in one
    go. A send the mail server deferred continues as its own task; when HubSpot can't be read the whole
    batch is retried with backoff. Returns how many were sent."""
    try:
        outcomes, deferred = sending.recovery_sends_deliver(send_ids=send_ids)
    except sending.RetryLater as exc:
        retries = int(self.request.retries or 0)
        if retries >= settings.CARTS_SEND_MAX_RETRIES:
            for send_id in send_ids:
                sending.recovery_send_gave_up(send_id=send_id, why=str(exc))
            return 0
        countdown = _backoff_s(retries)
        RecoverySend.objects.filter(pk__in=send_ids, status=SendStatus.QUEUED).update(
            queued_at=timezone.now() + timedelta(seconds=countdown)
        )
        raise self.retry(countdown=countdown, exc=exc) from exc
    for send_id, why in deferred:
        _defer(send_id, 0, why)
    return sum(1 for status in outcomes.values() if status == SendStatus.SENT)


def queue_in_batches(send_ids: list[int]) -> None:
    """One batch task per CARTS_SEND_BATCH sends."""
    size = max(1, settings.CARTS_SEND_BATCH)
    for start in range(0, len(send_ids), size):
        recovery_send_batch_task.delay(send_ids[start : start + size])


@shared_task
def bulk_send_dispatch_task(bulk_id: int) -> int:
    """Queue one task per queued send of a bulk send."""
    return services.bulk_send_dispatch(bulk_id=bulk_id)


@shared_task
def bulk_send_resume_task() -> int:
    """Beat, every minute: sends left "sending" by a dead worker become uncertain, and queued sends whose
    task was lost (a worker or broker restart) are queued again. Returns how many were queued."""
    ids, uncertain = sending.recovery_sends_resume()
    queue_in_batches(ids)
    if ids or uncertain:
        logger.info("recovery sends: %s queued again, %s marked uncertain", len(ids), uncertain)
    return len(ids)


@shared_task
def recovery_sequence_tick_task() -> int:
    """Beat, every minute: request the recovery sequence's due steps (carts.sequences)."""
    from carts.sequences import sequence_tick

    return sequence_tick()


@shared_task(bind=True, max_retries=None)
def recovery_writeback_task(self: Task) -> int:
    """Beat, every minute (and after sends): make the recovery properties in HubSpot if missing, then put
    changed carts' values in the outbox. HubSpot unreachable: the next run tries again."""
    from carts.writeback import recovery_writeback
    from hubspot_sync.client import HubSpotError

    try:
        return recovery_writeback()
    except HubSpotError as exc:
        logger.warning("recovery properties: HubSpot could not be reached (%s); next run tries again", exc)
        return 0


@shared_task
def template_test_send_task(template_id: int, cart_id: int | None, to_email: str, user_id: int | None) -> str:
    """Send a template's test to a staff member (carts.services.template_test_deliver); a failure is kept for
    the template's page, never retried."""
    return services.template_test_deliver(
        template_id=template_id, cart_id=cart_id, to_email=to_email, user_id=user_id
    )
