"""Live activity: the demo portal keeps changing while people look at it.

Every interval a background thread does a few of the things a busy store's integration does: new
orders (with line items and a customer) and new carts arrive, orders move on through their pipeline
(packed, shipped with a tracking number, delivered, now and then cancelled), and some pending carts turn
into orders. Every change goes through ``objects.create_record``/``update_record``, so it is validated,
stamped and sent as webhooks exactly like an API write.
"""

from __future__ import annotations

import logging
import random
import threading
from typing import Any

from hubspot_sandbox import objects
from hubspot_sandbox.defaults import active_stages
from hubspot_sandbox.http import HubSpotError
from hubspot_sandbox.seed import (
    CARRIER_BY_REGION,
    CARRIERS,
    EMAIL_DOMAINS,
    FIRST_NAMES,
    LAST_NAMES,
    PLACES,
    PRODUCTS,
    STORES,
    STREETS,
    Place,
    Store,
    max_number,
    money_totals,
    priced_items,
)
from hubspot_sandbox.state import SandboxState

logger = logging.getLogger(__name__)

SOURCE = "INTEGRATION"  # the store integration makes these changes, as it made the seeded data
# How often each kind of change happens in one tick (chances, not shares).
CHANCES: dict[str, float] = {
    "new_order": 0.6,
    "new_cart": 0.5,
    "advance_order": 0.9,
    "convert_cart": 0.25,
    "cancel_order": 0.05,
}
_FULFILLMENT_BY_LABEL: tuple[tuple[str, str], ...] = (
    ("cancel", "Cancelled"),
    ("deliver", "Delivered"),
    ("ship", "Shipped"),
    ("process", "Packing"),
)


def _assoc(to_id: str, type_id: int) -> dict[str, Any]:
    """One entry of a create body's ``associations`` (reference §1.4)."""
    return {
        "to": {"id": to_id},
        "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}],
    }


class LiveActivity:
    """A thread that makes the sandbox's data change every ``interval_s`` seconds, reproducibly for a
    ``seed`` (given the same starting data). ``tick()`` runs one round in the caller's thread."""

    def __init__(self, state: SandboxState, *, interval_s: float, seed: int = 1) -> None:
        if interval_s <= 0:
            raise ValueError("interval_s must be positive")
        self.state = state
        self.interval_s = interval_s
        self.rng = random.Random(seed)
        self.counts: dict[str, int] = dict.fromkeys(CHANCES, 0)
        self.counts["new_contact"] = 0
        self.errors = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # one tick at a time, whoever calls it

    # --- lifecycle --------------------------------------------------------------------------------

    def start(self) -> LiveActivity:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="sandbox-live", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.tick()
            except Exception:  # keep the demo alive whatever one round ran into
                self.errors += 1
                logger.exception("live activity round failed")

    # --- one round ----------------------------------------------------------------------------------

    def tick(self) -> dict[str, int]:
        """Do one round of changes; returns what was done in it."""
        done: dict[str, int] = {}
        with self._lock:
            for action, chance in CHANCES.items():
                if self.rng.random() >= chance:
                    continue
                try:
                    happened = getattr(self, action)()
                except HubSpotError as exc:
                    # The data changed under us (someone archived a record, edited a pipeline...).
                    logger.info("live activity %s skipped: %s", action, exc.message)
                    happened = False
                if happened:
                    self.counts[action] += 1
                    done[action] = done.get(action, 0) + 1
        return done

    # --- actions --------------------------------------------------------------------------------------

    def _contact(self) -> tuple[str, dict[str, str]]:
        """An existing customer now and then a new one: (id, properties)."""
        with self.state.lock:
            contacts = [r for r in self.state.live("contacts") if r.properties.get("email")]
            if contacts and self.rng.random() < 0.7:
                chosen = contacts[int(len(contacts) * self.rng.random() ** 2)]
                return chosen.id, dict(chosen.properties)
        rng = self.rng
        first, first_ascii = rng.choice(FIRST_NAMES)
        last, last_ascii = rng.choice(LAST_NAMES)
        region = rng.choice(("US", "US", "US", "GB", "EU", "CA"))
        place = rng.choice(PLACES[region])
        number = len(self.state.records["contacts"]) + 1
        props = {
            "firstname": first,
            "lastname": last,
            # A ".l" before the number keeps these apart from the seeder's addresses.
            "email": f"{first_ascii}.{last_ascii}.l{number}@{rng.choice(EMAIL_DOMAINS)}",
            "phone": f"{place.phone_prefix} 555 01{rng.randint(0, 99):02d}",
            "address": f"{rng.randint(1, 2400)} {rng.choice(STREETS)}",
            "city": place.city,
            "state": place.state,
            "zip": place.postal(rng),
            "country": place.country,
            "lifecyclestage": "lead",
            "hs_email_optout": "false",
            "hs_legal_basis": "Freely given consent from contact",
        }
        rec = objects.create_record(self.state, "contacts", props, source=SOURCE)
        self.counts["new_contact"] += 1
        return rec.id, props

    def _store_for(self, contact: dict[str, str]) -> Store:
        country = contact.get("country", "")
        for store, _weight in STORES:
            region_places = PLACES.get(store.region, ())
            if any(p.country == country for p in region_places) and not store.name.endswith("Wholesale"):
                return store
        return STORES[0][0]

    def _line_items(self, store: Store, items: list[tuple[int, int]]) -> tuple[list[str], float]:
        priced, subtotal = priced_items(store, items)
        ids = []
        for product, quantity, price in priced:
            name, sku, _usd = PRODUCTS[product]
            rec = objects.create_record(
                self.state,
                "line_items",
                {
                    "name": name,
                    "hs_sku": sku,
                    "quantity": str(quantity),
                    "price": f"{price:.2f}",
                    "hs_line_item_currency_code": store.currency,
                    "hs_product_id": str(1_500_000_000 + product),
                },
                source=SOURCE,
            )
            ids.append(rec.id)
        return ids, subtotal

    def _basket(self) -> list[tuple[int, int]]:
        count = 1 + min(3, int(4 * self.rng.random() ** 2))
        return [
            (p, 1 + int(2 * self.rng.random() ** 3)) for p in self.rng.sample(range(len(PRODUCTS)), count)
        ]

    def _place_of(self, contact: dict[str, str]) -> Place:
        for places in PLACES.values():
            for place in places:
                if place.city == contact.get("city") and place.country == contact.get("country"):
                    return place
        return PLACES["US"][0]

    def _create_order(
        self, contact_id: str, contact: dict[str, str], items: list[tuple[int, int]], cart_id: str | None
    ) -> str:
        store = self._store_for(contact)
        line_item_ids, subtotal = self._line_items(store, items)
        with self.state.lock:
            number = max_number(self.state, "orders", "hs_external_order_id", "", 100_000) + 1
        props: dict[str, str] = {
            "hs_order_name": f"#{number}",
            "hs_currency_code": store.currency,
            "hs_exchange_rate": str(store.rate_to_usd),
            "hs_source_store": store.name,
            "hs_external_order_id": str(number),
            "hs_external_order_url": f"{store.url}/admin/orders/{number}",
            "hs_fulfillment_status": "Unfulfilled",
            "hs_payment_status": "Paid",
            "hs_payment_processing_method": "card",
            "hs_shipping_method": "express" if self.rng.random() < 0.15 else "standard",
            "hs_shipping_address_name": " ".join(
                part for part in (contact.get("firstname"), contact.get("lastname")) if part
            ),
            "hs_shipping_address_street": contact.get("address", ""),
            "hs_shipping_address_city": contact.get("city", ""),
            "hs_shipping_address_state": contact.get("state", ""),
            "hs_shipping_address_postal_code": contact.get("zip", ""),
            "hs_shipping_address_country": contact.get("country", ""),
            "hs_billing_address_email": contact.get("email", ""),
        }
        props.update(money_totals(subtotal, 0.0, store, self._place_of(contact), props, "hs_order_discount"))
        props.pop("hs_homecurrency_amount", None)  # calculated by HubSpot, not writable
        associations = [_assoc(contact_id, 507)] + [_assoc(i, 513) for i in line_item_ids]
        if cart_id is not None:
            associations.append(_assoc(cart_id, 593))
        rec = objects.create_record(self.state, "orders", props, associations=associations, source=SOURCE)
        return rec.id

    def new_order(self) -> bool:
        contact_id, contact = self._contact()
        self._create_order(contact_id, contact, self._basket(), None)
        self._became_customer(contact_id, contact)
        return True

    def _became_customer(self, contact_id: str, contact: dict[str, str]) -> None:
        if contact.get("lifecyclestage") != "customer":
            objects.update_record(
                self.state, "contacts", contact_id, {"lifecyclestage": "customer"}, source=SOURCE
            )

    def new_cart(self) -> bool:
        contact_id, contact = self._contact()
        store = self._store_for(contact)
        line_item_ids, subtotal = self._line_items(store, self._basket())
        with self.state.lock:
            number = max_number(self.state, "carts", "hs_external_cart_id", "c", 500_000) + 1
        token = f"{self.rng.getrandbits(96):024x}"
        props = {
            "hs_cart_name": f"Cart #{number}",
            "hs_external_cart_id": f"c{number}",
            "hs_source_store": store.name,
            "hs_external_status": "pending",
            "hs_cart_url": f"{store.url}/cart/recover/{token}",
            "hs_currency_code": store.currency,
            "hs_exchange_rate": str(store.rate_to_usd),
        }
        props.update(money_totals(subtotal, 0.0, store, self._place_of(contact), props, "hs_cart_discount"))
        props.pop("hs_homecurrency_amount", None)
        associations = [_assoc(contact_id, 586)] + [_assoc(i, 590) for i in line_item_ids]
        objects.create_record(self.state, "carts", props, associations=associations, source=SOURCE)
        return True

    def _open_orders(self) -> list[tuple[str, dict[str, Any], int]]:
        """(order id, its pipeline, index of its stage) for orders in an OPEN stage."""
        with self.state.lock:
            pipelines = self.state.pipelines["orders"]
            stage_index: dict[str, tuple[dict[str, Any], int]] = {}
            for pipeline in pipelines.values():
                if pipeline.get("archived"):
                    continue
                for i, stage in enumerate(active_stages(pipeline)):
                    if stage["metadata"].get("state") != "CLOSED":
                        stage_index[stage["id"]] = (pipeline, i)
            found = []
            for rec in self.state.live("orders"):
                hit = stage_index.get(rec.properties.get("hs_pipeline_stage", ""))
                if hit is not None:
                    found.append((rec.id, hit[0], hit[1]))
            return found

    def advance_order(self) -> bool:
        """Move an open order to its next stage, with the fulfillment details that go with it."""
        candidates = self._open_orders()
        if not candidates:
            return False
        order_id, pipeline, index = self.rng.choice(candidates)
        stages = active_stages(pipeline)
        if index + 1 >= len(stages):
            return False
        target = stages[index + 1]
        self._move(order_id, target)
        return True

    def cancel_order(self) -> bool:
        candidates = self._open_orders()
        if not candidates:
            return False
        order_id, pipeline, _index = self.rng.choice(candidates)
        cancelled = [s for s in active_stages(pipeline) if "cancel" in s["label"].lower()]
        if not cancelled:
            return False
        self._move(order_id, cancelled[0])
        return True

    def _move(self, order_id: str, stage: dict[str, Any]) -> None:
        changes = {"hs_pipeline_stage": stage["id"]}
        label = stage["label"].lower()
        for word, status in _FULFILLMENT_BY_LABEL:
            if word in label:
                changes["hs_fulfillment_status"] = status
                break
        if "ship" in label:
            carrier, slug, make = CARRIERS[self.rng.choice(CARRIER_BY_REGION["US"])]
            tracking = make(self.rng)
            changes.update(
                hs_shipping_carrier=carrier,
                hs_shipping_tracking_number=tracking,
                hs_shipping_status_url=f"https://tracking.example.com/{slug}/{tracking}",
            )
        if "cancel" in label:
            changes["hs_payment_status"] = "Refunded"
        objects.update_record(self.state, "orders", order_id, changes, source=SOURCE)

    def convert_cart(self) -> bool:
        """A pending cart with a customer checks out: a new order, linked to the cart, and the cart done."""
        with self.state.lock:
            pending = [
                rec
                for rec in self.state.live("carts")
                if rec.properties.get("hs_external_status") == "pending"
                and not self.state.associated("carts", rec.id, "orders")
            ]
            candidates = []
            for cart in pending:
                contacts = list(self.state.associated("carts", cart.id, "contacts"))
                contact = self.state.get("contacts", contacts[0]) if contacts else None
                if contact is not None:
                    candidates.append((cart, contact))
            if not candidates:
                return False
            cart, contact = self.rng.choice(candidates)
            items = []
            for item_id in self.state.associated("carts", cart.id, "line_items"):
                item = self.state.get("line_items", item_id)
                if item is None:
                    continue
                sku = item.properties.get("hs_sku")
                product = next((i for i, p in enumerate(PRODUCTS) if p[1] == sku), None)
                if product is not None:
                    items.append((product, int(float(item.properties.get("quantity", "1") or "1"))))
            contact_props = dict(contact.properties)
        self._create_order(contact.id, contact_props, items or self._basket(), cart.id)
        objects.update_record(
            self.state, "carts", cart.id, {"hs_external_status": "fulfilled"}, source=SOURCE
        )
        self._became_customer(contact.id, contact_props)
        return True
