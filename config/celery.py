"""The Celery app: settings come from Django's, under the CELERY_ namespace."""

import os

from celery import Celery
from kombu.transport import TRANSPORT_ALIASES

# "filesystem://" means the embedded broker with atomic message writes (see config/broker.py).
TRANSPORT_ALIASES["filesystem"] = "config.broker:Transport"

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("orderdeck")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
