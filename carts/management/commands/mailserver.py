"""``manage.py mailserver``: the demo's local SMTP server, keeping what it receives for the Mailbox page."""

from __future__ import annotations

import signal
import threading
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from carts.mailbox import MailServer


class Command(BaseCommand):
    help = "Run a local SMTP server that stores every message it receives in MAILBOX_DIR (relays nothing)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=settings.MAILBOX_PORT)
        parser.add_argument("--dir", default=str(settings.MAILBOX_DIR), help="where messages are stored")

    def handle(self, *args: Any, **options: Any) -> None:
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        server = MailServer(options["dir"], host=options["host"], port=options["port"])
        server.start()
        self.stdout.write(f"Mail server on {server.host}:{server.port}, storing messages in {server.folder}")
        self.stdout.flush()
        try:
            stop.wait()
        finally:
            server.stop()
