"""HubSpot's other standard objects: companies, deals, tickets, products, quotes, engagements, ….

Every HubSpot account has them, and connectors read them whatever the portal sells (a v4 batch read of
contact→company associations is part of a well-known connector's contact sync). The sandbox serves them
through the same generic object, search, batch, association and property code as orders; this module
holds what differs per type: default property definitions and groups, the properties a bare GET
returns, the required properties on create, the full-text ``query`` fields, the schema labels, and the
default deal and ticket pipelines.

The property sets are a realistic subset of a fresh portal's, by HubSpot's internal names; the
reference documents none of them (it covers orders, carts, line items and contacts), so the lists, their
types and option values are UNCONFIRMED, and so are the bare-GET default sets (taken from what the SDK's
examples and connectors show a portal answering).
"""

from __future__ import annotations

from typing import Any

from hubspot_sandbox.defaults import (
    CURRENCY_CODES,
    LIFECYCLE_STAGES,
    _bool,
    _datetime,
    _Def,
    _money,
    _number,
    _select,
    _system,
    _text,
    _textarea,
    pipeline_json,
)
from hubspot_sandbox.state import OBJECT_TYPES

# When the standard definitions were made; any stable instant will do.
CREATED = "2019-08-06T02:41:08.029Z"
_DEFAULT_PIPELINE_UPDATED_MS = 1_565_059_268_029  # the same instant, for the default pipelines

# --- pipelines ----------------------------------------------------------------------------------------

# Every account has a deal pipeline with id "default" and a ticket pipeline with id "0"; the stage ids
# below are the internal names HubSpot gives the default stages (seen in every connector's fixtures;
# UNCONFIRMED officially). Deal stages carry ``probability`` (required, reference §4) and ``isClosed``
# (the deal audit example), ticket stages ``ticketState`` (reference §4).
DEAL_PIPELINE_ID = "default"
DEAL_STAGES: tuple[tuple[str, str, str, bool], ...] = (
    ("appointmentscheduled", "Appointment Scheduled", "0.2", False),
    ("qualifiedtobuy", "Qualified To Buy", "0.4", False),
    ("presentationscheduled", "Presentation Scheduled", "0.6", False),
    ("decisionmakerboughtin", "Decision Maker Bought-In", "0.8", False),
    ("contractsent", "Contract Sent", "0.9", False),
    ("closedwon", "Closed Won", "1.0", True),
    ("closedlost", "Closed Lost", "0.0", True),
)
TICKET_PIPELINE_ID = "0"
TICKET_STAGES: tuple[tuple[str, str, str], ...] = (
    ("1", "New", "OPEN"),
    ("2", "Waiting on contact", "OPEN"),
    ("3", "Waiting on us", "OPEN"),
    ("4", "Closed", "CLOSED"),
)


def default_pipelines() -> dict[str, dict[str, dict[str, Any]]]:
    """Object type -> pipeline id -> pipeline JSON: "Sales Pipeline" for deals, "Support Pipeline" for
    tickets ("The default pipelines will have createdAt = 0", reference §4)."""
    deals = pipeline_json(
        DEAL_PIPELINE_ID,
        "Sales Pipeline",
        0,
        tuple((sid, label, "OPEN") for sid, label, _p, _c in DEAL_STAGES),
        created_ms=0,
        updated_ms=_DEFAULT_PIPELINE_UPDATED_MS,
    )
    for stage, (_sid, _label, probability, closed) in zip(deals["stages"], DEAL_STAGES, strict=True):
        stage["metadata"] = {"isClosed": "true" if closed else "false", "probability": probability}
    tickets = pipeline_json(
        TICKET_PIPELINE_ID,
        "Support Pipeline",
        0,
        TICKET_STAGES,
        created_ms=0,
        updated_ms=_DEFAULT_PIPELINE_UPDATED_MS,
    )
    for stage, (_sid, _label, state) in zip(tickets["stages"], TICKET_STAGES, strict=True):
        stage["metadata"] = {"ticketState": state}
    return {"deals": {DEAL_PIPELINE_ID: deals}, "tickets": {TICKET_PIPELINE_ID: tickets}}


# --- per-type facts --------------------------------------------------------------------------------------

_ENGAGEMENTS = ("calls", "emails", "meetings", "notes", "tasks", "communications", "postal_mail")

# What a bare GET returns (UNCONFIRMED, see the module docstring); others: the three bookkeeping ones.
DEFAULT_PROPERTIES: dict[str, tuple[str, ...]] = {
    "companies": ("createdate", "domain", "hs_lastmodifieddate", "hs_object_id", "name"),
    "deals": (
        "amount",
        "closedate",
        "createdate",
        "dealname",
        "dealstage",
        "hs_lastmodifieddate",
        "hs_object_id",
        "pipeline",
    ),
    "tickets": (
        "content",
        "createdate",
        "hs_lastmodifieddate",
        "hs_object_id",
        "hs_pipeline",
        "hs_pipeline_stage",
        "hs_ticket_category",
        "hs_ticket_priority",
        "subject",
    ),
    "products": ("createdate", "description", "hs_lastmodifieddate", "hs_object_id", "name", "price"),
    "quotes": (
        "hs_createdate",
        "hs_expiration_date",
        "hs_lastmodifieddate",
        "hs_object_id",
        "hs_public_url_key",
        "hs_status",
        "hs_title",
    ),
}
for _name in OBJECT_TYPES:
    if _name not in DEFAULT_PROPERTIES and _name not in ("contacts", "orders", "carts", "line_items"):
        DEFAULT_PROPERTIES[_name] = ("hs_createdate", "hs_lastmodifieddate", "hs_object_id")

# Required on create (UNCONFIRMED beyond what the object guides say: a deal needs a name and a stage, a
# ticket a subject and a stage; engagements need the time they happened).
REQUIRED_ON_CREATE: dict[str, tuple[str, ...]] = {
    "deals": ("dealname", "dealstage"),
    "tickets": ("subject", "hs_pipeline_stage"),
    **dict.fromkeys(_ENGAGEMENTS, ("hs_timestamp",)),
}

# Full-text search ``query`` fields (UNCONFIRMED).
QUERY_PROPERTIES: dict[str, tuple[str, ...]] = {
    "companies": ("name", "domain", "website", "phone"),
    "deals": ("dealname",),
    "tickets": ("subject", "content"),
    "products": ("name", "hs_sku", "description"),
    "quotes": ("hs_title",),
    "calls": ("hs_call_title", "hs_call_body"),
    "emails": ("hs_email_subject", "hs_email_text"),
    "meetings": ("hs_meeting_title", "hs_meeting_body"),
    "notes": ("hs_note_body",),
    "tasks": ("hs_task_subject", "hs_task_body"),
    "communications": ("hs_communication_body",),
    "postal_mail": ("hs_postal_mail_body",),
    "invoices": ("hs_number",),
    "subscriptions": ("hs_name",),
    "commerce_payments": ("hs_reference_number",),
    "leads": ("hs_lead_name",),
}

_LABELS: dict[str, tuple[str, str, str]] = {
    # type: (singular label, plural label, primary display property)
    "companies": ("Company", "Companies", "name"),
    "deals": ("Deal", "Deals", "dealname"),
    "tickets": ("Ticket", "Tickets", "subject"),
    "products": ("Product", "Products", "name"),
    "quotes": ("Quote", "Quotes", "hs_title"),
    "calls": ("Call", "Calls", "hs_call_title"),
    "emails": ("Email", "Emails", "hs_email_subject"),
    "meetings": ("Meeting", "Meetings", "hs_meeting_title"),
    "notes": ("Note", "Notes", "hs_note_body"),
    "tasks": ("Task", "Tasks", "hs_task_subject"),
    "communications": ("Communication", "Communications", "hs_communication_body"),
    "postal_mail": ("Postal mail", "Postal mail", "hs_postal_mail_body"),
    "invoices": ("Invoice", "Invoices", "hs_number"),
    "subscriptions": ("Subscription", "Subscriptions", "hs_name"),
    "commerce_payments": ("Payment", "Payments", "hs_reference_number"),
    "leads": ("Lead", "Leads", "hs_lead_name"),
}


def schema_meta() -> dict[str, dict[str, Any]]:
    """The schema endpoints' labels and display properties of each standard type."""
    return {
        name: {
            "labels": {"singular": singular, "plural": plural},
            "primary": primary,
            "secondary": [],
            "required": list(REQUIRED_ON_CREATE.get(name, ())),
            "searchable": list(QUERY_PROPERTIES.get(name, (primary,))),
        }
        for name, (singular, plural, primary) in _LABELS.items()
    }


def group_name(type_name: str) -> str:
    """HubSpot's default group of a type: ``companyinformation``, ``dealinformation``, …"""
    return f"{OBJECT_TYPES[type_name].singular.replace('_', '')}information"


GROUPS: dict[str, tuple[tuple[str, str], ...]] = {
    name: ((group_name(name), f"{singular} information"),) for name, (singular, _p, _x) in _LABELS.items()
}

# --- property definitions ---------------------------------------------------------------------------------

_COMPANY_TYPES = (
    ("Prospect", "PROSPECT"),
    ("Partner", "PARTNER"),
    ("Reseller", "RESELLER"),
    ("Vendor", "VENDOR"),
    ("Other", "OTHER"),
)
_INDUSTRIES = (
    ("Apparel & Fashion", "APPAREL_FASHION"),
    ("Computer Software", "COMPUTER_SOFTWARE"),
    ("Consumer Goods", "CONSUMER_GOODS"),
    ("Food & Beverages", "FOOD_BEVERAGES"),
    ("Retail", "RETAIL"),
    ("Sporting Goods", "SPORTING_GOODS"),
    ("Wholesale", "WHOLESALE"),
)
_PRIORITIES = (("Low", "LOW"), ("Medium", "MEDIUM"), ("High", "HIGH"))
_CURRENCIES = tuple((c, c) for c in CURRENCY_CODES)


def _owner(group: str) -> _Def:
    # Options are the portal's owners; the sandbox has none, so any value is accepted.
    return _select("hubspot_owner_id", "Owner", group, (), "The owner of the record.")


def _company_defs(g: str) -> list[_Def]:
    return [
        _text("name", "Company name", g, "The name of the company.", form_field=True),
        _text("domain", "Company Domain Name", g, "The domain name of the company.", form_field=True),
        _text("website", "Website URL", g),
        _Def("phone", "Phone Number", "string", "phonenumber", g, "A company's primary phone number"),
        _text("address", "Street Address", g),
        _text("city", "City", g),
        _text("state", "State/Region", g),
        _text("zip", "Postal Code", g),
        _text("country", "Country/Region", g),
        _select("industry", "Industry", g, _INDUSTRIES),
        _select("type", "Type", g, _COMPANY_TYPES),
        _select("lifecyclestage", "Lifecycle Stage", g, LIFECYCLE_STAGES),
        _number("numberofemployees", "Number of Employees", g),
        _money("annualrevenue", "Annual Revenue", g),
        _textarea("description", "Description", g),
        _owner(g),
        _number(
            "num_associated_contacts", "Number of Associated Contacts", g, read_only=True, calculated=True
        ),
        _number("num_associated_deals", "Number of Associated Deals", g, read_only=True, calculated=True),
    ]


def _deal_defs(g: str) -> list[_Def]:
    return [
        _text("dealname", "Deal Name", g, "The name given to this deal.", form_field=True),
        _money("amount", "Amount", g, "The total amount of the deal."),
        _datetime("closedate", "Close Date", g, "Date the deal was closed."),
        _select("pipeline", "Pipeline", g, (), "The pipeline the deal is in.", read_only_options=True),
        _select("dealstage", "Deal Stage", g, (), "The stage of the deal.", read_only_options=True),
        _select(
            "dealtype",
            "Deal Type",
            g,
            (("New Business", "newbusiness"), ("Existing Business", "existingbusiness")),
        ),
        _select("deal_currency_code", "Currency", g, _CURRENCIES),
        _select("hs_priority", "Priority", g, (("Low", "low"), ("Medium", "medium"), ("High", "high"))),
        _textarea("description", "Deal Description", g),
        _owner(g),
        _bool("hs_is_closed", "Is Deal Closed?", g, read_only=True, calculated=True),
        _bool("hs_is_closed_won", "Is Closed Won", g, read_only=True, calculated=True),
        _number(
            "num_associated_contacts", "Number of Associated Contacts", g, read_only=True, calculated=True
        ),
    ]


def _ticket_defs(g: str) -> list[_Def]:
    return [
        _text("subject", "Ticket name", g, "Short summary of ticket.", form_field=True),
        _textarea("content", "Ticket description", g, "Text in ticket."),
        _select("hs_pipeline", "Pipeline", g, (), "The pipeline the ticket is in.", read_only_options=True),
        _select(
            "hs_pipeline_stage", "Ticket status", g, (), "The stage of the ticket.", read_only_options=True
        ),
        _select("hs_ticket_priority", "Priority", g, (*_PRIORITIES, ("Urgent", "URGENT"))),
        _select(
            "hs_ticket_category",
            "Category",
            g,
            (
                ("Product issue", "PRODUCT_ISSUE"),
                ("Billing issue", "BILLING_ISSUE"),
                ("Feature request", "FEATURE_REQUEST"),
                ("General inquiry", "GENERAL_INQUIRY"),
            ),
        ),
        _select(
            "source_type",
            "Source",
            g,
            (("Chat", "CHAT"), ("Email", "EMAIL"), ("Form", "FORM"), ("Phone", "PHONE")),
        ),
        _owner(g),
        _datetime("closed_date", "Close date", g, read_only=True, calculated=True),
        _number("time_to_close", "Time to close (HH:mm:ss)", g, read_only=True, calculated=True),
    ]


def _product_defs(g: str) -> list[_Def]:
    return [
        _text("name", "Name", g, "Product name.", form_field=True),
        _textarea("description", "Description", g, "Full description of product."),
        _money("price", "Unit price", g, "Cost of product."),
        _text("hs_sku", "SKU", g, "Unique product identifier."),
        _money("hs_cost_of_goods_sold", "Unit cost", g),
        _select(
            "hs_product_type",
            "Product type",
            g,
            (("Inventory", "inventory"), ("Non-inventory", "non_inventory"), ("Service", "service")),
        ),
        _text("hs_recurring_billing_period", "Term", g, "ISO-8601 period, PnYnMnD or PnW."),
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
        _text("hs_url", "URL", g),
        _text("hs_images", "Image URL", g),
    ]


def _quote_defs(g: str) -> list[_Def]:
    return [
        _text("hs_title", "Quote name", g, form_field=True),
        _datetime("hs_expiration_date", "Expiration date", g),
        _select(
            "hs_status",
            "Quote approval status",
            g,
            (
                ("Draft", "DRAFT"),
                ("Approval not needed", "APPROVAL_NOT_NEEDED"),
                ("Pending approval", "PENDING_APPROVAL"),
                ("Approved", "APPROVED"),
                ("Rejected", "REJECTED"),
            ),
        ),
        _text("hs_public_url_key", "Quote public URL key", g, read_only=True),
        _money("hs_quote_amount", "Quote amount", g, read_only=True, calculated=True),
        _select("hs_currency", "Currency", g, _CURRENCIES),
        _select("hs_language", "Language", g, (("English", "en"), ("German", "de"), ("French", "fr"))),
        _text("hs_sender_firstname", "Sender first name", g),
        _text("hs_sender_email", "Sender email", g),
        _owner(g),
    ]


def _engagement_defs(name: str, g: str) -> list[_Def]:
    defs = [_datetime("hs_timestamp", "Activity date", g, "When the activity happened."), _owner(g)]
    if name == "calls":
        defs += [
            _text("hs_call_title", "Call Title", g),
            _textarea("hs_call_body", "Call notes", g),
            _number("hs_call_duration", "Call duration", g, "Milliseconds."),
            _select(
                "hs_call_direction", "Call direction", g, (("Inbound", "INBOUND"), ("Outbound", "OUTBOUND"))
            ),
            _select(
                "hs_call_status",
                "Call status",
                g,
                (
                    ("Completed", "COMPLETED"),
                    ("Busy", "BUSY"),
                    ("No answer", "NO_ANSWER"),
                    ("Failed", "FAILED"),
                ),
            ),
        ]
    elif name == "emails":
        defs += [
            _text("hs_email_subject", "Email subject", g),
            _textarea("hs_email_text", "Email text", g),
            _textarea("hs_email_html", "Email HTML", g),
            _select(
                "hs_email_direction",
                "Email direction",
                g,
                (("Sent", "EMAIL"), ("Received", "INCOMING_EMAIL"), ("Forwarded", "FORWARDED_EMAIL")),
            ),
            _select(
                "hs_email_status",
                "Email send status",
                g,
                (("Sent", "SENT"), ("Bounced", "BOUNCED"), ("Failed", "FAILED"), ("Scheduled", "SCHEDULED")),
            ),
        ]
    elif name == "meetings":
        defs += [
            _text("hs_meeting_title", "Meeting name", g),
            _textarea("hs_meeting_body", "Meeting description", g),
            _datetime("hs_meeting_start_time", "Start time", g),
            _datetime("hs_meeting_end_time", "End time", g),
            _select(
                "hs_meeting_outcome",
                "Meeting outcome",
                g,
                (
                    ("Scheduled", "SCHEDULED"),
                    ("Completed", "COMPLETED"),
                    ("Rescheduled", "RESCHEDULED"),
                    ("No show", "NO_SHOW"),
                    ("Canceled", "CANCELED"),
                ),
            ),
        ]
    elif name == "notes":
        defs += [_textarea("hs_note_body", "Note body", g)]
    elif name == "tasks":
        defs += [
            _text("hs_task_subject", "Task title", g),
            _textarea("hs_task_body", "Task notes", g),
            _select(
                "hs_task_status",
                "Task status",
                g,
                (
                    ("Not started", "NOT_STARTED"),
                    ("In progress", "IN_PROGRESS"),
                    ("Waiting", "WAITING"),
                    ("Completed", "COMPLETED"),
                    ("Deferred", "DEFERRED"),
                ),
            ),
            _select("hs_task_priority", "Priority", g, (("None", "NONE"), *_PRIORITIES)),
            _select(
                "hs_task_type", "Task type", g, (("To-do", "TODO"), ("Call", "CALL"), ("Email", "EMAIL"))
            ),
        ]
    elif name == "communications":
        defs += [
            _select(
                "hs_communication_channel_type",
                "Channel type",
                g,
                (("WhatsApp", "WHATS_APP"), ("LinkedIn", "LINKEDIN_MESSAGE"), ("SMS", "SMS")),
            ),
            _textarea("hs_communication_body", "Communication body", g),
            _text("hs_communication_logged_from", "Logged from", g),
        ]
    elif name == "postal_mail":
        defs += [_textarea("hs_postal_mail_body", "Postal mail body", g)]
    return defs


def _commerce_defs(name: str, g: str) -> list[_Def]:
    if name == "invoices":
        return [
            _text("hs_number", "Number", g, read_only=True),
            _select("hs_currency", "Currency", g, _CURRENCIES),
            _datetime("hs_invoice_date", "Invoice date", g),
            _datetime("hs_due_date", "Due date", g),
            _select(
                "hs_invoice_status",
                "Invoice status",
                g,
                (("Draft", "draft"), ("Open", "open"), ("Paid", "paid"), ("Voided", "voided")),
            ),
            _money("hs_amount_billed", "Amount billed", g, read_only=True, calculated=True),
        ]
    if name == "subscriptions":
        return [
            _text("hs_name", "Name", g),
            _select(
                "hs_status",
                "Status",
                g,
                (
                    ("Active", "active"),
                    ("Canceled", "canceled"),
                    ("Expired", "expired"),
                    ("Scheduled", "scheduled"),
                    ("Past due", "past_due"),
                    ("Paused", "paused"),
                ),
            ),
            _datetime("hs_recurring_billing_start_date", "Start date", g),
            _datetime("hs_next_payment_due_date", "Next payment due date", g),
        ]
    if name == "commerce_payments":
        return [
            _text("hs_reference_number", "Reference number", g, read_only=True),
            _money("hs_initial_amount", "Gross amount", g),
            _select("hs_currency_code", "Currency", g, _CURRENCIES),
            _select(
                "hs_latest_status",
                "Status",
                g,
                (
                    ("Succeeded", "succeeded"),
                    ("Processing", "processing"),
                    ("Failed", "failed"),
                    ("Refunded", "refunded"),
                ),
            ),
            _text("hs_payment_method_type", "Payment method", g),
        ]
    # leads
    return [
        _text("hs_lead_name", "Lead name", g),
        _select("hs_lead_type", "Lead type", g, (("New business", "NEW_BUSINESS"), ("Upsell", "UPSELL"))),
        _text("hs_lead_label", "Lead label", g),
        _owner(g),
    ]


def property_defs() -> dict[str, list[dict[str, Any]]]:
    """Object type -> its default property definitions in the v3 JSON shape, in display order."""
    out: dict[str, list[dict[str, Any]]] = {}
    for name in _LABELS:
        otype = OBJECT_TYPES[name]
        g = group_name(name)
        system = _system(g, otype.created_property, otype.modified_property)
        if name == "companies":
            own = _company_defs(g)
        elif name == "deals":
            own = _deal_defs(g)
        elif name == "tickets":
            own = _ticket_defs(g)
        elif name == "products":
            own = _product_defs(g)
        elif name == "quotes":
            own = _quote_defs(g)
        elif name in _ENGAGEMENTS:
            own = _engagement_defs(name, g)
        else:
            own = _commerce_defs(name, g)
        out[name] = [d.json(name, i) for i, d in enumerate([*system, *own])]
    return out
