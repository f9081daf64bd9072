"""The recovery dashboard's daily figures (``RecoveryDay``): per day, store, step, template and currency, the
emails sent (handed to the mail server), delivered (accepted), clicked, the carts they recovered and the
revenue. The dashboard reads these few thousand rows instead of counting a hundred thousand sends.

Days are the days the emails went out (``sending_at``) in the site's time zone (TIME_ZONE); the store is the
cart's; a template that was deleted keeps its id here (its sends' template became NULL): the dashboard reads
an id that no longer names a template as none. The email counts are on the row whose currency is ""; a
recovery is on its own currency's row, on the day, step and template of the email credited with it.

Kept exact by:
- increments where a send, a delivery and a click are recorded (carts.sending, carts.services.click);
- the difference before and after, where attribution writes recoveries (carts.attribution: as orders arrive
  and in a recompute);
- counting affected days again from the sends and recoveries (``summary_rebuild``), idempotently: after
  retention and erasure (carts.privacy), a cart's new store (its sync hook), a send or recovery saved or
  deleted one by one; and every day by the ``recovery_recompute`` command or after a change of TIME_ZONE.
Carts are never deleted here (HubSpot's deletions archive them), so no send disappears uncounted.

On PostgreSQL, days are locked with advisory locks: an increment takes its days' locks shared, a count of a
day again takes them exclusive, so no increment interleaves with it, and each reads what it counts (the
carts' stores) once it holds them. Increments are the last thing their transactions do and write one row each
in the worker's and the click's paths (the email counts, on currency ""); attribution writes the recovery
rows (currency "?" for a recovery without one), in key order. A count again is the last thing its transaction
does, and the one a cart's new store calls for runs after the sync's transaction, in its own; so none of them
waits for anything while holding a day. Attribution also locks its carts, so the recoveries it reads as
"before" are still there when it writes. On SQLite write transactions run one at a time.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection, transaction
from django.db.models import BigIntegerField, Count, F, Q, Sum
from django.db.models.functions import Cast, Round, Substr, TruncDate

from carts.models import Cart, Recovery, RecoveryDay, RecoverySend, SendStatus, SequenceSettings
from hubspot_sync import registry
from hubspot_sync.cache import chunks
from hubspot_sync.registry import MirrorType

# (day, store, step, template id or 0, currency)
Key = tuple[date, str, int, int, str]
FIGURES = ("sent", "delivered", "clicked", "recovered", "revenue")
# Revenue is kept in ten-thousandths (Recovery.amount has four decimal places): integer sums are exact on
# SQLite too, whose decimals are floating point.
SCALE = 10_000
# A recovery without a currency: its own rows, never the email counts' ("").
NO_CURRENCY = "?"
# Namespaces of the two-key advisory locks (PostgreSQL).
_DAY_LOCKS = 14
_CART_LOCKS = 15


def zone() -> ZoneInfo:
    return ZoneInfo(settings.TIME_ZONE)


def day_of(moment: datetime) -> date:
    return moment.astimezone(zone()).date()


def _day_expression(field: str) -> Any:
    """The local day of a datetime column in SQL. On SQLite in UTC, the first ten characters of the stored
    text (Django's zone-aware cast is a Python function called once a row)."""
    if connection.vendor == "sqlite" and settings.TIME_ZONE in {"UTC", "Etc/UTC"}:
        return Substr(field, 1, 10)
    return TruncDate(field, tzinfo=zone())


def _as_date(value: date | str) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)


def _in_days(field: str, days: Iterable[date]) -> Q:
    """``field`` within one of the days (consecutive days as one range)."""
    found = Q(pk__in=[])
    ordered = sorted(set(days))
    start = 0
    for index, day in enumerate(ordered):
        if index + 1 < len(ordered) and ordered[index + 1] == day + timedelta(days=1):
            continue
        first, last = ordered[start], day
        found |= Q(
            **{
                f"{field}__gte": datetime.combine(first, time.min, tzinfo=zone()),
                f"{field}__lt": datetime.combine(last + timedelta(days=1), time.min, tzinfo=zone()),
            }
        )
        start = index + 1
    return found


def to_units(amount: Decimal | None) -> int:
    return 0 if amount is None else int((amount * SCALE).to_integral_value())


def from_units(units: int) -> Decimal:
    return (Decimal(units) / SCALE).quantize(Decimal("0.0001"))


# --- locks --------------------------------------------------------------------------------------------------


def _advisory(namespace: int, keys: Iterable[int], *, shared: bool = False) -> None:
    """Take the advisory locks (this transaction's), in key order so that two writers never wait on each other
    in a circle. Nothing on SQLite, whose write transactions run one at a time."""
    ordered = sorted({key % 2_147_483_647 for key in keys})
    if connection.vendor != "postgresql" or not ordered:
        return
    function = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
    # The function is one of the two names above; the keys are a parameter.
    sql = f"SELECT {function}(%s, k) FROM (SELECT unnest(%s::int[]) AS k ORDER BY 1) AS keys"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, [namespace, ordered])


def lock_days(days: Iterable[date], *, shared: bool = False) -> None:
    """The days' locks: shared for increments, exclusive to count a day again."""
    _advisory(_DAY_LOCKS, (day.toordinal() for day in days), shared=shared)


def lock_carts(cart_ids: Iterable[int]) -> None:
    """Serialise attribution (and retention) of these carts until the transaction ends."""
    _advisory(_CART_LOCKS, cart_ids)


def lock_carts_named(hubspot_ids: Sequence[str]) -> None:
    """``lock_carts`` for carts named by their HubSpot ids (one statement)."""
    if connection.vendor == "postgresql" and hubspot_ids:
        table = connection.ops.quote_name(Cart._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(
                # The table name is the model's; the ids are a parameter.
                "SELECT pg_advisory_xact_lock(%s, k) FROM (SELECT DISTINCT (id %% 2147483647)::int AS k "  # noqa: S608
                f"FROM {table} WHERE hubspot_id = ANY(%s) ORDER BY 1) AS keys",
                [_CART_LOCKS, list(hubspot_ids)],
            )


# --- increments ---------------------------------------------------------------------------------------------


def _upsert(deltas: dict[Key, list[int]]) -> None:
    """Add the deltas to their rows (made when missing), in one statement."""
    rows = [
        [day.isoformat(), store, step, template, currency, *values]
        for (day, store, step, template, currency), values in sorted(deltas.items())  # rows locked in order
        if any(values)
    ]
    if not rows:
        return
    table = connection.ops.quote_name(RecoveryDay._meta.db_table)
    names = ("day", "store", "step", "template", "currency", *FIGURES)
    added = ", ".join(f"{name} = {table}.{name} + excluded.{name}" for name in FIGURES)
    if connection.vendor == "postgresql":
        types = ("date", "text", "int", "bigint", "text", "int", "int", "int", "int", "bigint")
        selected = ", ".join(f"(e->>{i})::{kind}" for i, kind in enumerate(types))
        source = "jsonb_array_elements(%s::jsonb) AS e"
    else:
        selected = ", ".join(f"value->>{i}" for i in range(len(names)))
        source = "json_each(%s) WHERE true"  # WHERE: SQLite's parser needs it before ON CONFLICT
    # The table and column names are our own; the values are one parameter.
    sql = (
        f"INSERT INTO {table} ({', '.join(names)}) SELECT {selected} FROM {source} "  # noqa: S608
        f"ON CONFLICT (day, store, step, template, currency) DO UPDATE SET {added}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [json.dumps(rows)])


Item = tuple[datetime | None, int, int, int | None, str, list[int]]


def _count(items: list[Item], stores: dict[int, str]) -> None:
    """Add figures: (moment, cart id, step, template id, currency, [sent, delivered, clicked, recovered,
    revenue]) each (an item without a moment counts nowhere). ``stores``: the carts' stores as read before;
    on PostgreSQL they are read again once the days are locked (on SQLite no other writer ran meanwhile)."""
    dated = [
        (day_of(moment), cart_id, step, template_id, currency, values)
        for moment, cart_id, step, template_id, currency, values in items
        if moment is not None and any(values)
    ]
    if not dated:
        return
    lock_days((item[0] for item in dated), shared=True)
    if connection.vendor == "postgresql":
        stores = dict(Cart.objects.filter(pk__in={item[1] for item in dated}).values_list("pk", "store"))
    deltas: dict[Key, list[int]] = defaultdict(lambda: [0] * len(FIGURES))
    for day, cart_id, step, template_id, currency, values in dated:
        key = (day, stores.get(cart_id, ""), step, template_id or 0, currency)
        deltas[key] = [a + b for a, b in zip(deltas[key], values, strict=True)]
    _upsert(deltas)


def count_send(
    send_id: int,
    *,
    sent: int = 0,
    delivered: int = 0,
    clicked: int = 0,
    moved_from: datetime | None = None,
) -> None:
    """Add to one send's email counts on the day it went out (as now stored); ``moved_from``: they are taken
    off that earlier day (a deferred send that went out again). The last thing the transaction that recorded
    the change does."""
    found = (
        RecoverySend.objects.filter(pk=send_id)
        .values_list("sending_at", "cart_id", "step", "template_id", "cart__store")
        .first()
    )
    if found is None:
        return
    sending_at, cart_id, step, template_id, store = found
    items: list[Item] = [(sending_at, cart_id, step, template_id, "", [sent, delivered, clicked, 0, 0])]
    if moved_from is not None:
        items.append((moved_from, cart_id, step, template_id, "", [-sent, -delivered, -clicked, 0, 0]))
    _count(items, {cart_id: store})


RecoveryFacts = list[tuple[int, str, Decimal | None]]  # (send id, currency, amount)


def recoveries_of(carts: Sequence[int] | Q) -> RecoveryFacts:
    """The carts' recoveries (cart ids, or a filter on recoveries), as ``count_recoveries`` compares them."""
    where = carts if isinstance(carts, Q) else Q(cart_id__in=list(carts))
    return list(Recovery.objects.filter(where).values_list("send_id", "currency", "amount"))


def count_recoveries(before: RecoveryFacts, after: RecoveryFacts) -> None:
    """Count the difference between two readings of some carts' recoveries (the same carts, locked)."""
    change: dict[tuple[int, str], list[int]] = defaultdict(lambda: [0, 0])
    for sign, facts in ((-1, before), (1, after)):
        for send_id, currency, amount in facts:
            entry = change[(send_id, currency or NO_CURRENCY)]
            entry[0] += sign
            entry[1] += sign * to_units(amount)
    change = {key: value for key, value in change.items() if any(value)}
    if not change:
        return
    stores: dict[int, str] = {}
    sends: dict[int, tuple[datetime | None, int, int, int | None]] = {}
    for pk, sending_at, cart_id, step, template_id, store in RecoverySend.objects.filter(
        pk__in={send_id for send_id, _ in change}
    ).values_list("pk", "sending_at", "cart_id", "step", "template_id", "cart__store"):
        sends[pk] = (sending_at, cart_id, step, template_id)
        stores[cart_id] = store
    items: list[Item] = []
    for (send_id, currency), (recovered, revenue) in change.items():
        if send_id in sends:
            moment, cart, step_of, template = sends[send_id]
            items.append((moment, cart, step_of, template, currency, [0, 0, 0, recovered, revenue]))
    _count(items, stores)


# --- counting again -----------------------------------------------------------------------------------------


def computed(days: Iterable[date] | None = None) -> dict[Key, list[int]]:
    """The figures of these days (every day when None) counted from the sends and recoveries."""
    sends = RecoverySend.objects.filter(sending_at__isnull=False)
    recoveries = Recovery.objects.filter(send__sending_at__isnull=False)
    if days is not None:
        days = list(days)
        sends = sends.filter(_in_days("sending_at", days))
        recoveries = recoveries.filter(_in_days("send__sending_at", days))
    figures: dict[Key, list[int]] = defaultdict(lambda: [0] * len(FIGURES))
    counted = (
        sends.annotate(day=_day_expression("sending_at"))
        .values("day", "cart__store", "step", "template_id")
        .annotate(
            n=Count("pk"),
            delivered=Count("pk", filter=Q(status=SendStatus.SENT)),
            clicked=Count("pk", filter=Q(clicked_at__isnull=False)),
        )
        .order_by()
    )
    for row in counted:
        key = (_as_date(row["day"]), row["cart__store"], row["step"], row["template_id"] or 0, "")
        figures[key][0:3] = [row["n"], row["delivered"], row["clicked"]]
    grouped = (
        recoveries.annotate(day=_day_expression("send__sending_at"))
        .values("day", "send__cart__store", "send__step", "send__template_id", "currency")
        .annotate(n=Count("pk"), units=Sum(Cast(Round(F("amount") * SCALE), BigIntegerField())))
        .order_by()
    )
    for row in grouped:
        key = (
            _as_date(row["day"]),
            row["send__cart__store"],
            row["send__step"],
            row["send__template_id"] or 0,
            row["currency"] or NO_CURRENCY,
        )
        # A recovery without a currency and one whose currency is "?" share their rows, as on the page.
        figures[key][3] += row["n"]
        figures[key][4] += int(row["units"] or 0)
    return {key: values for key, values in figures.items() if any(values)}


def _lock_table() -> None:
    """Every day at once (a whole rebuild): waits for the writers of any day, and holds them off."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            table = connection.ops.quote_name(RecoveryDay._meta.db_table)
            cursor.execute(f"LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE")


@transaction.atomic
def summary_rebuild(days: Iterable[date] | None = None) -> int:
    """Count these days (every day when None) again from the sends and recoveries; returns how many rows
    they have now. Idempotent. The last thing its transaction does (it holds the days until the end)."""
    if days is None:
        _lock_table()
        stale = RecoveryDay.objects.all()
    else:
        days = sorted(set(days))
        if not days:
            return 0
        lock_days(days)
        stale = RecoveryDay.objects.filter(day__in=days)
    fresh = computed(days)
    stale.delete()
    RecoveryDay.objects.bulk_create(
        [
            RecoveryDay(
                day=day,
                store=store,
                step=step,
                template=template,
                currency=currency,
                **dict(zip(FIGURES, values, strict=True)),
            )
            for (day, store, step, template, currency), values in fresh.items()
        ],
        batch_size=1000,
    )
    if days is None:
        SequenceSettings.objects.get_or_create(pk=1)
        SequenceSettings.objects.filter(pk=1).update(dashboard_time_zone=settings.TIME_ZONE)
    return len(fresh)


def summary_rebuild_at(moments: Iterable[datetime | None]) -> int:
    """``summary_rebuild`` of the days of these moments (sends' sending_at)."""
    return summary_rebuild({day_of(moment) for moment in moments if moment is not None})


def days_of_sends(sends: Any) -> set[date]:
    """The days a query of sends went out on."""
    found = sends.filter(sending_at__isnull=False).annotate(day=_day_expression("sending_at"))
    return {_as_date(day) for day in found.values_list("day", flat=True).distinct().order_by()}


def summary_ensure_current() -> None:
    """Count every day again when TIME_ZONE changed since the figures were counted (or they never were: right
    after the migration that made the table)."""
    counted_in = SequenceSettings.objects.filter(pk=1).values_list("dashboard_time_zone", flat=True).first()
    if counted_in != settings.TIME_ZONE:
        summary_rebuild()


# --- a cart's store (the carts' sync hook) ------------------------------------------------------------------


def _restore(carts: Any) -> None:
    """Carts whose store is not the one their figures were counted under: their days are counted again, each
    part in a transaction of its own once the sync's has committed (so the sync never holds a day while it
    goes on writing)."""
    moved = list(
        carts.exclude(summary_store__isnull=False, summary_store=F("store")).values_list("pk", flat=True)
    )
    if moved:
        transaction.on_commit(lambda: _count_stores_again(moved))


def _count_stores_again(cart_ids: list[int]) -> None:
    for part in chunks(cart_ids, 500):
        with transaction.atomic():
            Cart.objects.filter(pk__in=part).update(summary_store=F("store"))
            summary_rebuild(days_of_sends(RecoverySend.objects.filter(cart_id__in=part)))


def carts_store_changed_all(spec: MirrorType) -> None:
    """The end of a full run: every cart whose store changed."""
    _restore(Cart.objects.all())


@registry.whole_table(carts_store_changed_all)
def carts_store_changed(spec: MirrorType, hubspot_ids: Sequence[str]) -> None:
    """After carts are written: those whose store changed have their emails counted under the new one."""
    for chunk in chunks(list(hubspot_ids), 500):
        _restore(Cart.objects.filter(hubspot_id__in=chunk))
