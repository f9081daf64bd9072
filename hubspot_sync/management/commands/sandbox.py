"""``python manage.py sandbox``: serve the local HubSpot sandbox until Ctrl-C, with the project's settings
as defaults (port, token, webhook secret). The emulator is ``hubspot_sandbox``; this only wraps its CLI."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from hubspot_sandbox import cli


class Command(BaseCommand):
    help = cli.DESCRIPTION
    # The sandbox shares nothing with the app (no database, no URLs): it starts without the app's checks.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        cli.add_arguments(
            parser,
            port=settings.SANDBOX_PORT,
            token=settings.HUBSPOT_ACCESS_TOKEN,
            webhook_secret=settings.HUBSPOT_CLIENT_SECRET,
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            config = cli.config_from_options(options)
        except cli.OptionError as exc:
            raise CommandError(str(exc)) from None
        cli.serve(config, lambda line: self.stdout.write(line))
