"""Health checks for /healthz: the database, the broker, and whether a worker is alive."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection
from kombu import Connection

from hubspot_sync.models import WorkerHeartbeat

logger = logging.getLogger(__name__)


def check_database() -> dict[str, Any]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any driver error means "down"; the message says which
        logger.warning("health: database check failed: %s", exc)
        return {"ok": False, "error": exc.__class__.__name__}
    return {"ok": True, "vendor": connection.vendor}


def check_broker() -> dict[str, Any]:
    url = settings.CELERY_BROKER_URL
    transport = url.split("://", 1)[0]
    try:
        if transport == "filesystem":
            # The embedded broker is a folder: it is up when the folder is there and writable.
            folder = Path(settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"])
            probe = folder / ".healthz"
            probe.write_text("ok")
            probe.unlink()
        else:
            # A fresh connection from the settings, not the app's pooled one: a check must see the broker now.
            with Connection(url, transport_options=settings.CELERY_BROKER_TRANSPORT_OPTIONS) as conn:
                conn.ensure_connection(max_retries=1, timeout=2)
    except Exception as exc:  # any transport error means "down"
        logger.warning("health: broker check failed: %s", exc.__class__.__name__)
        return {"ok": False, "transport": transport, "error": exc.__class__.__name__}
    return {"ok": True, "transport": transport}


def check_worker() -> dict[str, Any]:
    latest = WorkerHeartbeat.objects.latest_beat()
    return {
        "ok": WorkerHeartbeat.objects.is_alive(),
        "last_heartbeat": latest.beat_at.isoformat() if latest else None,
    }
