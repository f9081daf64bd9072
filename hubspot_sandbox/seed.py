"""Realistic, deterministic demo data written straight into the sandbox state.

``seed`` makes contacts, orders with line items, and carts (many abandoned, some converted into orders)
for one online retailer with a few stores. The same ``seed`` and ``now_ms`` give the same data. Records
go into ``state.records`` with ids from ``state.next_id`` and links through ``state.associate``; nothing
goes through the HTTP layer and no change events are emitted, so seeding 100,000 orders takes seconds.
"""

from __future__ import annotations

import gc
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from hubspot_sandbox.defaults import (
    DEFAULT_ORDER_PIPELINE_ID,
    RETURNS_PIPELINE_ID,
    active_stages,
    install_defaults,
)
from hubspot_sandbox.state import Record, SandboxState, now_ms

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
SOURCE = "INTEGRATION"  # seeded records come from the store integration, not from the API
APP_ID = "1160452"
# Above this many records every property gets a history entry only when asked (full_history=True):
# at benchmark sizes one entry per property doubles the memory the state needs.
FULL_HISTORY_AUTO_LIMIT = 20_000

# --- people and places -------------------------------------------------------------------------------

# (display, ascii for the email address)
FIRST_NAMES: tuple[tuple[str, str], ...] = (
    ("Olivia", "olivia"),
    ("Liam", "liam"),
    ("Emma", "emma"),
    ("Noah", "noah"),
    ("Amelia", "amelia"),
    ("Oliver", "oliver"),
    ("Ava", "ava"),
    ("Elijah", "elijah"),
    ("Sophia", "sophia"),
    ("Lucas", "lucas"),
    ("Mia", "mia"),
    ("Mateo", "mateo"),
    ("Chloé", "chloe"),
    ("Léa", "lea"),
    ("Hugo", "hugo"),
    ("Jonas", "jonas"),
    ("Lena", "lena"),
    ("Maximilian", "maximilian"),
    ("Zoë", "zoe"),
    ("Søren", "soren"),
    ("Aoife", "aoife"),
    ("Siobhán", "siobhan"),
    ("Priya", "priya"),
    ("Arjun", "arjun"),
    ("Wei", "wei"),
    ("Mei", "mei"),
    ("Hiroshi", "hiroshi"),
    ("Yuki", "yuki"),
    ("Fatima", "fatima"),
    ("Omar", "omar"),
    ("Amara", "amara"),
    ("Kwame", "kwame"),
    ("Isabella", "isabella"),
    ("José", "jose"),
    ("Camila", "camila"),
    ("Diego", "diego"),
    ("Ingrid", "ingrid"),
    ("Lars", "lars"),
    ("Agnieszka", "agnieszka"),
    ("Tomasz", "tomasz"),
    ("Noor", "noor"),
    ("Yusuf", "yusuf"),
    ("Grace", "grace"),
    ("Henry", "henry"),
    ("Charlotte", "charlotte"),
    ("Jack", "jack"),
    ("Ruby", "ruby"),
    ("Leo", "leo"),
    ("Harper", "harper"),
    ("Ethan", "ethan"),
)
LAST_NAMES: tuple[tuple[str, str], ...] = (
    ("Smith", "smith"),
    ("Johnson", "johnson"),
    ("Williams", "williams"),
    ("Brown", "brown"),
    ("Jones", "jones"),
    ("García", "garcia"),
    ("Miller", "miller"),
    ("Davis", "davis"),
    ("Rodríguez", "rodriguez"),
    ("Martínez", "martinez"),
    ("Müller", "mueller"),
    ("Schmidt", "schmidt"),
    ("Schneider", "schneider"),
    ("Fischer", "fischer"),
    ("Weber", "weber"),
    ("Dubois", "dubois"),
    ("Lefèvre", "lefevre"),
    ("Moreau", "moreau"),
    ("O'Brien", "obrien"),
    ("Murphy", "murphy"),
    ("Kelly", "kelly"),
    ("Nguyen", "nguyen"),
    ("Tran", "tran"),
    ("Kim", "kim"),
    ("Park", "park"),
    ("Tanaka", "tanaka"),
    ("Suzuki", "suzuki"),
    ("Patel", "patel"),
    ("Shah", "shah"),
    ("Singh", "singh"),
    ("Okafor", "okafor"),
    ("Mensah", "mensah"),
    ("Haddad", "haddad"),
    ("Khalil", "khalil"),
    ("Cohen", "cohen"),
    ("Levi", "levi"),
    ("Jansen", "jansen"),
    ("de Vries", "devries"),
    ("Nowak", "nowak"),
    ("Kowalski", "kowalski"),
    ("Andersson", "andersson"),
    ("Johansson", "johansson"),
    ("Rossi", "rossi"),
    ("Bianchi", "bianchi"),
    ("Silva", "silva"),
    ("Santos", "santos"),
    ("Wilson", "wilson"),
    ("Taylor", "taylor"),
    ("Clarke", "clarke"),
)
EMAIL_DOMAINS = ("example.com", "example.org", "example.net")


@dataclass(frozen=True)
class Place:
    city: str
    state: str
    country: str
    country_code: str
    postal: Callable[[random.Random], str]
    phone_prefix: str
    tax_rate: float


def _us_zip(base: int) -> Callable[[random.Random], str]:
    return lambda rng: f"{base + rng.randint(0, 99):05d}"


def _ca_post(prefix: str) -> Callable[[random.Random], str]:
    return lambda rng: (
        f"{prefix}{rng.randint(1, 9)} {rng.randint(1, 9)}{chr(65 + rng.randint(0, 25))}{rng.randint(1, 9)}"
    )


def _uk_post(prefix: str) -> Callable[[random.Random], str]:
    def make(rng: random.Random) -> str:
        letters = chr(65 + rng.randint(0, 25)) + chr(65 + rng.randint(0, 25))
        return f"{prefix}{rng.randint(1, 20)} {rng.randint(1, 9)}{letters}"

    return make


def _num_post(low: int, high: int, width: int = 5) -> Callable[[random.Random], str]:
    return lambda rng: f"{rng.randint(low, high):0{width}d}"


PLACES: dict[str, tuple[Place, ...]] = {
    "US": (
        Place("Portland", "Maine", "United States", "US", _us_zip(4101), "+1 207", 0.055),
        Place("Austin", "Texas", "United States", "US", _us_zip(78701), "+1 512", 0.0825),
        Place("Seattle", "Washington", "United States", "US", _us_zip(98101), "+1 206", 0.1025),
        Place("Denver", "Colorado", "United States", "US", _us_zip(80202), "+1 303", 0.0881),
        Place("Chicago", "Illinois", "United States", "US", _us_zip(60601), "+1 312", 0.1025),
        Place("Brooklyn", "New York", "United States", "US", _us_zip(11201), "+1 718", 0.08875),
        Place("Oakland", "California", "United States", "US", _us_zip(94607), "+1 510", 0.1025),
        Place("Asheville", "North Carolina", "United States", "US", _us_zip(28801), "+1 828", 0.07),
        Place("Portland", "Oregon", "United States", "US", _us_zip(97201), "+1 503", 0.0),
        Place("Minneapolis", "Minnesota", "United States", "US", _us_zip(55401), "+1 612", 0.08025),
    ),
    "CA": (
        Place("Toronto", "Ontario", "Canada", "CA", _ca_post("M5V "), "+1 416", 0.13),
        Place("Vancouver", "British Columbia", "Canada", "CA", _ca_post("V6B "), "+1 604", 0.12),
    ),
    "GB": (
        Place("London", "England", "United Kingdom", "GB", _uk_post("SE"), "+44 20", 0.2),
        Place("Manchester", "England", "United Kingdom", "GB", _uk_post("M"), "+44 161", 0.2),
        Place("Edinburgh", "Scotland", "United Kingdom", "GB", _uk_post("EH"), "+44 131", 0.2),
    ),
    "EU": (
        Place("Berlin", "Berlin", "Germany", "DE", _num_post(10115, 14199), "+49 30", 0.19),
        Place("Hamburg", "Hamburg", "Germany", "DE", _num_post(20095, 22769), "+49 40", 0.19),
        Place("Lyon", "Auvergne-Rhône-Alpes", "France", "FR", _num_post(69001, 69009), "+33 4", 0.2),
        Place("Amsterdam", "Noord-Holland", "Netherlands", "NL", _num_post(1011, 1109, 4), "+31 20", 0.21),
        Place(
            "Dublin", "Leinster", "Ireland", "IE", lambda rng: f"D{rng.randint(1, 24):02d}", "+353 1", 0.23
        ),
        Place("Madrid", "Madrid", "Spain", "ES", _num_post(28001, 28055), "+34 91", 0.21),
    ),
    "AU": (
        Place("Melbourne", "Victoria", "Australia", "AU", _num_post(3000, 3207, 4), "+61 3", 0.1),
        Place("Sydney", "New South Wales", "Australia", "AU", _num_post(2000, 2234, 4), "+61 2", 0.1),
    ),
}
STREETS = (
    "Maple Street",
    "Oak Avenue",
    "Harbor Road",
    "Mill Lane",
    "Station Road",
    "High Street",
    "Elm Court",
    "Cedar Way",
    "King Street",
    "Queen Street",
    "Rue de la République",
    "Hauptstraße",
    "Keizersgracht",
    "Calle Mayor",
    "Church Road",
    "Park Lane",
    "Willow Drive",
    "Bay Street",
    "Sunset Boulevard",
    "Pine Street",
)


@dataclass(frozen=True)
class Store:
    name: str
    url: str
    currency: str
    region: str
    rate_to_usd: float  # hs_exchange_rate: the portal's home currency is USD
    free_shipping_over: float
    shipping: tuple[float, float]  # standard, express


STORES: tuple[tuple[Store, float], ...] = (
    (
        Store(
            "Northwind Outfitters", "https://shop.northwind.example", "USD", "US", 1.0, 75.0, (5.95, 19.95)
        ),
        0.72,
    ),
    (
        Store(
            "Northwind Outfitters Canada",
            "https://ca.northwind.example",
            "CAD",
            "CA",
            0.73,
            100.0,
            (9.95, 24.95),
        ),
        0.05,
    ),
    (
        Store(
            "Northwind Outfitters UK", "https://uk.northwind.example", "GBP", "GB", 1.27, 60.0, (3.99, 9.99)
        ),
        0.08,
    ),
    (
        Store(
            "Northwind Outfitters EU", "https://eu.northwind.example", "EUR", "EU", 1.08, 70.0, (4.90, 14.90)
        ),
        0.09,
    ),
    (
        Store(
            "Northwind Outfitters Australia",
            "https://au.northwind.example",
            "AUD",
            "AU",
            0.66,
            120.0,
            (9.95, 29.95),
        ),
        0.02,
    ),
    (
        Store(
            "Northwind Wholesale", "https://wholesale.northwind.example", "USD", "US", 1.0, 0.0, (0.0, 0.0)
        ),
        0.04,
    ),
)

# (name, sku, unit price in USD)
PRODUCTS: tuple[tuple[str, str, float], ...] = (
    ("Trailhead 40L Backpack", "BP-TH40-GRN", 129.00),
    ("Summit 65L Pack", "BP-SU65-BLK", 249.00),
    ("Ultralight 2P Tent", "TN-UL2-ORG", 379.00),
    ("Basecamp 4P Tent", "TN-BC4-TAN", 519.00),
    ("Down Sleeping Bag -7\u00b0C", "SB-DN07-RED", 289.00),
    ("Synthetic Sleeping Bag", "SB-SY05-BLU", 139.00),
    ("Insulated Sleeping Pad", "SP-INS-R4", 119.00),
    ("Camp Pillow", "SP-PIL-GRY", 29.95),
    ("Titanium Cook Pot 900ml", "CK-TI900", 64.95),
    ("Canister Stove", "CK-STV-01", 49.95),
    ("Fuel Canister 230g", "CK-FUEL-230", 6.95),
    ("Spork (2-pack)", "CK-SPK-2", 9.95),
    ("Water Filter", "WT-FLT-01", 44.95),
    ("Insulated Bottle 750ml", "WT-BTL-750", 34.95),
    ("Rain Shell Jacket", "AP-RSJ-M-NVY", 199.00),
    ("Fleece Midlayer", "AP-FLC-M-GRN", 89.00),
    ("Merino Base Layer Top", "AP-MBT-M-BLK", 79.00),
    ("Hiking Socks (3-pack)", "AP-SCK-3-L", 29.00),
    ("Trail Runners", "FW-TRL-42-GRY", 149.00),
    ("Waterproof Hiking Boots", "FW-HKB-43-BRN", 219.00),
    ("Trekking Poles (pair)", "AC-TRP-CRB", 129.00),
    ("Headlamp 400lm", "AC-HDL-400", 49.95),
    ("First Aid Kit", "AC-FAK-01", 39.95),
    ("Dry Bag 20L", "AC-DRY-20", 24.95),
    ("Camp Chair", "FN-CCH-BLK", 69.95),
    ("Hammock with Straps", "FN-HMK-01", 79.95),
    ("Bear Canister", "AC-BRC-01", 84.95),
    ("Navigation Compass", "AC-CMP-01", 34.95),
    ("Sun Hat", "AP-SNH-KHK", 32.00),
    ("Gift Card $50", "GC-050", 50.00),
)
DISCOUNT_CODES = (("WELCOME10", 0.10), ("SUMMER15", 0.15), ("VIP20", 0.20), ("FREESHIP", 0.0))
CARRIERS: tuple[tuple[str, str, Callable[[random.Random], str]], ...] = (
    (
        "UPS",
        "ups",
        lambda rng: "1Z" + "".join(rng.choice("0123456789ABCDEFGHJKLMNPRSTVWXYZ") for _ in range(16)),
    ),
    ("USPS", "usps", lambda rng: "9400" + "".join(str(rng.randint(0, 9)) for _ in range(18))),
    ("FedEx", "fedex", lambda rng: "".join(str(rng.randint(0, 9)) for _ in range(12))),
    ("DHL", "dhl", lambda rng: "".join(str(rng.randint(0, 9)) for _ in range(10))),
    ("Royal Mail", "royalmail", lambda rng: f"RM{rng.randint(10**8, 10**9 - 1)}GB"),
)
CARRIER_BY_REGION = {"US": (0, 1, 2), "CA": (0, 2, 3), "GB": (4, 3), "EU": (3, 0), "AU": (3, 2)}
TAGS = ("gift", "vip", "first-order", "repeat-customer", "backorder", "fragile", "priority")

# Text that breaks careless rendering: markup, template syntax, SQL, RTL and bidi overrides, emoji and
# ZWJ sequences, combining marks, astral-plane letters, whitespace, and very long values.
_LOREM = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt. "
HOSTILE_TEXT: tuple[str, ...] = (
    '<script>alert("orderdeck")</script>',
    '"><img src=x onerror=alert(1)>',
    "<b>bold</b> &amp; <i>italic</i> &lt;tag&gt; </td></tr></table>",
    "{{ request.user.password }} {% debug %} ${7*7} #{7*7}",
    "Robert'); DROP TABLE orders;--",
    "שלום עולם — مرحبا بالعالم",
    "\u202egnp.exe\u202c Invoice \u2067RTL isolate\u2069",
    "🛒🔥 Café déjà vu 👩\u200d👩\u200d👧\u200d👦 🏳️\u200d🌈",
    "Z\u0337\u0322\u031ba\u0334\u0321\u035dl\u0336\u0328\u031bg\u0335\u0322\u0358o\u0337\u0321\u035d",
    "line one\nline two\ttabbed\r\nline three",
    "   leading and trailing spaces   ",
    "null",
    # "Hello world" in mathematical fraktur (astral plane), then the widest single glyph there is
    "\U0001d573\U0001d58a\U0001d591\U0001d591\U0001d594 \U0001d59c\U0001d594\U0001d597\U0001d591\U0001d589"
    " \ufdfd",
    _LOREM * 120,  # about 10,000 characters
    "W" * 30_000,  # one unbroken word, well under HubSpot's 65,536-character limit (reference §6)
)
HOSTILE_URLS: tuple[str, ...] = (
    "javascript:alert(document.cookie)",
    'https://shop.northwind.example/cart/recover?t="><script>alert(1)</script>',
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
)
HOSTILE_RATE = 0.15


# --- helpers -----------------------------------------------------------------------------------------

_DAYS: dict[int, str] = {}


def iso_ms(ms: int) -> str:
    """``state.iso_ms`` with the date part cached per day: seeding formats millions of timestamps."""
    day, rest = divmod(ms, DAY_MS)
    prefix = _DAYS.get(day)
    if prefix is None:
        prefix = _DAYS[day] = datetime.fromtimestamp(day * 86_400, tz=UTC).strftime("%Y-%m-%dT")
    seconds, millis = divmod(rest, 1000)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    return f"{prefix}{hours:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}Z"


def _money(value: float) -> str:
    return f"{value:.2f}"


def _weighted(rng: random.Random, weights: list[float]) -> int:
    x = rng.random() * sum(weights)
    for i, w in enumerate(weights):
        x -= w
        if x < 0:
            return i
    return len(weights) - 1


def max_number(state: SandboxState, type_name: str, prop: str, prefix: str, floor: int) -> int:
    """The highest ``<prefix><number>`` value of ``prop`` among the records of a type (at least ``floor``)."""
    highest = floor
    for rec in state.records[type_name].values():
        value = rec.properties.get(prop, "")
        if value.startswith(prefix) and value[len(prefix) :].isdigit():
            highest = max(highest, int(value[len(prefix) :]))
    return highest


def money_totals(
    subtotal: float,
    discount_pct: float,
    store: Store,
    place: Place,
    props: dict[str, str],
    discount_property: str,
) -> dict[str, str]:
    """Discount, shipping, tax and total that add up: total = subtotal - discount + shipping + tax.

    ``props`` gives the shipping method and discount code already chosen.
    """
    wholesale = store.name.endswith("Wholesale")
    discount = round(subtotal * discount_pct, 2)
    free = (
        wholesale
        or subtotal - discount >= store.free_shipping_over
        or props.get("hs_discount_codes") == "FREESHIP"
    )
    express = props.get("hs_shipping_method") == "express"
    shipping = 0.0 if free and not express else store.shipping[1 if express else 0]
    tax = 0.0 if wholesale else round((subtotal - discount) * place.tax_rate, 2)
    total = round(subtotal - discount + shipping + tax, 2)
    out = {
        "hs_subtotal_price": _money(subtotal),
        "hs_shipping_cost": _money(shipping),
        "hs_tax": _money(tax),
        "hs_total_price": _money(total),
        "hs_homecurrency_amount": _money(total * store.rate_to_usd),
    }
    if discount:
        out[discount_property] = _money(discount)
    return out


def priced_items(store: Store, items: list[tuple[int, int]]) -> tuple[list[tuple[int, int, float]], float]:
    """Unit prices in the store's currency for ``(product, quantity)`` items, and their subtotal."""
    factor = 1.0 if store.currency == "USD" else 1.0 / store.rate_to_usd
    wholesale = store.name.endswith("Wholesale")
    priced = [(p, q, round(PRODUCTS[p][2] * factor * (0.6 if wholesale else 1.0), 2)) for p, q in items]
    return priced, round(sum(round(price * q, 2) for _p, q, price in priced), 2)


@dataclass
class _Contact:
    id: str
    first: str
    last: str
    email: str
    phone: str
    street: str
    place: Place
    postal: str
    created_ms: int


@dataclass
class _Order:
    id: str
    contact: _Contact
    store: Store
    items: list[tuple[int, int]]  # (product index, quantity)
    created_ms: int
    record: Record


class _Seeder:
    def __init__(
        self, state: SandboxState, *, seed: int, hostile: bool, now: int, full_history: bool
    ) -> None:
        self.state = state
        self.rng = random.Random(seed)
        self.hostile = hostile
        self.now = now
        self.full_history = full_history
        self.contacts: list[_Contact] = []
        self.orders: list[_Order] = []
        self.counts = {"contacts": 0, "orders": 0, "line_items": 0, "carts": 0, "associations": 0}
        self.made: dict[str, list[Record]] = {}
        self.store_weights = [w for _, w in STORES]
        # Numbers continue after data already there, so seeding twice never repeats a unique value.
        self.order_number = max_number(state, "orders", "hs_external_order_id", "", 100_000)
        self.cart_number = max_number(state, "carts", "hs_external_cart_id", "c", 500_000)
        self.email_offset = len(state.records["contacts"])

    # text that may turn hostile
    def text(self, value: str) -> str:
        if self.hostile and self.rng.random() < HOSTILE_RATE:
            return self.rng.choice(HOSTILE_TEXT)
        return value

    def record(self, type_name: str, props: dict[str, str], created: int, updated: int) -> Record:
        rid = self.state.next_id(type_name)
        created_key, modified_key = (
            ("createdate", "lastmodifieddate")
            if type_name == "contacts"
            else ("hs_createdate", "hs_lastmodifieddate")
        )
        props["hs_object_id"] = rid
        props[created_key] = iso_ms(created)
        props[modified_key] = iso_ms(updated)
        props["hs_object_source"] = SOURCE
        props["hs_object_source_id"] = APP_ID
        props["hs_object_source_label"] = SOURCE
        clean = {k: v for k, v in props.items() if v}
        rec = Record(id=rid, properties=clean, created_ms=created, updated_ms=updated)
        if self.full_history:
            rec.history = {k: [(v, created, SOURCE)] for k, v in clean.items()}
        self.state.records[type_name][rid] = rec
        self.counts[type_name] = self.counts.get(type_name, 0) + 1
        self.made.setdefault(type_name, []).append(rec)
        return rec

    def spread_updates(self) -> None:
        """Give every seeded record its own last-modified moment, at or after its creation and its last
        recorded change, and before ``now``.

        The generators cap a change that would fall in the future at ``now``, which left every recent
        record with the same timestamp (a hundred contacts at one instant): an incremental client reading
        "modified after X" would then read them all again on every run. A capped one is spread over the
        time between its last change and ``now`` (by a hash of its id, so the main random stream, and with
        it every other seeded value, stays as it was), and equal ones are moved apart by a millisecond.
        """
        for records in self.made.values():
            for rec in records:
                if rec.updated_ms < self.now:
                    continue
                last = max(
                    [rec.created_ms]
                    + [
                        entries[0][1]
                        for entries in rec.history.values()
                        if entries and entries[0][1] < self.now
                    ]
                )
                fraction = (int(rec.id) * 2_654_435_761 % 1_000_003) / 1_000_003 if rec.id.isdigit() else 0.5
                rec.updated_ms = max(last, min(self.now - 1, last + int((self.now - last) * fraction)))
            ordered = sorted(records, key=lambda r: r.updated_ms)
            previous = None
            for rec in ordered:
                if previous is not None and rec.updated_ms <= previous:
                    rec.updated_ms = previous + 1
                previous = rec.updated_ms
            # Moving apart may have pushed the newest ones to ``now`` or past it: pull them back below.
            ceiling = self.now
            for rec in reversed(ordered):
                if rec.updated_ms >= ceiling:
                    rec.updated_ms = ceiling - 1
                ceiling = rec.updated_ms
                if rec.created_ms > rec.updated_ms:  # only a record made in the very last millisecond
                    rec.created_ms = rec.updated_ms
                    key = "createdate" if "createdate" in rec.properties else "hs_createdate"
                    rec.properties[key] = iso_ms(rec.created_ms)
            for rec in records:
                key = "lastmodifieddate" if "lastmodifieddate" in rec.properties else "hs_lastmodifieddate"
                rec.properties[key] = iso_ms(rec.updated_ms)

    def link(self, from_type: str, from_id: str, to_type: str, to_id: str) -> None:
        self.state.associate(from_type, from_id, to_type, to_id)
        self.counts["associations"] += 1

    def when(self, max_days: float, skew: float) -> int:
        """A moment in the past ``max_days``, more often recent the larger ``skew``."""
        return self.now - int(max_days * DAY_MS * self.rng.random() ** skew) - self.rng.randint(0, HOUR_MS)

    # contacts
    def make_contacts(self, count: int) -> None:
        rng = self.rng
        regions = ["US"] * 70 + ["CA"] * 6 + ["GB"] * 9 + ["EU"] * 12 + ["AU"] * 3
        for n in range(count):
            first, first_ascii = rng.choice(FIRST_NAMES)
            last, last_ascii = rng.choice(LAST_NAMES)
            place = rng.choice(PLACES[rng.choice(regions)])
            domain = rng.choice(EMAIL_DOMAINS)
            number = self.email_offset + n + 1
            email = f"{first_ascii}.{last_ascii}{number}@{domain}"
            if self.hostile and rng.random() < HOSTILE_RATE / 3:
                email = rng.choice((f"o'brien+{number}@{domain}", f"{first_ascii}+tag.{number}@{domain}"))
            phone = f"{place.phone_prefix} 555 01{rng.randint(0, 99):02d}"
            street = f"{rng.randint(1, 2400)} {rng.choice(STREETS)}"
            created = self.when(730, 1.0)
            updated = min(self.now, created + int(rng.random() * 30 * DAY_MS))
            optout = rng.random() < 0.06
            props = {
                "firstname": self.text(first),
                "lastname": self.text(last),
                "email": email,
                "hs_email_domain": domain,
                "phone": phone,
                "mobilephone": phone if rng.random() < 0.3 else "",
                "company": self.text(f"{last} & Co.") if rng.random() < 0.12 else "",
                "address": self.text(street),
                "city": place.city,
                "state": place.state,
                "zip": place.postal(rng),
                "country": place.country,
                "lifecyclestage": "lead",
                "hs_language": {"DE": "de", "FR": "fr", "NL": "nl", "ES": "es"}.get(place.country_code, "en"),
                "hs_email_optout": "true" if optout else "false",
                "hs_marketable_status": "false" if optout or rng.random() < 0.1 else "true",
                "hs_legal_basis": rng.choice(
                    (
                        "Freely given consent from contact",
                        "Freely given consent from contact",
                        "Legitimate interest - existing customer",
                        "Performance of a contract",
                    )
                ),
                "hs_email_hard_bounce": "true" if rng.random() < 0.01 else "",
            }
            rec = self.record("contacts", props, created, updated)
            self.contacts.append(
                _Contact(rec.id, first, last, email, phone, street, place, props["zip"], created)
            )

    def pick_contact(self) -> _Contact:
        # Repeat customers: the square skews picks towards a smaller set of contacts.
        return self.contacts[int(len(self.contacts) * self.rng.random() ** 2)]

    def pick_store(self, contact: _Contact | None) -> Store:
        if contact is not None and self.rng.random() < 0.9:
            region = (
                "EU"
                if contact.place.country_code in {"DE", "FR", "NL", "IE", "ES"}
                else contact.place.country_code
            )
            for store, _w in STORES:
                if store.region == region and not store.name.endswith("Wholesale"):
                    return store
        return STORES[_weighted(self.rng, self.store_weights)][0]

    def line_items(
        self,
        parent_type: str,
        parent_id: str,
        store: Store,
        priced: list[tuple[int, int, float]],
        created: int,
    ) -> None:
        for product_index, quantity, price in priced:
            name, sku, _usd = PRODUCTS[product_index]
            props = {
                "name": self.text(name),
                "hs_sku": sku,
                "quantity": str(quantity),
                "price": _money(price),
                "amount": _money(round(price * quantity, 2)),
                "hs_line_item_currency_code": store.currency,
                "hs_product_id": str(1_500_000_000 + product_index),
            }
            rec = self.record("line_items", props, created, created)
            self.link(parent_type, parent_id, "line_items", rec.id)

    def set_later(self, rec: Record, name: str, value: str, ts: int) -> None:
        """Change a value after creation, keeping the history in step."""
        rec.properties[name] = value
        if self.full_history:
            rec.history.setdefault(name, []).insert(0, (value, ts, SOURCE))
        if ts > rec.updated_ms:
            rec.updated_ms = ts
            key = "lastmodifieddate" if "lastmodifieddate" in rec.properties else "hs_lastmodifieddate"
            rec.properties[key] = iso_ms(ts)

    def basket(self, wholesale: bool) -> list[tuple[int, int]]:
        rng = self.rng
        count = 1 + _weighted(rng, [35, 30, 18, 10, 7])
        products = rng.sample(range(len(PRODUCTS)), count)
        top = 24 if wholesale else 3
        return [(p, 1 + int(top * rng.random() ** 3)) for p in products]

    # orders
    def make_orders(self, count: int) -> None:
        rng = self.rng
        pipelines = self.state.pipelines["orders"]
        default = pipelines.get(DEFAULT_ORDER_PIPELINE_ID) or next(iter(pipelines.values()))
        returns = pipelines.get(RETURNS_PIPELINE_ID)
        default_stages = active_stages(default)
        returns_stages = active_stages(returns) if returns else []
        first_orders: dict[str, int] = {}
        for _ in range(count):
            contact = self.pick_contact()
            store = self.pick_store(contact)
            wholesale = store.name.endswith("Wholesale")
            created = max(contact.created_ms, self.when(365, 2.0))
            age_days = (self.now - created) / DAY_MS
            in_returns = bool(returns_stages) and age_days > 10 and rng.random() < 0.12
            pipeline = returns if in_returns and returns else default
            stages = returns_stages if in_returns else default_stages
            path = self.stage_path(stages, age_days, returns=in_returns)
            stage = path[-1]
            # Stage changes happen one after another between creation and now.
            span = max(1, min(self.now, created + int(age_days * DAY_MS)) - created)
            times = sorted(created + int(span * rng.random() ** 1.5) for _ in path[1:])
            times.insert(0, created)
            updated = times[-1] + rng.randint(0, 10 * 60_000) if len(times) > 1 else created
            updated = min(updated, self.now)
            self.order_number += 1
            number = self.order_number
            items = self.basket(wholesale)
            discount_code, discount_pct = (
                DISCOUNT_CODES[rng.randrange(len(DISCOUNT_CODES))] if rng.random() < 0.2 else ("", 0.0)
            )
            props: dict[str, str] = {
                "hs_order_name": self.text(f"#{number}"),
                "hs_pipeline": pipeline["id"],
                "hs_pipeline_stage": stage["id"],
                "hs_currency_code": store.currency,
                "hs_exchange_rate": str(store.rate_to_usd),
                "hs_source_store": store.name,
                "hs_external_order_id": str(number),
                "hs_external_order_url": f"{store.url}/admin/orders/{number}",
                "hs_external_created_date": iso_ms(created),
                "hs_order_date": iso_ms(created),
                "hs_discount_codes": discount_code,
                "hs_shipping_address_name": self.text(f"{contact.first} {contact.last}"),
                "hs_shipping_address_street": self.text(contact.street),
                "hs_shipping_address_city": contact.place.city,
                "hs_shipping_address_state": contact.place.state,
                "hs_shipping_address_postal_code": contact.postal,
                "hs_shipping_address_country": contact.place.country,
                "hs_shipping_address_phone": contact.phone,
                "hs_billing_address_email": contact.email,
                "hs_billing_address_firstname": contact.first,
                "hs_billing_address_lastname": contact.last,
                "hs_billing_address_city": contact.place.city,
                "hs_billing_address_country": contact.place.country,
                "hs_tags": self.text(rng.choice(TAGS)) if rng.random() < 0.15 else "",
            }
            self.fill_status(props, stage, store, rng, times)
            priced, subtotal = priced_items(store, items)
            props.update(
                money_totals(subtotal, discount_pct, store, contact.place, props, "hs_order_discount")
            )
            rec = self.record("orders", props, created, updated)
            if len(path) > 1 or self.full_history:
                history = [(s["id"], t, SOURCE) for s, t in zip(path, times, strict=True)]
                rec.history["hs_pipeline_stage"] = history[::-1]
            self.line_items("orders", rec.id, store, priced, created)
            self.link("orders", rec.id, "contacts", contact.id)
            self.orders.append(_Order(rec.id, contact, store, items, created, rec))
            first_orders.setdefault(contact.id, created)
        for contact_id, first_order_ms in first_orders.items():
            self.set_later(
                self.state.records["contacts"][contact_id], "lifecyclestage", "customer", first_order_ms
            )

    def stage_path(
        self, stages: list[dict[str, Any]], age_days: float, *, returns: bool
    ) -> list[dict[str, Any]]:
        """The stages an order went through to where it is now: open stages in order, then maybe a
        closed one. Older orders are further along; the first closed stage is the usual end."""
        rng = self.rng
        open_stages = [s for s in stages if s["metadata"].get("state") != "CLOSED"] or stages[:1]
        closed = [s for s in stages if s["metadata"].get("state") == "CLOSED"]
        # Orders are done after about two weeks, returns after about three.
        done_chance = min(0.97, age_days / (14 if not returns else 21))
        if closed and rng.random() < done_chance:
            end = closed[0] if rng.random() < 0.93 or len(closed) == 1 else rng.choice(closed[1:])
            cancelled_early = "cancel" in end["label"].lower() or "reject" in end["label"].lower()
            reached = 1 if cancelled_early else len(open_stages)
            return [*open_stages[:reached], end]
        reach = min(len(open_stages), 1 + int(len(open_stages) * min(1.0, age_days / 5) * rng.random() + 0.5))
        return open_stages[: max(1, reach)]

    def fill_status(
        self,
        props: dict[str, str],
        stage: dict[str, Any],
        store: Store,
        rng: random.Random,
        times: list[int],
    ) -> None:
        label = stage["label"].lower()
        if "cancel" in label:
            fulfillment, payment = "Cancelled", rng.choice(("Voided", "Refunded"))
        elif "refund" in label or "exchang" in label or "inspect" in label:
            fulfillment, payment = "Returned", "Refunded" if "refund" in label else "Paid"
        elif "return" in label or "awaiting" in label or "deliver" in label:
            fulfillment, payment = "Delivered", "Paid"
        elif "ship" in label:
            fulfillment, payment = rng.choice(("Shipped", "Shipped", "Partially shipped")), "Paid"
        elif "process" in label:
            fulfillment, payment = "Packing", "Paid"
        else:
            fulfillment, payment = "Unfulfilled", rng.choice(("Pending", "Authorized", "Paid"))
        props["hs_fulfillment_status"] = fulfillment
        props["hs_payment_status"] = payment
        props["hs_payment_processing_method"] = rng.choice(("card", "card", "card", "paypal", "apple_pay"))
        props["hs_external_order_status"] = "cancelled" if fulfillment == "Cancelled" else "open"
        if payment != "Pending" and len(times) > 1:
            props["hs_processed_date"] = iso_ms(times[1])
        express = rng.random() < 0.15
        props["hs_shipping_method"] = (
            "freight" if store.name.endswith("Wholesale") else ("express" if express else "standard")
        )
        if fulfillment in {"Shipped", "Partially shipped", "Delivered", "Returned"}:
            carrier_name, slug, make = CARRIERS[rng.choice(CARRIER_BY_REGION[store.region])]
            tracking = make(rng)
            props["hs_shipping_carrier"] = carrier_name
            props["hs_shipping_tracking_number"] = tracking
            props["hs_shipping_status_url"] = f"https://tracking.example.com/{slug}/{tracking}"

    # carts
    def make_carts(self, count: int) -> None:
        rng = self.rng
        # About one cart in five became an order; which ones is spread over the whole run.
        converted = rng.sample(self.orders, min(len(self.orders), int(count * 0.2)))
        converted_at = dict(zip(sorted(rng.sample(range(count), len(converted))), converted, strict=True))
        for index in range(count):
            self.cart_number += 1
            token = f"{rng.getrandbits(96):024x}"
            order = converted_at.get(index)
            if order is not None:
                contact: _Contact | None = order.contact
                store = order.store
                items = list(order.items)
                # The checkout finished a few minutes to a day after the cart was started.
                created = order.created_ms - rng.randint(3 * 60_000, DAY_MS)
                updated = order.created_ms
                status = "fulfilled"
            else:
                contact = self.pick_contact() if self.contacts and rng.random() < 0.95 else None
                store = self.pick_store(contact)
                items = self.basket(store.name.endswith("Wholesale"))
                created = self.when(120, 1.5)
                if contact is not None:
                    created = max(created, contact.created_ms)
                updated = min(self.now, created + int(rng.random() ** 3 * 2 * DAY_MS))
                recent = self.now - updated < HOUR_MS
                status = "pending" if recent or rng.random() < 0.85 else "abandoned"
            url = f"{store.url}/cart/recover/{token}"
            if self.hostile and rng.random() < HOSTILE_RATE / 3:
                url = rng.choice(HOSTILE_URLS)
            props: dict[str, str] = {
                "hs_cart_name": self.text(f"Cart #{self.cart_number}"),
                "hs_external_cart_id": f"c{self.cart_number}",
                "hs_source_store": store.name,
                "hs_external_status": status,
                "hs_cart_url": url,
                "hs_currency_code": store.currency,
                "hs_exchange_rate": str(store.rate_to_usd),
                "hs_external_created_date": iso_ms(created),
                "hs_external_updated_date": iso_ms(updated),
                "hs_tags": self.text("returning") if contact is not None and rng.random() < 0.1 else "",
            }
            if order is not None:
                props["hs_discount_codes"] = order.record.properties.get("hs_discount_codes", "")
            priced, subtotal = priced_items(store, items)
            place = contact.place if contact is not None else PLACES[store.region][0]
            pct = dict(DISCOUNT_CODES).get(props.get("hs_discount_codes", ""), 0.0)
            props.update(money_totals(subtotal, pct, store, place, props, "hs_cart_discount"))
            rec = self.record("carts", props, created, updated)
            if order is not None:
                # A converted cart was pending until the checkout completed.
                rec.history["hs_external_status"] = [(status, updated, SOURCE), ("pending", created, SOURCE)]
            self.line_items("carts", rec.id, store, priced, created)
            if contact is not None:
                self.link("carts", rec.id, "contacts", contact.id)
            if order is not None:
                self.link("carts", rec.id, "orders", order.id)
                self.set_later(order.record, "hs_external_cart_id", f"c{self.cart_number}", order.created_ms)


def seed(
    state: SandboxState,
    *,
    contacts: int,
    orders: int,
    carts: int,
    seed: int = 1,
    hostile: bool = False,
    now: int | None = None,
    full_history: bool | None = None,
) -> dict[str, int]:
    """Add realistic contacts, orders (1 to 5 line items, one contact each) and carts; return the counts.

    Deterministic for a ``seed`` and ``now`` (epoch ms; default: the current time). ``hostile`` plants
    markup, scripts, RTL and combining text, emoji and very long strings in ~15% of the text values.
    ``full_history`` gives every property a history entry (default: only when the data set is small);
    stage and cart-status changes always have theirs. Installs the defaults first if they are missing.
    """
    if orders and not contacts:
        raise ValueError("orders need contacts to belong to")
    install_defaults(state)
    if full_history is None:
        full_history = contacts + orders + carts <= FULL_HISTORY_AUTO_LIMIT
    seeder = _Seeder(
        state, seed=seed, hostile=hostile, now=now_ms() if now is None else now, full_history=full_history
    )
    # Hundreds of thousands of new, acyclic objects would otherwise trigger ever longer collections.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        with state.lock:
            seeder.make_contacts(contacts)
            seeder.make_orders(orders)
            seeder.make_carts(carts)
            seeder.spread_updates()
    finally:
        if gc_was_enabled:
            gc.enable()
    return dict(seeder.counts)


# --- HubSpot's other standard objects ---------------------------------------------------------------

_COMPANY_WORDS = (
    "Northwind",
    "Bluebird",
    "Copperleaf",
    "Harbor",
    "Juniper",
    "Lakeside",
    "Meridian",
    "Pinecrest",
)
_COMPANY_KINDS = ("Outfitters", "Trading", "Supply", "Goods", "Retail", "Sports")


def seed_standard(
    state: SandboxState, *, companies: int, deals: int, seed: int = 1, now: int | None = None
) -> dict[str, int]:
    """Add a few companies and deals tied to the seeded contacts (contact→company with the "Primary"
    type and the unlabelled one, deal→contact and deal→company), as a connector expects to find them.

    Kept apart from ``seed``: its own random stream and id counters, so the sizes, ids and values of the
    commerce records (contacts, orders, carts, line items) are the same with or without it.
    """
    from hubspot_sandbox.standard import DEAL_PIPELINE_ID, DEAL_STAGES
    from hubspot_sandbox.state import OBJECT_TYPES

    install_defaults(state)
    rng = random.Random(f"standard-{seed}")
    at = now_ms() if now is None else now
    counts = {"companies": 0, "deals": 0, "associations": 0}
    with state.lock:
        contacts = sorted(state.live("contacts"), key=lambda r: (len(r.id), r.id))

        def make(type_name: str, props: dict[str, str], created: int, updated: int) -> Record:
            otype = OBJECT_TYPES[type_name]
            rid = state.next_id(type_name)
            values = {
                "hs_object_id": rid,
                otype.created_property: iso_ms(created),
                otype.modified_property: iso_ms(updated),
                "hs_object_source": SOURCE,
                "hs_object_source_id": APP_ID,
                "hs_object_source_label": SOURCE,
                **props,
            }
            clean = {k: v for k, v in values.items() if v}
            rec = Record(id=rid, properties=clean, created_ms=created, updated_ms=updated)
            rec.history = {k: [(v, created, SOURCE)] for k, v in clean.items()}
            state.records[type_name][rid] = rec
            counts[type_name] += 1
            return rec

        made_companies: list[Record] = []
        for n in range(companies):
            name = (
                f"{_COMPANY_WORDS[n % len(_COMPANY_WORDS)]} {_COMPANY_KINDS[(n // 3) % len(_COMPANY_KINDS)]}"
            )
            if n >= len(_COMPANY_WORDS):
                name = f"{name} {n // len(_COMPANY_WORDS) + 1}"
            domain = name.lower().replace(" ", "") + ".example.com"
            created = at - rng.randint(30 * DAY_MS, 700 * DAY_MS)
            updated = created + rng.randint(1, 25 * DAY_MS)
            rec = make(
                "companies",
                {
                    "name": name,
                    "domain": domain,
                    "website": f"https://{domain}",
                    "industry": rng.choice(("RETAIL", "SPORTING_GOODS", "WHOLESALE", "APPAREL_FASHION")),
                    "type": rng.choice(("PROSPECT", "PARTNER", "RESELLER")),
                    "lifecyclestage": "customer",
                    "numberofemployees": str(rng.randint(3, 400)),
                    "country": rng.choice(("United States", "Canada", "Germany", "United Kingdom")),
                },
                created,
                updated,
            )
            made_companies.append(rec)
        # Each company gets a few contacts; a contact has at most one company, as its primary.
        for index, contact in enumerate(contacts[: companies * 3] if made_companies else []):
            company = made_companies[index % len(made_companies)]
            state.associate("contacts", contact.id, "companies", company.id)
            state.associate("contacts", contact.id, "companies", company.id, type_id=1)
            counts["associations"] += 1
        open_stages = [sid for sid, _label, _p, _closed in DEAL_STAGES]
        for n in range(deals if contacts else 0):
            contact = contacts[rng.randrange(min(len(contacts), max(1, companies * 3)))]
            created = max(contact.created_ms, at - rng.randint(DAY_MS, 300 * DAY_MS))
            updated = min(at - 1, created + rng.randint(1, 20 * DAY_MS))
            stage = rng.choice(open_stages)
            rec = make(
                "deals",
                {
                    "dealname": f"Wholesale order {n + 1}",
                    "amount": f"{rng.randint(5, 400) * 50}",
                    "pipeline": DEAL_PIPELINE_ID,
                    "dealstage": stage,
                    "dealtype": rng.choice(("newbusiness", "existingbusiness")),
                    "closedate": iso_ms(updated) if stage in ("closedwon", "closedlost") else "",
                },
                created,
                updated,
            )
            state.associate("deals", rec.id, "contacts", contact.id)
            counts["associations"] += 1
            for company_id in state.associated("contacts", contact.id, "companies"):
                state.associate("deals", rec.id, "companies", company_id)
                state.associate("deals", rec.id, "companies", company_id, type_id=5)
                counts["associations"] += 1
    return counts
