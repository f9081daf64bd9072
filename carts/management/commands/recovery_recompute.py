"""`python manage.py recovery_recompute`: work out every cart's recovery and recovered revenue again."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from carts.attribution import recovery_recompute


class Command(BaseCommand):
    help = "Recompute which carts recovery emails recovered, and the revenue credited to each email."

    def handle(self, *args: Any, **options: Any) -> None:
        recovered = recovery_recompute()
        self.stdout.write(f"{recovered} recovered carts.")
