"""Start the whole product on the embedded default: sandbox, worker, beat and web server, with demo data.

Every process is started in its own session, so Ctrl-C (or SIGTERM) stops each one and whatever it
started in turn; none is left behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.test.utils import override_settings

from config.permissions import GROUPS
from hubspot_sync import portal_check, sync
from hubspot_sync.models import SyncKind
from hubspot_sync.worker import beat_command, worker_command

DEMO_USERNAME = "demo"
DEMO_PASSWORD = "orderdeck-demo"  # noqa: S105 - the documented demo login, for the local demo only


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]


class Command(BaseCommand):
    help = "Start OrderDeck with the HubSpot sandbox, a Celery worker, beat and the web server."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default=os.environ.get("ORDERDECK_HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("ORDERDECK_PORT", "8000")))
        parser.add_argument("--sandbox-port", type=int, default=settings.SANDBOX_PORT)
        parser.add_argument("--orders", type=int, default=400, help="orders the sandbox is seeded with")
        parser.add_argument(
            "--live", type=float, default=20.0, help="seconds between live sandbox changes (0: off)"
        )
        parser.add_argument("--no-sandbox", action="store_true", help="use HUBSPOT_API_BASE as it is")

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.PRODUCTION:
            raise CommandError("The demo runs on the embedded default; unset ORDERDECK_MODE=production.")
        host, port, sandbox_port = options["host"], options["port"], options["sandbox_port"]
        ports = [port] if options["no_sandbox"] else [port, sandbox_port]
        for p in ports:
            if not _port_free(host, p):
                raise CommandError(
                    f"Port {p} on {host} is in use. Stop what runs there, or pass --port/--sandbox-port."
                )

        call_command("migrate", interactive=False, verbosity=0)
        self._ensure_demo_user()

        env = os.environ.copy()
        env.setdefault("PYTHONUNBUFFERED", "1")
        if not options["no_sandbox"]:
            env["HUBSPOT_API_BASE"] = f"http://127.0.0.1:{sandbox_port}"
        python, manage = sys.executable, str(settings.BASE_DIR / "manage.py")
        commands: list[tuple[str, list[str]]] = []
        if not options["no_sandbox"]:
            sandbox = [
                python,
                manage,
                "sandbox",
                "--host",
                "127.0.0.1",
                "--port",
                str(sandbox_port),
                "--orders",
                str(options["orders"]),
                "--contacts",
                str(max(options["orders"] // 2, 10)),
                "--carts",
                str(max(options["orders"] // 2, 10)),
                "--snapshot",
                str(settings.DATA_DIR / "sandbox-snapshot.json.gz"),
                "--token",
                settings.HUBSPOT_ACCESS_TOKEN,
                # The sandbox's signed webhooks come to this app, as HubSpot's would.
                "--webhook-url",
                f"http://{host}:{port}/hubspot/webhooks/",
                "--webhook-secret",
                settings.HUBSPOT_CLIENT_SECRET,
            ]
            if options["live"] > 0:
                sandbox += ["--live", str(options["live"])]
            commands.append(("sandbox", sandbox))
        # Recovery emails go through Django's SMTP backend to a local mail server, whose messages the Mailbox
        # page shows (unless EMAIL_HOST/EMAIL_PORT name another server); their links come back to this app.
        # Its port moves to a free one when MAILBOX_PORT is taken (another demo), for every process.
        if settings.EMAIL_HOST in {"127.0.0.1", "localhost"} and settings.EMAIL_PORT == settings.MAILBOX_PORT:
            mail_port = settings.MAILBOX_PORT
            if not _port_free("127.0.0.1", mail_port):
                with socket.socket() as probe:
                    probe.bind(("127.0.0.1", 0))
                    mail_port = probe.getsockname()[1]
            env["EMAIL_PORT"] = env["MAILBOX_PORT"] = str(mail_port)
            commands.append(("mail", [python, manage, "mailserver", "--port", str(mail_port)]))
        env.setdefault("SITE_URL", f"http://{host}:{port}")
        commands += [
            ("worker", worker_command(hostname=f"demo-worker@{socket.gethostname()}", concurrency=2)),
            ("beat", beat_command(schedule=settings.CELERY_BEAT_SCHEDULE_FILENAME)),
            ("web", [python, manage, "runserver", f"{host}:{port}", "--noreload"]),
        ]

        children: list[Child] = []
        stopping = False

        def stop(signum: int, frame: object) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            for name, command in commands:
                # A new session per child: a terminal's Ctrl-C reaches only us, and we stop each child's
                # whole process group, so grandchildren (worker pool processes) go too.
                children.append(Child(name, subprocess.Popen(command, env=env, start_new_session=True)))
            url = f"http://{host}:{port}/"
            ready = _wait_for(url + "healthz", children, lambda: stopping)
            if ready and not options["no_sandbox"]:
                self._initial_sync(f"http://127.0.0.1:{sandbox_port}", children, lambda: stopping)
            if ready:
                self.stdout.write(self.style.SUCCESS(f"\nOrderDeck is running at {url}"))
                self.stdout.write(f"Sign in as “{DEMO_USERNAME}” with the password “{DEMO_PASSWORD}”.")
                if not options["no_sandbox"]:
                    self.stdout.write(f"HubSpot sandbox: http://127.0.0.1:{sandbox_port}/")
                self.stdout.write("Press Ctrl-C to stop everything.\n")
            while not stopping:
                for child in children:
                    code = child.process.poll()
                    if code is not None:
                        self.stderr.write(
                            f"The {child.name} process stopped (exit {code}); stopping the demo."
                        )
                        stopping = True
                time.sleep(0.3)
        finally:
            _stop_all(children)
            self.stdout.write("Stopped.")

    def _initial_sync(self, sandbox_url: str, children: list[Child], stopped: Any) -> None:
        """Fill the cache before the first page is opened (a full read the first time, changes after)."""
        if not _wait_for(sandbox_url + "/_sandbox/health", children, stopped, timeout_s=300):
            return
        with override_settings(HUBSPOT_API_BASE=sandbox_url):
            # A sandbox that started without its snapshot was seeded afresh: its records are not the ones
            # the cache holds. Say so, and leave the choice of a full resync to the Sync page, rather than
            # mixing the new records in with an incremental read.
            mismatch = portal_check.check_at_start()
            if mismatch is not None:
                self.stderr.write(
                    self.style.WARNING(
                        f"{mismatch.message} Open the Sync page and press “Full resync” "
                        "(or run: manage.py sync --full)."
                    )
                )
                return
            try:
                run = sync.run_sync(SyncKind.INCREMENTAL, manual=True)
            except (sync.SyncBusy, sync.SyncHalted) as exc:
                self.stderr.write(f"The first sync did not run: {exc}")
                return
            if run.status == "succeeded":
                portal_check.remember_if_new()
        if run.status == "succeeded":
            self.stdout.write(f"Synced from the sandbox: {run.objects_written:,} records written.")
        else:
            self.stderr.write(f"The first sync failed: {run.error_message} ({run.error_detail})")

    def _ensure_demo_user(self) -> None:
        user, _ = User.objects.get_or_create(
            username=DEMO_USERNAME, defaults={"first_name": "Demo", "last_name": "User"}
        )
        user.is_staff = True
        user.is_superuser = True  # so the demo login can manage users in Django's admin too
        user.set_password(DEMO_PASSWORD)
        user.save()
        user.groups.add(*Group.objects.filter(name__in=GROUPS))


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _wait_for(url: str, children: list[Child], stopped: Any, timeout_s: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not stopped():
        if any(c.process.poll() is not None for c in children):
            return False
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - our own local URL
                if response.status in (200, 503):
                    return True
        except urllib.error.HTTPError:
            return True
        except OSError:
            pass
        time.sleep(0.3)
    return False


def _stop_all(children: list[Child], grace_s: float = 10.0) -> None:
    """SIGTERM every child's process group, wait, then SIGKILL what is left."""
    for child in reversed(children):
        _signal_group(child.process, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for child in children:
        remaining = max(deadline - time.monotonic(), 0.1)
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.process.wait(timeout=remaining)
    for child in children:
        # The group may outlive its leader (pool processes): kill the whole group whatever the leader did.
        _signal_group(child.process, signal.SIGKILL)
        if child.process.poll() is None:
            child.process.wait(timeout=5)


def _signal_group(process: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)
