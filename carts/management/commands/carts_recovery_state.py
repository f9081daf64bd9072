"""Recompute every cart's stored recovery state (``Cart.recovery_state``); writes only those that differ."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from carts.recovery_state import recovery_state_refresh


class Command(BaseCommand):
    help = "Recompute every cart's stored recovery state (only carts whose state differs are written)."

    def handle(self, *args: Any, **options: Any) -> None:
        changed = recovery_state_refresh()
        self.stdout.write(f"{changed} carts' recovery state corrected.")
