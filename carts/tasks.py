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


@shared_task
def bulk_send_dispatch_task(bulk_id: int) -> int:
    """Queue one task per queued send of a bulk send."""
    return services.bulk_send_dispatch(bulk_id=bulk_id)


@shared_task
def bulk_send_resume_task() -> int:
    """Beat, every minute: sends left "sending" by a dead worker become uncertain, and queued sends whose
    task was lost (a worker or broker restart) are queued again. Returns how many were queued."""
    ids, uncertain = sending.recovery_sends_resume()
    for send_id in ids:
        recovery_send_task.delay(send_id)
    if ids or uncertain:
        logger.info("recovery sends: %s queued again, %s marked uncertain", len(ids), uncertain)
    return len(ids)
