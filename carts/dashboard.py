"""The recovery dashboard's figures: sent, delivered, clicked, recovered, recovery rate and recovered revenue
per currency, by day, step and template, for a date range and a store; and the carts behind each figure.

The figures come from the daily figures (``RecoveryDay``, kept by carts.summary), one grouped query over a
few rows a day; ``build_direct`` counts the same from the sends and their recoveries. Days are the sends'
days (when they went to the mail server) in the site's time zone; a recovery counts on the day of the email
credited with it.
"""

from __future__ import annotations

import csv
import functools
import io
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, TypeVar
from urllib.parse import urlencode

from django.conf import settings
from django.db import connection
from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Sum
from django.db.models.functions import Substr, TruncDate
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from carts import summary
from carts.models import Cart, Recovery, RecoveryDay, RecoverySend, RecoveryTemplate, SendStatus

DEFAULT_DAYS = 30
MAX_DAYS = 366
# The dashboard's outcomes, as the carts list's ``outcome`` filter names them.
OUTCOMES: list[tuple[str, str]] = [
    ("sent", "Sent"),
    ("delivered", "Delivered"),
    ("clicked", "Clicked"),
    ("recovered", "Recovered"),
]


@dataclass
class Period:
    start: date
    end: date  # included
    store: str = ""

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def bounds(self) -> tuple[datetime, datetime]:
        """[start, end) as aware datetimes in the site's time zone."""
        zone = timezone.get_current_timezone()
        return (
            datetime.combine(self.start, time.min, tzinfo=zone),
            datetime.combine(self.end + timedelta(days=1), time.min, tzinfo=zone),
        )


def default_period(today: date | None = None) -> Period:
    today = today or timezone.localdate()
    return Period(today - timedelta(days=DEFAULT_DAYS - 1), today)


@dataclass
class Figures:
    sent: int = 0
    delivered: int = 0
    clicked: int = 0
    recovered: int = 0
    revenue: dict[str, Decimal] = field(default_factory=dict)

    def add(self, other: Figures) -> None:
        self.sent += other.sent
        self.delivered += other.delivered
        self.clicked += other.clicked
        self.recovered += other.recovered
        for currency, amount in other.revenue.items():
            self.revenue[currency] = self.revenue.get(currency, Decimal(0)) + amount

    @property
    def rate(self) -> Decimal | None:
        """Recovered carts per delivered email, in percent (one decimal); None when nothing was delivered."""
        if not self.delivered:
            return None
        return (Decimal(self.recovered) * 100 / Decimal(self.delivered)).quantize(Decimal("0.1"))

    def revenue_list(self) -> list[tuple[str, Decimal]]:
        return sorted((c, a.quantize(Decimal("0.01"))) for c, a in self.revenue.items())


@dataclass
class Row:
    """One line of the table: its label, its figures and the carts list filters behind it."""

    label: str
    figures: Figures
    filters: dict[str, str]

    def link(self, outcome: str) -> str:
        query = self.__dict__.get("_query")
        if query is None:
            query = self.__dict__["_query"] = urlencode({k: v for k, v in self.filters.items() if v != ""})
        return f"{_list_url()}?{query}&outcome={outcome}"


@dataclass
class Dashboard:
    period: Period
    total: Row
    days: list[Row]
    steps: list[Row]
    templates: list[Row]
    currencies: list[str]


@functools.cache
def _list_url() -> str:
    return reverse("carts:abandoned")


def carts_link(filters: dict[str, str]) -> str:
    return _list_url() + "?" + urlencode({k: v for k, v in filters.items() if v != ""})


def _day(field_name: str) -> Any:
    """The local day of a datetime column, for grouping. On SQLite in UTC, the first ten characters of the
    stored text (Django's time-zone-aware cast is a Python function called once a row: a hundred thousand
    rows take a second); elsewhere the database's own conversion."""
    zone = timezone.get_current_timezone()
    if connection.vendor == "sqlite" and timezone.get_current_timezone_name() in {"UTC", "Etc/UTC"}:
        return Substr(field_name, 1, 10)
    return TruncDate(field_name, tzinfo=zone)


def _as_date(value: date | str) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)


def _sends(period: Period) -> QuerySet[RecoverySend]:
    start, end = period.bounds()
    sends = RecoverySend.objects.filter(sending_at__gte=start, sending_at__lt=end)
    if period.store:
        sends = sends.filter(cart__store=period.store)
    return sends


def build(period: Period) -> Dashboard:
    """The figures of the period from the daily figures (carts.summary): three grouped queries over a few
    rows a day (by day, by step, by template; each by currency). Counted from the sends themselves when the
    page's time zone is not the one the days were counted in."""
    summary.summary_ensure_current()
    if timezone.get_current_timezone_name() != settings.TIME_ZONE:
        return build_direct(period)
    rows = RecoveryDay.objects.filter(day__gte=period.start, day__lte=period.end)
    if period.store:
        rows = rows.filter(store=period.store)
    currencies: set[str] = set()
    by_day = _summed(rows, "day", currencies)
    by_step = _summed(rows, "step", currencies)
    ids = rows.values_list("template", flat=True).distinct().order_by()
    names = dict(RecoveryTemplate.objects.filter(pk__in=ids).values_list("pk", "name"))
    # A template deleted since is none, as its sends' template now is.
    by_template = _summed(rows, "template", currencies, lambda pk: pk if pk in names else None)
    return _assemble(
        period, {_as_date(day): f for day, f in by_day.items()}, by_step, by_template, currencies, names
    )


def _summed(
    rows: QuerySet[RecoveryDay], field: str, currencies: set[str], key: Any = None
) -> dict[Any, Figures]:
    """The daily figures summed by ``field`` (mapped by ``key``), each group's sums by currency; groups whose
    figures are all nought are left out, as they would be counted from the sends. The currencies with
    recovered carts are added to ``currencies``."""
    sums: dict[tuple[Any, str], list[int]] = {}
    grouped = (
        rows.values(field, "currency")
        .annotate(
            sent_n=Sum("sent"),
            delivered_n=Sum("delivered"),
            clicked_n=Sum("clicked"),
            recovered_n=Sum("recovered"),
            revenue_units=Sum("revenue"),
        )
        .values_list(field, "currency", "sent_n", "delivered_n", "clicked_n", "recovered_n", "revenue_units")
        .order_by()
    )
    for group, currency, *values in grouped:
        entry = sums.setdefault((key(group) if key else group, currency or "?"), [0] * 5)
        for index, value in enumerate(values):
            entry[index] += value or 0
    found: dict[Any, Figures] = {}
    for (group, currency), (sent, delivered, clicked, recovered, units) in sums.items():
        if not (sent or delivered or clicked or recovered):
            continue
        figures = found.setdefault(group, Figures())
        figures.sent += sent
        figures.delivered += delivered
        figures.clicked += clicked
        if recovered:
            figures.recovered += recovered
            currencies.add(currency)
            figures.revenue[currency] = figures.revenue.get(currency, Decimal(0)) + summary.from_units(units)
    return found


def build_direct(period: Period) -> Dashboard:
    """The same figures counted from the sends and recoveries of the period (two grouped queries), in the
    current time zone."""
    by_key: dict[tuple[date, int, int | None], Figures] = {}
    counted = (
        _sends(period)
        .annotate(day=_day("sending_at"))
        .values("day", "step", "template_id")
        .annotate(
            n=Count("pk"),
            delivered=Count("pk", filter=Q(status=SendStatus.SENT)),
            clicked=Count("pk", filter=Q(clicked_at__isnull=False)),
        )
        .order_by()
    )
    for row in counted:
        key = (_as_date(row["day"]), row["step"], row["template_id"])
        by_key[key] = Figures(sent=row["n"], delivered=row["delivered"], clicked=row["clicked"])
    start, end = period.bounds()
    recoveries = Recovery.objects.filter(send__sending_at__gte=start, send__sending_at__lt=end)
    if period.store:
        recoveries = recoveries.filter(send__cart__store=period.store)
    grouped = (
        recoveries.annotate(day=_day("send__sending_at"))
        .values("day", "send__step", "send__template_id", "currency")
        .annotate(n=Count("pk"), amount=Sum("amount"))
        .order_by()
    )
    currencies: set[str] = set()
    for row in grouped:
        key = (_as_date(row["day"]), row["send__step"], row["send__template_id"])
        figures = by_key.setdefault(key, Figures())
        figures.recovered += row["n"]
        currency = row["currency"] or "?"
        currencies.add(currency)
        figures.revenue[currency] = figures.revenue.get(currency, Decimal(0)) + (row["amount"] or Decimal(0))
    by_day: dict[date, Figures] = {}
    by_step: dict[int, Figures] = {}
    by_template: dict[int | None, Figures] = {}
    for (day, step, template_id), figures in by_key.items():
        by_day.setdefault(day, Figures()).add(figures)
        by_step.setdefault(step, Figures()).add(figures)
        by_template.setdefault(template_id, Figures()).add(figures)
    names = dict(
        RecoveryTemplate.objects.filter(pk__in=[pk for pk in by_template if pk]).values_list("pk", "name")
    )
    return _assemble(period, by_day, by_step, by_template, currencies, names)


def _assemble(
    period: Period,
    by_day: dict[date, Figures],
    by_step: dict[int, Figures],
    by_template: dict[int | None, Figures],
    currencies: set[str],
    names: dict[int, str],
) -> Dashboard:
    """The page's rows: the total, each day of the period, each step and each template."""
    base = {"sent_from": period.start.isoformat(), "sent_to": period.end.isoformat(), "store": period.store}
    total = Row("All", Figures(), base)
    days: list[Row] = []
    for offset in range(period.days):
        day = period.start + timedelta(days=offset)
        iso = day.isoformat()
        row = Row(iso, Figures(), {**base, "sent_from": iso, "sent_to": iso})
        if day in by_day:
            row.figures.add(by_day[day])
        days.append(row)
    for figures in by_day.values():
        total.figures.add(figures)
    steps = [Row(f"Step {step}", by_step[step], {**base, "step": str(step)}) for step in sorted(by_step)]
    templates = [
        Row(
            (names.get(pk, "(deleted template)") if pk else "(no template)"),
            figures,
            {**base, "template": str(pk or "")},
        )
        for pk, figures in by_template.items()
    ]
    return Dashboard(
        period=period,
        total=total,
        days=days,
        steps=steps,
        templates=sorted(templates, key=lambda r: r.label.lower()),
        currencies=sorted(currencies),
    )


# --- the carts behind a figure (the carts list's recovery filters) ------------------------------------------

RECOVERY_FILTERS = ("sent_from", "sent_to", "step", "template", "outcome")
CartsQ = TypeVar("CartsQ", bound=QuerySet[Cart])


def carts_behind(carts: CartsQ, filters: dict[str, Any]) -> CartsQ:
    """The carts with a send matching the figure's filters (sent in the date range, of the step, of the
    template) and its outcome: delivered, clicked, or credited with a recovery."""
    if not any(filters.get(name) not in (None, "") for name in RECOVERY_FILTERS):
        return carts
    zone = timezone.get_current_timezone()
    sends = RecoverySend.objects.filter(cart_id=OuterRef("pk"), sending_at__isnull=False)
    if (start := filters.get("sent_from")) is not None:
        sends = sends.filter(sending_at__gte=datetime.combine(start, time.min, tzinfo=zone))
    if (end := filters.get("sent_to")) is not None:
        sends = sends.filter(sending_at__lt=datetime.combine(end + timedelta(days=1), time.min, tzinfo=zone))
    if step := filters.get("step"):
        sends = sends.filter(step=step)
    if template := filters.get("template"):
        sends = sends.filter(template_id=template)
    outcome = filters.get("outcome")
    if outcome == "delivered":
        sends = sends.filter(status=SendStatus.SENT)
    elif outcome == "clicked":
        sends = sends.filter(clicked_at__isnull=False)
    elif outcome == "recovered":
        sends = sends.filter(Exists(Recovery.objects.filter(send_id=OuterRef("pk"))))
    return carts.filter(Exists(sends))


# --- CSV ----------------------------------------------------------------------------------------------------


def csv_safe(value: Any) -> Any:
    """Spreadsheets run cells that start with = + - @ as formulas; a template's name is data, never one."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def csv_text(board: Dashboard) -> str:
    """The same figures as the page: one line per day, step and template, and the total."""
    out = io.StringIO()
    writer = csv.writer(out)
    currencies = board.currencies
    writer.writerow(
        ["group", "label", "sent", "delivered", "clicked", "recovered", "recovery_rate_pct"]
        + [f"revenue_{c}" for c in currencies]
    )
    sections = [("total", [board.total]), ("day", board.days), ("step", board.steps)]
    sections.append(("template", board.templates))
    for group, rows in sections:
        for row in rows:
            f = row.figures
            revenue = dict(f.revenue_list())
            writer.writerow(
                [group, csv_safe(row.label), f.sent, f.delivered, f.clicked, f.recovered]
                + ["" if f.rate is None else str(f.rate)]
                + [str(revenue.get(c, Decimal("0.00"))) for c in currencies]
            )
    return out.getvalue()


# --- the chart (server-drawn SVG: no script, no style attributes) ------------------------------------------


@dataclass
class Bar:
    x: int
    width: int
    sent_y: int
    sent_height: int
    recovered_y: int
    recovered_height: int
    row: Row


CHART_HEIGHT = 160
CHART_WIDTH = 720


def chart(board: Dashboard) -> dict[str, Any]:
    """Bars per day: sent (the full bar) with recovered over it, scaled to the busiest day."""
    days = board.days
    peak = max((r.figures.sent for r in days), default=0) or 1
    slot = max(CHART_WIDTH // max(len(days), 1), 1)
    width = max(slot - (1 if slot > 3 else 0), 1)
    bars = []
    for i, row in enumerate(days):
        sent_h = round(row.figures.sent * CHART_HEIGHT / peak)
        rec_h = round(row.figures.recovered * CHART_HEIGHT / peak)
        bars.append(Bar(i * slot, width, CHART_HEIGHT - sent_h, sent_h, CHART_HEIGHT - rec_h, rec_h, row))
    return {"bars": bars, "width": slot * max(len(days), 1), "height": CHART_HEIGHT, "peak": peak}


# --- the page's repeated parts, drawn here (a 366-day range has thousands of cells) -----------------------


def _cell(row: Row, outcome: str, text: str, links: bool) -> SafeString:
    if not links:
        return format_html("{}", text)
    return format_html('<a href="{}">{}</a>', row.link(outcome), text)


def table_rows_html(rows: list[Row], links: bool = True) -> SafeString:
    """The table's body: each figure a link to its carts (``links``: for those who may open the carts
    list). Escaped like the template would."""
    lines = []
    for row in rows:
        f = row.figures
        rate = "—" if f.rate is None else _cell(row, "recovered", f"{f.rate} %", links)
        revenue = (
            format_html_join(
                mark_safe("<br>"),
                "{}",
                ((_cell(row, "recovered", f"{a} {c}", links),) for c, a in f.revenue_list()),
            )
            or "—"
        )
        lines.append(
            format_html(
                '<tr><th scope="row"><bdi>{}</bdi></th><td class="num">{}</td><td class="num">{}</td>'
                '<td class="num">{}</td><td class="num">{}</td><td class="num">{}</td>'
                '<td class="num">{}</td></tr>',
                row.label,
                _cell(row, "sent", str(f.sent), links),
                _cell(row, "delivered", str(f.delivered), links),
                _cell(row, "clicked", str(f.clicked), links),
                _cell(row, "recovered", str(f.recovered), links),
                rate,
                revenue,
            )
        )
    return mark_safe("\n".join(lines))  # noqa: S308 (each line built by format_html)


def chart_bars_html(drawn: dict[str, Any], links: bool = True) -> SafeString:
    """The chart's bars: SVG presentation attributes and classes only (no style attribute); each a link to
    the day's carts when ``links``."""
    height = drawn["height"]
    parts = [
        format_html(
            '<{} {}="{}"><title>{}: {} sent, {} recovered</title>'
            '<rect class="bar-slot" x="{}" y="0" width="{}" height="{}"></rect>'
            '<rect class="bar-sent" x="{}" y="{}" width="{}" height="{}"></rect>'
            '<rect class="bar-recovered" x="{}" y="{}" width="{}" height="{}"></rect></{}>',
            "a" if links else "g",
            "href" if links else "data-day",
            bar.row.link("sent") if links else bar.row.label,
            bar.row.label,
            bar.row.figures.sent,
            bar.row.figures.recovered,
            bar.x,
            bar.width,
            height,
            bar.x,
            bar.sent_y,
            bar.width,
            bar.sent_height,
            bar.x,
            bar.recovered_y,
            bar.width,
            bar.recovered_height,
            "a" if links else "g",
        )
        for bar in drawn["bars"]
    ]
    return mark_safe("\n".join(parts))  # noqa: S308 (each part built by format_html)
