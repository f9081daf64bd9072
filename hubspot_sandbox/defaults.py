"""The portal a fresh sandbox starts with: default properties, property groups and order pipelines.

Shapes follow HubSpot's v3 JSON (reference §6 ``Property``/``PropertyGroup``, §4 ``Pipeline``), so the
properties and pipelines endpoints can answer with the stored dicts as they are. HubSpot documents only a
"common" subset of the default order properties (reference §6, §11.1); the rest are names seen in
integrations that write to real portals. Where the type of a property is UNCONFIRMED the choice is
commented, and the ones most likely to differ can be switched through ``install_defaults`` arguments.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from hubspot_sandbox.state import SandboxState, iso_ms

# --- pipelines ------------------------------------------------------------------------------------

# The default order pipeline and its stages, with the ids that several independent public projects,
# configured against different portals, share (reference §4 "Default order pipeline"; 3P, UNCONFIRMED
# officially). The OPEN/CLOSED states are the reference's "natural guess" (§11.3, UNCONFIRMED).
DEFAULT_ORDER_PIPELINE_ID = "14a2e10e-5471-408a-906e-c51f3b04369e"
DEFAULT_ORDER_STAGES: tuple[tuple[str, str, str], ...] = (
    ("4b27b500-f031-4927-9811-68a0b525cbae", "Open", "OPEN"),
    ("937ea84d-0a4f-4dcf-9028-3f9c2aafbf03", "Processed", "OPEN"),
    ("aa99e8d0-c1d5-4071-b915-d240bbb1aed9", "Shipped", "OPEN"),
    ("3725360f-519b-4b18-a593-494d60a29c9f", "Delivered", "CLOSED"),
    ("3c85a297-e9ce-400b-b42e-9f16853d69d6", "Cancelled", "CLOSED"),
)
# A second pipeline as a portal admin would create it through the API: numeric ids, as HubSpot gives
# pipelines and stages created after the defaults.
RETURNS_PIPELINE_ID = "87134202"
RETURNS_STAGES: tuple[tuple[str, str, str], ...] = (
    ("87134203", "Return requested", "OPEN"),
    ("87134204", "Awaiting item", "OPEN"),
    ("87134205", "Inspecting", "OPEN"),
    ("87134206", "Refunded", "CLOSED"),
    ("87134207", "Exchanged", "CLOSED"),
    ("87134208", "Return rejected", "CLOSED"),
)
# "The default pipelines will have createdAt = 0" (reference §4, SPEC ``Pipeline``).
_DEFAULT_PIPELINE_UPDATED_MS = 1_711_497_600_000  # 2024-03-27, when orders went public
_RETURNS_PIPELINE_CREATED_MS = 1_717_243_200_000  # 2024-06-01

# Object types whose records live in pipelines. Carts are not in HubSpot's list of pipeline objects
# (reference §4 "Supported objects", §11.2 UNCONFIRMED/likely unsupported).
PIPELINE_OBJECT_TYPES: frozenset[str] = frozenset({"orders", "deals", "tickets"})
# The record properties that hold a record's pipeline and its stage, per pipeline object type.
PIPELINE_PROPERTIES: dict[str, tuple[str, str]] = {
    "orders": ("hs_pipeline", "hs_pipeline_stage"),
    "tickets": ("hs_pipeline", "hs_pipeline_stage"),
    "deals": ("pipeline", "dealstage"),
}


def pipeline_json(
    pipeline_id: str,
    label: str,
    display_order: int,
    stages: tuple[tuple[str, str, str], ...],
    *,
    created_ms: int,
    updated_ms: int,
) -> dict[str, Any]:
    """A pipeline in the v3 shape, its stages carrying ``metadata.state`` as order stages do."""
    return {
        "id": pipeline_id,
        "label": label,
        "displayOrder": display_order,
        "stages": [
            {
                "id": stage_id,
                "label": stage_label,
                "displayOrder": order,
                "metadata": {"state": state},
                "createdAt": iso_ms(created_ms),
                "updatedAt": iso_ms(updated_ms),
                "archived": False,
                "writePermissions": "CRM_PERMISSIONS_ENFORCEMENT",
            }
            for order, (stage_id, stage_label, state) in enumerate(stages)
        ],
        "createdAt": iso_ms(created_ms),
        "updatedAt": iso_ms(updated_ms),
        "archived": False,
    }


def default_pipelines() -> dict[str, dict[str, Any]]:
    """Pipeline id -> pipeline JSON for orders: the default pipeline and a returns pipeline."""
    return {
        DEFAULT_ORDER_PIPELINE_ID: pipeline_json(
            DEFAULT_ORDER_PIPELINE_ID,
            "Order Pipeline",
            0,
            DEFAULT_ORDER_STAGES,
            created_ms=0,
            updated_ms=_DEFAULT_PIPELINE_UPDATED_MS,
        ),
        RETURNS_PIPELINE_ID: pipeline_json(
            RETURNS_PIPELINE_ID,
            "Returns & exchanges",
            1,
            RETURNS_STAGES,
            created_ms=_RETURNS_PIPELINE_CREATED_MS,
            updated_ms=_RETURNS_PIPELINE_CREATED_MS,
        ),
    }


def active_stages(pipeline: dict[str, Any]) -> list[dict[str, Any]]:
    """A pipeline's stages that are not archived, in display order (ties alphabetical by label, §4)."""
    stages = [s for s in pipeline["stages"] if not s.get("archived")]
    return sorted(stages, key=lambda s: (s["displayOrder"], s["label"].lower()))


def sync_pipeline_options(state: SandboxState, type_name: str) -> None:
    """Keep ``hs_pipeline``/``hs_pipeline_stage`` options equal to the live pipelines and stages.

    HubSpot lists pipelines and stages as the options of these enumeration properties (as it does for
    deals' ``pipeline`` and ``dealstage``), and record writes are validated against those options.
    """
    props = state.properties.get(type_name, {})
    pipeline_name, stage_name = PIPELINE_PROPERTIES.get(type_name, ("hs_pipeline", "hs_pipeline_stage"))
    if pipeline_name not in props and stage_name not in props:
        return
    with state.lock:
        pipelines = [p for p in state.pipelines[type_name].values() if not p.get("archived")]
        pipelines.sort(key=lambda p: (p["displayOrder"], p["label"].lower()))
        pipeline_options = [
            {"label": p["label"], "value": p["id"], "displayOrder": i, "hidden": False}
            for i, p in enumerate(pipelines)
        ]
        stage_options: list[dict[str, Any]] = []
        for p in pipelines:
            for s in active_stages(p):
                stage_options.append(
                    {
                        "label": s["label"],
                        "value": s["id"],
                        "displayOrder": len(stage_options),
                        "hidden": False,
                        "description": p["label"],
                    }
                )
        if pipeline_name in props:
            props[pipeline_name]["options"] = pipeline_options
        if stage_name in props:
            props[stage_name]["options"] = stage_options


# --- properties -----------------------------------------------------------------------------------

# When HubSpot created the default definitions; any fixed instant will do, it only has to be stable.
_CREATED: dict[str, str] = {
    "contacts": "2019-08-06T02:41:08.029Z",
    "line_items": "2019-08-06T02:41:09.187Z",
    "orders": "2024-03-27T17:10:44.114Z",
    "carts": "2024-03-27T17:10:44.862Z",
}

_STANDARD_CREATED = "2019-08-06T02:41:08.029Z"  # HubSpot's other standard objects (standard.py)

CURRENCY_CODES: tuple[str, ...] = (
    "USD",
    "EUR",
    "GBP",
    "CAD",
    "AUD",
    "NZD",
    "CHF",
    "SEK",
    "NOK",
    "DKK",
    "PLN",
    "CZK",
    "JPY",
    "SGD",
    "HKD",
    "MXN",
    "BRL",
    "INR",
    "ZAR",
    "AED",
)

# Option lists. Values keep the capitalised style of the documented example ``"hs_fulfillment_status":
# "Packing"`` (reference §1.3); the full lists are UNCONFIRMED (§11.1).
FULFILLMENT_STATUSES: tuple[tuple[str, str], ...] = (
    ("Unfulfilled", "Unfulfilled"),
    ("Packing", "Packing"),
    ("Partially shipped", "Partially shipped"),
    ("Shipped", "Shipped"),
    ("Delivered", "Delivered"),
    ("Returned", "Returned"),
    ("Cancelled", "Cancelled"),
)
PAYMENT_STATUSES: tuple[tuple[str, str], ...] = (
    ("Pending", "Pending"),
    ("Authorized", "Authorized"),
    ("Paid", "Paid"),
    ("Partially paid", "Partially paid"),
    ("Partially refunded", "Partially refunded"),
    ("Refunded", "Refunded"),
    ("Voided", "Voided"),
    ("Failed", "Failed"),
)
SHIPPING_METHODS: tuple[tuple[str, str], ...] = (
    ("Standard", "standard"),
    ("Express", "express"),
    ("Next day", "next_day"),
    ("Store pickup", "pickup"),
    ("Freight", "freight"),
)
OBJECT_SOURCES: tuple[tuple[str, str], ...] = (
    ("CRM UI", "CRM_UI"),
    ("API", "API"),
    ("Integration", "INTEGRATION"),
    ("Import", "IMPORT"),
    ("Automation platform", "AUTOMATION_PLATFORM"),
    ("Forms", "FORM"),
    ("Mobile app", "MOBILE_IOS"),
    ("Analytics", "ANALYTICS"),
)
LIFECYCLE_STAGES: tuple[tuple[str, str], ...] = (
    ("Subscriber", "subscriber"),
    ("Lead", "lead"),
    ("Marketing Qualified Lead", "marketingqualifiedlead"),
    ("Sales Qualified Lead", "salesqualifiedlead"),
    ("Opportunity", "opportunity"),
    ("Customer", "customer"),
    ("Evangelist", "evangelist"),
    ("Other", "other"),
)
LEGAL_BASES: tuple[tuple[str, str], ...] = (
    ("Legitimate interest - prospect/lead", "Legitimate interest - prospect/lead"),
    ("Legitimate interest - existing customer", "Legitimate interest - existing customer"),
    ("Legitimate interest - other", "Legitimate interest - other"),
    ("Performance of a contract", "Performance of a contract"),
    ("Freely given consent from contact", "Freely given consent from contact"),
    ("Not applicable", "Not applicable"),
)
BOOL_OPTIONS: tuple[tuple[str, str], ...] = (("Yes", "true"), ("No", "false"))


def options_json(pairs: tuple[tuple[str, str], ...] | list[tuple[str, str]]) -> list[dict[str, Any]]:
    """``[(label, value)]`` as HubSpot's ``Option`` list."""
    return [
        {"label": label, "value": value, "displayOrder": i, "hidden": False}
        for i, (label, value) in enumerate(pairs)
    ]


@dataclass(frozen=True)
class _Def:
    """A compact spelling of one HubSpot-defined property; ``json()`` expands it to the API shape."""

    name: str
    label: str
    type: str
    field_type: str
    group: str
    description: str = ""
    options: tuple[tuple[str, str], ...] = ()
    read_only: bool = False  # modificationMetadata.readOnlyValue
    calculated: bool = False
    unique: bool = False
    hidden: bool = False
    form_field: bool = False
    currency: bool = False  # a money amount: showCurrencySymbol + the record's currency property
    read_only_options: bool | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def json(self, type_name: str, display_order: int) -> dict[str, Any]:
        created = _CREATED.get(type_name, _STANDARD_CREATED)
        prop: dict[str, Any] = {
            "updatedAt": created,
            "createdAt": created,
            "name": self.name,
            "label": self.label,
            "type": self.type,
            "fieldType": self.field_type,
            "description": self.description,
            "groupName": self.group,
            "options": options_json(self.options),
            "displayOrder": display_order,
            "calculated": self.calculated,
            "externalOptions": False,
            "archived": False,
            "hasUniqueValue": self.unique,
            "hidden": self.hidden,
            "hubspotDefined": True,
            "modificationMetadata": {
                "archivable": False,
                "readOnlyDefinition": True,
                "readOnlyValue": self.read_only or self.calculated,
            },
            "formField": self.form_field,
            "dataSensitivity": "non_sensitive",
        }
        if self.type == "enumeration" or self.read_only_options is not None:
            prop["modificationMetadata"]["readOnlyOptions"] = bool(self.read_only_options)
        if self.currency:
            prop["showCurrencySymbol"] = True
            prop["numberDisplayHint"] = "currency"
        prop.update(self.extra)
        return prop


def _text(name: str, label: str, group: str, description: str = "", **kw: Any) -> _Def:
    return _Def(name, label, "string", "text", group, description, **kw)


def _textarea(name: str, label: str, group: str, description: str = "", **kw: Any) -> _Def:
    return _Def(name, label, "string", "textarea", group, description, **kw)


def _number(name: str, label: str, group: str, description: str = "", **kw: Any) -> _Def:
    return _Def(name, label, "number", "number", group, description, **kw)


def _money(name: str, label: str, group: str, description: str = "", **kw: Any) -> _Def:
    return _Def(name, label, "number", "number", group, description, currency=True, **kw)


def _datetime(name: str, label: str, group: str, description: str = "", **kw: Any) -> _Def:
    return _Def(name, label, "datetime", "date", group, description, **kw)


def _select(
    name: str, label: str, group: str, options: tuple[tuple[str, str], ...], description: str = "", **kw: Any
) -> _Def:
    return _Def(name, label, "enumeration", "select", group, description, options=options, **kw)


def _bool(name: str, label: str, group: str, description: str = "", **kw: Any) -> _Def:
    return _Def(name, label, "bool", "booleancheckbox", group, description, options=BOOL_OPTIONS, **kw)


def _system(group: str, created: str, modified: str) -> list[_Def]:
    """Read-only bookkeeping every object type has (reference §1.3 order example, §10 "IDs and values")."""
    return [
        _number(
            "hs_object_id",
            "Record ID",
            group,
            "The unique ID for this record. This value is automatically set by HubSpot.",
            read_only=True,
        ),
        _datetime(created, "Create Date", group, "The date the record was created.", read_only=True),
        _datetime(
            modified,
            "Last Modified Date",
            group,
            "Most recent timestamp of any property update.",
            read_only=True,
        ),
        _select(
            "hs_object_source",
            "Record source",
            group,
            OBJECT_SOURCES,
            "Raw internal PropertySource present in the RequestMeta when this record was created.",
            read_only=True,
            read_only_options=True,
        ),
        _text(
            "hs_object_source_id",
            "Record source detail 1",
            group,
            "First level of detail on how this record was created.",
            read_only=True,
        ),
        _text(
            "hs_object_source_label",
            "Record source detail 2",
            group,
            "Second level of detail on how this record was created.",
            read_only=True,
        ),
        _number(
            "hs_object_source_user_id",
            "Record creation source user ID",
            group,
            "Raw internal userId that created this record.",
            read_only=True,
        ),
        _number(
            "hs_created_by_user_id",
            "Created by user ID",
            group,
            "The user who created this record.",
            read_only=True,
        ),
        _number(
            "hs_updated_by_user_id",
            "Updated by user ID",
            group,
            "The user who last updated this record.",
            read_only=True,
        ),
        _Def(
            "hs_merged_object_ids",
            "Merged record IDs",
            "enumeration",
            "checkbox",
            group,
            "The list of record IDs that have been merged into this record.",
            read_only=True,
            read_only_options=True,
        ),
    ]


def _shipping(prefix: str, label_prefix: str, group: str, *, with_email: bool = False) -> list[_Def]:
    fields = [
        ("name", "name"),
        ("street", "street"),
        ("city", "city"),
        ("state", "state/region"),
        ("postal_code", "postal code"),
        ("country", "country"),
        ("phone", "phone"),
    ]
    defs = [_text(f"{prefix}_{key}", f"{label_prefix} {label}", group) for key, label in fields]
    if with_email:
        defs.append(_text(f"{prefix}_email", f"{label_prefix} email", group))
        defs.append(_text(f"{prefix}_firstname", f"{label_prefix} first name", group))
        defs.append(_text(f"{prefix}_lastname", f"{label_prefix} last name", group))
    return defs


GROUPS: dict[str, tuple[tuple[str, str], ...]] = {
    # Group names for orders and carts are UNCONFIRMED; contacts' and line items' are HubSpot's.
    "orders": (
        ("orderinformation", "Order information"),
        ("order_shipping", "Shipping"),
        ("order_billing", "Billing"),
    ),
    "carts": (("cartinformation", "Cart information"),),
    "line_items": (("lineiteminformation", "Line item information"),),
    "contacts": (
        ("contactinformation", "Contact information"),
        ("emailinformation", "Email information"),
        ("contact_activity", "Contact activity"),
    ),
}


def _order_defs(*, enumerated_statuses: bool) -> list[_Def]:
    g, ship, bill = "orderinformation", "order_shipping", "order_billing"
    fulfillment = (
        _select(
            "hs_fulfillment_status",
            "Fulfillment status",
            g,
            FULFILLMENT_STATUSES,
            "The current fulfillment / shipping status of the order.",
        )
        if enumerated_statuses
        else _text(
            "hs_fulfillment_status",
            "Fulfillment status",
            g,
            "The current fulfillment / shipping status of the order.",
        )
    )
    payment = (
        _select(
            "hs_payment_status", "Payment status", g, PAYMENT_STATUSES, "The payment status of the order."
        )
        if enumerated_statuses
        else _text("hs_payment_status", "Payment status", g, "The payment status of the order.")
    )
    return [
        *_system(g, "hs_createdate", "hs_lastmodifieddate"),
        _text("hs_order_name", "Name", g, "The order name in the external system.", form_field=True),
        _select(
            "hs_pipeline",
            "Pipeline",
            g,
            (),
            "The pipeline the order is in.",
            read_only_options=True,
        ),
        _select(
            "hs_pipeline_stage",
            "Order Stage",
            g,
            (),
            "The stage of the order in its pipeline.",
            read_only_options=True,
        ),
        # A currency enumeration as deals' currency code is; UNCONFIRMED for orders (§11.1).
        _select("hs_currency_code", "Currency Code", g, tuple((c, c) for c in CURRENCY_CODES)),
        _number("hs_exchange_rate", "Exchange rate", g, "Conversion rate to the portal's home currency."),
        _money("hs_homecurrency_amount", "Amount in home currency", g, read_only=True, calculated=True),
        _text("hs_source_store", "Source Store", g, "The store the order was placed in."),
        # 3P backfills saw "propertyValue already has that value" on a duplicate, which suggests a unique
        # value (reference §6, UNCONFIRMED); unique also makes it usable as ``idProperty`` for upserts.
        _text(
            "hs_external_order_id",
            "External order ID",
            g,
            "Unique identifier from an external system.",
            unique=True,
        ),
        _text("hs_external_order_url", "External order URL", g, "Link to the order in the external system."),
        _text("hs_external_order_status", "External order status", g, "Order status in the external system."),
        _datetime(
            "hs_external_created_date",
            "External created date",
            g,
            "When the order was placed in the external system.",
        ),
        _text("hs_external_cart_id", "External cart ID", g, "The external cart this order came from."),
        _text("hs_external_checkout_id", "External checkout ID", g),
        _datetime("hs_order_date", "Order date", g),
        _datetime("hs_processed_date", "Processed date", g),
        fulfillment,
        payment,
        _text("hs_payment_processing_method", "Payment processing method", g),
        # Writable here: an order's total comes from the store. One 3P test treats it as calculated
        # (reference §11.1, UNCONFIRMED).
        _money(
            "hs_total_price",
            "Total Price",
            g,
            "The total price of the order, including tax, shipping and discounts.",
        ),
        _money(
            "hs_subtotal_price",
            "Subtotal",
            g,
            "The sum of the line items before discounts, tax and shipping.",
        ),
        _money("hs_order_discount", "Order discount", g, "The discount applied to the whole order."),
        _text("hs_discount_codes", "Discount codes", g),
        _money("hs_tax", "Tax", g),
        _money("hs_shipping_cost", "Shipping cost", g),
        _Def("hs_tags", "Tags", "string", "textarea", g, "A collection of tag strings."),
        _text("hs_shipping_tracking_number", "Shipping tracking number", ship),
        _text(
            "hs_shipping_status_url", "Shipping status URL", ship, "A link to the carrier's tracking page."
        ),
        _select("hs_shipping_method", "Shipping method", ship, SHIPPING_METHODS),
        _text("hs_shipping_carrier", "Shipping carrier", ship),
        *_shipping("hs_shipping_address", "Shipping address", ship),
        *_shipping("hs_billing_address", "Billing address", bill, with_email=True),
    ]


def _cart_defs() -> list[_Def]:
    g = "cartinformation"
    return [
        *_system(g, "hs_createdate", "hs_lastmodifieddate"),
        _text("hs_cart_name", "Name", g, "The name in an external system.", form_field=True),
        _text("hs_external_cart_id", "Cart ID", g, "Unique identifier from an external system."),
        _text("hs_source_store", "Source Store", g),
        # Free text: the doc examples use "pending" and "fulfilled" and no option list is published
        # (reference §6 "Abandoned carts").
        _text("hs_external_status", "Status", g, "The current status of the cart."),
        _text(
            "hs_cart_url",
            "Cart Url",
            g,
            "The recovery URL that's sent to a customer so they can revive an abandoned cart.",
        ),
        _money("hs_total_price", "Total Price", g),
        _money("hs_subtotal_price", "Subtotal", g),
        _select("hs_currency_code", "Currency Code", g, tuple((c, c) for c in CURRENCY_CODES)),
        _money("hs_cart_discount", "Cart Discount", g),
        _text("hs_discount_codes", "Discount codes", g),
        _money("hs_tax", "Tax", g),
        _money("hs_shipping_cost", "Shipping cost", g),
        _number("hs_exchange_rate", "Exchange rate", g),
        _money("hs_homecurrency_amount", "Amount in home currency", g, read_only=True, calculated=True),
        _datetime("hs_external_created_date", "External created date", g),
        _datetime(
            "hs_external_updated_date", "External updated date", g, "When the shopper last changed the cart."
        ),
        _Def("hs_tags", "Tags", "string", "textarea", g, "A collection of tag strings"),
    ]


def _line_item_defs() -> list[_Def]:
    g = "lineiteminformation"
    return [
        *_system(g, "hs_createdate", "hs_lastmodifieddate"),
        _text("name", "Name", g, "Line item name.", form_field=True),
        _textarea("description", "Description", g, "Full description of product."),
        _text("hs_sku", "SKU", g, "Unique product identifier."),
        _number("quantity", "Quantity", g, "How many units of a product are in this line item."),
        _money("price", "Unit price", g, "The price per unit; cannot be negative."),
        _money("discount", "Unit discount", g, "The discount amount applied per unit."),
        _number("hs_discount_percentage", "Discount Percentage", g),
        _money("hs_total_discount", "Total discount", g, read_only=True, calculated=True),
        # "quantity times the unit price" (reference §6); HubSpot calculates it. Writes are accepted here
        # since stores send the net amount they charged; UNCONFIRMED whether HubSpot rejects or ignores them.
        _money("amount", "Net price", g, "The quantity times the unit price, minus any discount."),
        _money("hs_tax_amount", "Tax amount", g),
        _select("hs_line_item_currency_code", "Currency", g, tuple((c, c) for c in CURRENCY_CODES)),
        _number("hs_product_id", "Product ID", g, "ID of the product this was copied from."),
        _text("hs_variant_id", "Variant ID", g),
        _text("hs_url", "URL", g, "The product's page in the store."),
        _text("hs_images", "Image URL", g),
        _text("hs_recurring_billing_period", "Term", g, "ISO-8601 period, PnYnMnD or PnW."),
        _datetime("hs_recurring_billing_start_date", "Billing start date", g),
        _datetime("hs_recurring_billing_end_date", "Billing end date", g),
        _select(
            "recurringbillingfrequency",
            "Billing frequency",
            g,
            (
                ("Weekly", "weekly"),
                ("Monthly", "monthly"),
                ("Quarterly", "quarterly"),
                ("Annually", "annually"),
            ),
        ),
        _number("hs_position_on_quote", "Position", g),
    ]


def _contact_defs() -> list[_Def]:
    g, e, a = "contactinformation", "emailinformation", "contact_activity"
    return [
        *_system(g, "createdate", "lastmodifieddate"),
        _text("firstname", "First Name", g, "A contact's first name", form_field=True),
        _text("lastname", "Last Name", g, "A contact's last name", form_field=True),
        _text("email", "Email", g, "A contact's email address", form_field=True),
        _text(
            "hs_email_domain",
            "Email Domain",
            g,
            "A contact's email address domain",
            read_only=True,
            calculated=True,
        ),
        _Def(
            "phone",
            "Phone Number",
            "string",
            "phonenumber",
            g,
            "A contact's primary phone number",
            form_field=True,
        ),
        _Def(
            "mobilephone",
            "Mobile Phone Number",
            "string",
            "phonenumber",
            g,
            "A contact's mobile phone number",
        ),
        _text("company", "Company Name", g, "Name of the contact's company", form_field=True),
        _text("jobtitle", "Job Title", g),
        _text("address", "Street Address", g),
        _text("city", "City", g),
        _text("state", "State/Region", g),
        _text("zip", "Postal Code", g),
        _text("country", "Country/Region", g),
        _select("lifecyclestage", "Lifecycle Stage", g, LIFECYCLE_STAGES),
        _select(
            "hs_language",
            "Preferred language",
            g,
            (
                ("English", "en"),
                ("German", "de"),
                ("French", "fr"),
                ("Spanish", "es"),
                ("Dutch", "nl"),
                ("Arabic", "ar"),
                ("Hebrew", "he"),
            ),
        ),
        _bool(
            "hs_email_optout",
            "Unsubscribed from all email",
            e,
            "Indicates that the contact opted out of all email.",
        ),
        _select(
            "hs_marketable_status",
            "Marketing contact status",
            e,
            (("Marketing contact", "true"), ("Non-marketing contact", "false")),
            read_only=True,
        ),
        _Def(
            "hs_legal_basis",
            "Legal basis for processing contact's data",
            "enumeration",
            "checkbox",
            e,
            "Legal basis for processing contact's data; required for GDPR-enabled portals.",
            options=LEGAL_BASES,
        ),
        _datetime(
            "hs_email_last_send_date", "Last marketing email send date", e, read_only=True, calculated=True
        ),
        _bool("hs_email_hard_bounce", "Email hard bounced", e, read_only=True),
        _datetime("hs_last_order_date", "Last order date", a),
        _number("num_orders", "Number of orders", a),
        _money("total_revenue", "Total revenue", a),
    ]


def default_property_defs(*, enumerated_statuses: bool = True) -> dict[str, list[dict[str, Any]]]:
    """Object type -> its default property definitions in the v3 JSON shape, in display order."""
    defs = {
        "orders": _order_defs(enumerated_statuses=enumerated_statuses),
        "carts": _cart_defs(),
        "line_items": _line_item_defs(),
        "contacts": _contact_defs(),
    }
    return {t: [d.json(t, i) for i, d in enumerate(items)] for t, items in defs.items()}


def install_defaults(state: SandboxState, *, enumerated_statuses: bool = True) -> None:
    """Install the default groups, properties and order pipelines; what exists already is kept.

    ``enumerated_statuses`` makes ``hs_fulfillment_status``/``hs_payment_status`` enumerations with
    option lists; their real types are UNCONFIRMED (reference §11.1) and integrations are seen writing
    free values such as "fulfilled" or "unknown" to them, so ``False`` makes them plain text.
    """
    with state.lock:
        for type_name, groups in GROUPS.items():
            existing = state.property_groups[type_name]
            for order, (name, label) in enumerate(groups):
                existing.setdefault(
                    name, {"name": name, "label": label, "displayOrder": order, "archived": False}
                )
        for type_name, props in default_property_defs(enumerated_statuses=enumerated_statuses).items():
            existing_props = state.properties[type_name]
            for prop in props:
                existing_props.setdefault(prop["name"], prop)
        for pipeline_id, pipeline in default_pipelines().items():
            state.pipelines["orders"].setdefault(pipeline_id, copy.deepcopy(pipeline))
        _install_standard(state)
        for type_name in PIPELINE_OBJECT_TYPES:
            sync_pipeline_options(state, type_name)


def _install_standard(state: SandboxState) -> None:
    """HubSpot's other standard objects: their groups, properties and the deal and ticket pipelines."""
    from hubspot_sandbox import standard

    for type_name, groups in standard.GROUPS.items():
        existing = state.property_groups[type_name]
        for order, (name, label) in enumerate(groups):
            existing.setdefault(
                name, {"name": name, "label": label, "displayOrder": order, "archived": False}
            )
    for type_name, props in standard.property_defs().items():
        existing_props = state.properties[type_name]
        for prop in props:
            existing_props.setdefault(prop["name"], prop)
    for type_name, pipelines in standard.default_pipelines().items():
        for pipeline_id, pipeline in pipelines.items():
            state.pipelines[type_name].setdefault(pipeline_id, pipeline)
