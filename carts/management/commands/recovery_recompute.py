"""`python manage.py recovery_recompute`: work out every cart's recovery and recovered revenue again, and
count the recovery dashboard's daily figures again."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from carts.attribution import recovery_recompute
from carts.summary import summary_rebuild


class Command(BaseCommand):
    help = (
        "Recompute which carts recovery emails recovered, the revenue credited to each email, and the "
        "dashboard's daily figures."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        recovered = recovery_recompute()
        rows = summary_rebuild()
        self.stdout.write(f"{recovered} recovered carts; {rows} rows of daily figures.")
