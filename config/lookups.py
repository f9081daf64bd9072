"""Query lookups that keep request input from reaching the database as an error."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.db.models.lookups import In


class IntegerIn(In):
    """``__in`` on an integer column, leaving out numbers the column can't hold: they match no row.

    Django's other integer lookups already treat an out-of-range number as matching nothing; ``in`` passes it
    on, and SQLite's driver raises OverflowError for anything past 64 bits (an id list from a form, such as
    99999999999999999999, was a 500).
    """

    def process_rhs(self, compiler: Any, connection: Any) -> Any:
        if self.rhs_is_direct_value():
            low, high = connection.ops.integer_field_range(self.lhs.output_field.get_internal_type())
            self.rhs = [
                value
                for value in self.rhs
                if not isinstance(value, int)
                or ((low is None or value >= low) and (high is None or value <= high))
            ]
        return super().process_rhs(compiler, connection)


def register() -> None:
    # Every integer field (ids included: AutoField and BigAutoField are IntegerFields) takes it.
    models.IntegerField.register_lookup(IntegerIn)
