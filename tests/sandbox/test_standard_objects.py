"""HubSpot's other standard objects (companies, deals, tickets, products, …) over real HTTP.

Every HubSpot account has them, and connectors read them whatever the portal sells: a well-known one's
incremental contact sync asks ``POST /crm/v4/associations/contact/companies/batch/read``, which the
sandbox used to refuse with 400 "Unable to infer object type from: companies".
"""

from __future__ import annotations

import textwrap
from typing import Any

import pytest

from hubspot_sandbox.seed import seed, seed_standard
from hubspot_sandbox.state import SandboxState
from tests.sandbox.helpers import assert_error, create, run_sdk_script

STANDARD = {"seed_companies": 3, "seed_deals": 4}

# One valid create body per type (deals need a name and a stage, tickets a subject and a stage).
BODIES: dict[str, dict[str, str]] = {
    "companies": {"name": "Acme Outfitters", "domain": "outfitters.example.com"},
    "deals": {"dealname": "Spring restock", "dealstage": "qualifiedtobuy", "amount": "1200"},
    "tickets": {"subject": "Parcel arrived damaged", "hs_pipeline_stage": "1", "content": "Box crushed"},
    "products": {"name": "Trail runner", "price": "89.5", "hs_sku": "TR-1"},
}
QUERY = {"companies": "Acme", "deals": "restock", "tickets": "damaged", "products": "runner"}
TYPE_IDS = {"companies": "0-2", "deals": "0-3", "tickets": "0-5", "products": "0-7"}
RENAME = {"companies": "name", "deals": "dealname", "tickets": "subject", "products": "name"}


def first_contact(api: Any) -> str:
    return str(api.get("/crm/v3/objects/contacts", params={"limit": 1}).json()["results"][0]["id"])


@pytest.mark.sandbox(**STANDARD)
def test_v4_batch_read_of_contact_to_companies_answers_as_the_contact_list_does(sandbox_api: Any) -> None:
    contacts = sandbox_api.get("/crm/v3/objects/contacts", params={"limit": 100, "associations": "companies"})
    assert contacts.status_code == 200
    with_company = {
        c["id"]: sorted({a["id"] for a in c["associations"]["companies"]["results"]})
        for c in contacts.json()["results"]
        if "associations" in c
    }
    assert with_company, "the standard seed ties companies to contacts"
    # The exact request of the connector: singular "contact", plural "companies".
    response = sandbox_api.post(
        "/crm/v4/associations/contact/companies/batch/read",
        json={"inputs": [{"id": cid} for cid in with_company]},
    )
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    read = {r["from"]["id"]: sorted(str(t["toObjectId"]) for t in r["to"]) for r in results}
    assert read == with_company
    types = {t["typeId"]: t for r in results for to in r["to"] for t in to["associationTypes"]}
    # Reference §5.2's example: the unlabelled 279 beside 1 "Primary".
    assert types[279] == {"category": "HUBSPOT_DEFINED", "typeId": 279, "label": None}
    assert types[1] == {"category": "HUBSPOT_DEFINED", "typeId": 1, "label": "Primary"}
    # And back: company → contact with the reverse ids.
    company_id = next(iter(with_company.values()))[0]
    back = sandbox_api.get(f"/crm/v4/objects/companies/{company_id}/associations/contacts").json()
    assert {t["typeId"] for r in back["results"] for t in r["associationTypes"]} == {2, 280}


@pytest.mark.sandbox(empty=True)
def test_v4_batch_read_of_standard_types_on_an_empty_portal_is_not_a_400(sandbox_api: Any) -> None:
    for path in ("contact/companies", "contacts/0-2", "deal/contacts", "0-5/companies"):
        response = sandbox_api.post(f"/crm/v4/associations/{path}/batch/read", json={"inputs": []})
        assert response.status_code == 200, (path, response.text)
        assert response.json()["results"] == []


@pytest.mark.parametrize("type_name", sorted(BODIES))
def test_crud_list_search_and_batch(sandbox_api: Any, type_name: str) -> None:
    made = create(sandbox_api, type_name, BODIES[type_name])
    record_id = made["id"]
    assert made["properties"]["hs_object_id"] == record_id
    # By plural, singular and type id alike.
    for alias in (type_name, type_name.rstrip("s").replace("companie", "company"), TYPE_IDS[type_name]):
        got = sandbox_api.get(f"/crm/v3/objects/{alias}/{record_id}")
        assert got.status_code == 200, (alias, got.text)
        assert got.json()["id"] == record_id
    name = RENAME[type_name]
    patched = sandbox_api.patch(
        f"/crm/v3/objects/{type_name}/{record_id}", json={"properties": {name: "Renamed"}}
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["properties"][name] == "Renamed"
    assert patched.json()["updatedAt"] >= made["updatedAt"]

    listed = sandbox_api.get(f"/crm/v3/objects/{type_name}", params={"properties": name}).json()
    assert [r["properties"][name] for r in listed["results"] if r["id"] == record_id] == ["Renamed"]

    second = create(sandbox_api, type_name, BODIES[type_name])
    found = sandbox_api.post(f"/crm/v3/objects/{type_name}/search", json={"query": QUERY[type_name]}).json()
    assert found["total"] == 1 and found["results"][0]["id"] == second["id"]
    by_filter = sandbox_api.post(
        f"/crm/v3/objects/{TYPE_IDS[type_name]}/search",
        json={
            "filterGroups": [
                {"filters": [{"propertyName": "hs_object_id", "operator": "EQ", "value": record_id}]}
            ]
        },
    ).json()
    assert [r["id"] for r in by_filter["results"]] == [record_id]

    batch = sandbox_api.post(
        f"/crm/v3/objects/{type_name}/batch/read",
        json={"properties": [name], "inputs": [{"id": record_id}, {"id": second["id"]}]},
    )
    assert batch.status_code == 200, batch.text
    assert {r["id"] for r in batch.json()["results"]} == {record_id, second["id"]}
    created = sandbox_api.post(
        f"/crm/v3/objects/{type_name}/batch/create", json={"inputs": [{"properties": BODIES[type_name]}]}
    )
    assert created.status_code == 201, created.text
    updated = sandbox_api.post(
        f"/crm/v3/objects/{type_name}/batch/update",
        json={"inputs": [{"id": second["id"], "properties": {name: "Batch renamed"}}]},
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["results"][0]["properties"][name] == "Batch renamed"
    archived = sandbox_api.post(
        f"/crm/v3/objects/{type_name}/batch/archive", json={"inputs": [{"id": second["id"]}]}
    )
    assert archived.status_code == 204

    assert sandbox_api.delete(f"/crm/v3/objects/{type_name}/{record_id}").status_code == 204
    assert_error(sandbox_api.get(f"/crm/v3/objects/{type_name}/{record_id}"), 404, "OBJECT_NOT_FOUND")


def test_bad_values_and_missing_required_properties_are_refused(sandbox_api: Any) -> None:
    response = sandbox_api.post("/crm/v3/objects/deals", json={"properties": {"dealname": "No stage"}})
    assert_error(response, 400, "VALIDATION_ERROR")
    response = sandbox_api.post(
        "/crm/v3/objects/deals", json={"properties": {"dealname": "X", "dealstage": "not-a-stage"}}
    )
    assert "INVALID_OPTION" in assert_error(response, 400, "VALIDATION_ERROR")["message"]
    response = sandbox_api.post("/crm/v3/objects/companies", json={"properties": {"no_such_property": "x"}})
    assert "PROPERTY_DOESNT_EXIST" in assert_error(response, 400, "VALIDATION_ERROR")["message"]
    response = sandbox_api.post("/crm/v3/objects/products", json={"properties": {"price": "cheap"}})
    assert "INVALID_INTEGER" in assert_error(response, 400, "VALIDATION_ERROR")["message"]
    # A name that is no HubSpot type is still refused, as before.
    assert_error(sandbox_api.get("/crm/v3/objects/widgets"), 400, "VALIDATION_ERROR")


def test_a_deal_lands_in_the_sales_pipeline_and_a_ticket_in_the_support_pipeline(sandbox_api: Any) -> None:
    deal = create(sandbox_api, "deals", {"dealname": "Restock", "dealstage": "contractsent"})
    assert deal["properties"]["pipeline"] == "default"
    ticket = create(sandbox_api, "tickets", {"subject": "Late", "hs_pipeline_stage": "2"})
    assert ticket["properties"]["hs_pipeline"] == "0"


# Reference §5.3 (contact↔company, deal↔contact, the order and cart rows, line item→deal/quote); the
# others come from the SDK's AssociationType enum and are marked UNCONFIRMED in the sandbox.
ASSOCIATION_IDS: list[tuple[str, str, list[int]]] = [
    ("contacts", "companies", [279, 1]),
    ("companies", "contacts", [280, 2]),
    ("deals", "contacts", [3]),
    ("contacts", "deals", [4]),
    ("deals", "companies", [341, 5]),
    ("line_items", "deals", [20]),
    ("deals", "line_items", [19]),
    ("line_items", "quotes", [68]),
    ("orders", "deals", [512]),
    ("deals", "orders", [511]),
    ("orders", "companies", [934, 509]),
    ("carts", "deals", [1347]),
    ("orders", "contacts", [507]),  # the app's own pairs are unchanged
    ("contacts", "orders", [508]),
]


@pytest.mark.sandbox(empty=True)
@pytest.mark.parametrize(("from_type", "to_type", "type_ids"), ASSOCIATION_IDS)
def test_v3_and_v4_association_type_ids_match_the_reference(
    sandbox_api: Any, from_type: str, to_type: str, type_ids: list[int]
) -> None:
    labels = sandbox_api.get(f"/crm/v4/associations/{from_type}/{to_type}/labels")
    assert labels.status_code == 200, labels.text
    assert [r["typeId"] for r in labels.json()["results"]] == type_ids
    assert {r["category"] for r in labels.json()["results"]} == {"HUBSPOT_DEFINED"}
    types = sandbox_api.get(f"/crm/v3/associations/{from_type}/{to_type}/types")
    assert [int(r["id"]) for r in types.json()["results"]] == type_ids


@pytest.mark.sandbox(empty=True)
def test_v3_association_put_and_get_with_the_default_and_primary_ids(sandbox_api: Any) -> None:
    contact = create(sandbox_api, "contacts", {"email": "buyer@example.com"})["id"]
    company = create(sandbox_api, "companies", BODIES["companies"])["id"]
    put = sandbox_api.put(f"/crm/v3/objects/contacts/{contact}/associations/companies/{company}/279")
    assert put.status_code == 200, put.text
    primary = sandbox_api.put(
        f"/crm/v3/objects/contact/{contact}/associations/company/{company}/contact_to_company"
    )
    assert primary.status_code == 200, primary.text
    listed = sandbox_api.get(f"/crm/v3/objects/companies/{company}/associations/contacts").json()
    assert sorted(r["type"] for r in listed["results"]) == [
        "company_to_contact",
        "company_to_contact_unlabeled",
    ]
    inline = sandbox_api.get(
        f"/crm/v3/objects/contacts/{contact}", params={"associations": "companies"}
    ).json()
    assert {r["id"] for r in inline["associations"]["companies"]["results"]} == {company}
    v4 = sandbox_api.get(f"/crm/v4/objects/0-2/{company}/associations/0-1").json()
    assert {t["typeId"] for t in v4["results"][0]["associationTypes"]} == {2, 280}
    wrong = sandbox_api.put(f"/crm/v3/objects/contacts/{contact}/associations/companies/{company}/3")
    assert_error(wrong, 400, "VALIDATION_ERROR")


def test_properties_of_the_standard_types(sandbox_api: Any) -> None:
    body = sandbox_api.get("/crm/v3/properties/companies").json()
    names = {p["name"] for p in body["results"]}
    assert {
        "name",
        "domain",
        "website",
        "phone",
        "industry",
        "city",
        "country",
        "numberofemployees",
        "annualrevenue",
        "lifecyclestage",
        "hubspot_owner_id",
        "createdate",
        "hs_lastmodifieddate",
        "hs_object_id",
    } <= names
    assert {p["groupName"] for p in body["results"]} == {"companyinformation"}
    groups = sandbox_api.get("/crm/v3/properties/0-2/groups").json()
    assert [g["name"] for g in groups["results"]] == ["companyinformation"]
    deals = {p["name"]: p for p in sandbox_api.get("/crm/v3/properties/deals").json()["results"]}
    assert {"dealname", "amount", "closedate", "pipeline", "dealstage"} <= deals.keys()
    # The pipeline properties list the pipelines and their stages as options, as HubSpot's do.
    assert [o["value"] for o in deals["pipeline"]["options"]] == ["default"]
    assert "closedwon" in [o["value"] for o in deals["dealstage"]["options"]]
    tickets = {p["name"] for p in sandbox_api.get("/crm/v3/properties/tickets").json()["results"]}
    assert {"subject", "content", "hs_pipeline", "hs_pipeline_stage", "hs_ticket_priority"} <= tickets
    products = {p["name"] for p in sandbox_api.get("/crm/v3/properties/products").json()["results"]}
    assert {"name", "price", "hs_sku", "description"} <= products
    # A bare GET answers the type's default set.
    company = create(sandbox_api, "companies", {**BODIES["companies"], "city": "Boston"})
    bare = sandbox_api.get(f"/crm/v3/objects/companies/{company['id']}").json()
    assert set(bare["properties"]) == {"createdate", "domain", "hs_lastmodifieddate", "hs_object_id", "name"}


@pytest.mark.parametrize(
    ("type_name", "label", "first_stage", "metadata"),
    [
        ("deals", "Sales Pipeline", "appointmentscheduled", {"isClosed": "false", "probability": "0.2"}),
        ("tickets", "Support Pipeline", "1", {"ticketState": "OPEN"}),
    ],
)
def test_default_pipelines_for_deals_and_tickets(
    sandbox_api: Any, type_name: str, label: str, first_stage: str, metadata: dict[str, str]
) -> None:
    response = sandbox_api.get(f"/crm/v3/pipelines/{type_name}")
    assert response.status_code == 200, response.text
    [pipeline] = response.json()["results"]
    assert pipeline["label"] == label
    assert pipeline["createdAt"].startswith("1970-01-01")  # "default pipelines will have createdAt = 0"
    assert pipeline["stages"][0]["id"] == first_stage
    assert pipeline["stages"][0]["metadata"] == metadata
    one = sandbox_api.get(f"/crm/v3/pipelines/{type_name}/{pipeline['id']}/stages")
    assert [s["id"] for s in one.json()["results"]] == [s["id"] for s in pipeline["stages"]]
    if type_name == "deals":
        closed = {s["id"]: s["metadata"]["isClosed"] for s in pipeline["stages"]}
        assert closed["closedwon"] == closed["closedlost"] == "true"


def test_the_standard_seed_leaves_the_commerce_seed_as_it_was() -> None:
    plain, with_standard = SandboxState(), SandboxState()
    now = 1_760_000_000_000
    for state in (plain, with_standard):
        seed(state, contacts=30, orders=60, carts=20, seed=5, now=now)
    counts = seed_standard(with_standard, companies=4, deals=6, seed=5, now=now)
    assert counts["companies"] == 4 and counts["deals"] == 6
    for type_name in ("contacts", "orders", "carts", "line_items"):
        a = {rid: (r.properties, r.created_ms, r.updated_ms) for rid, r in plain.records[type_name].items()}
        b = {
            rid: (r.properties, r.created_ms, r.updated_ms)
            for rid, r in with_standard.records[type_name].items()
        }
        assert a == b, type_name
    assert not plain.records["companies"]
    deal = next(iter(with_standard.records["deals"].values()))
    assert with_standard.associated("deals", deal.id, "contacts")
    for rec in [*with_standard.records["companies"].values(), *with_standard.records["deals"].values()]:
        assert rec.created_ms <= rec.updated_ms < now


SDK_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from hubspot import HubSpot
    from hubspot.crm.companies import SimplePublicObjectInputForCreate

    client = HubSpot(access_token=sys.argv[2], host=sys.argv[1])
    page = client.crm.companies.basic_api.get_page(limit=2, properties=["name", "domain"])
    made = client.crm.companies.basic_api.create(
        SimplePublicObjectInputForCreate(properties={"name": "SDK Co", "domain": "sdk.example.com"})
    )
    deals = client.crm.deals.basic_api.get_page(limit=10, associations=["companies"])
    pipelines = client.crm.pipelines.pipelines_api.get_all("deals")
    print(json.dumps({
        "names": [c.properties["name"] for c in page.results],
        "after": page.paging.next.after if page.paging else None,
        "made": [made.properties["name"], type(made.created_at).__name__],
        "deals": len(deals.results),
        "deal_companies": sum(1 for d in deals.results if d.associations and d.associations.get("companies")),
        "pipeline": [p.label for p in pipelines.results],
    }))
    """
)


@pytest.mark.sandbox(**STANDARD)
def test_the_official_sdk_reads_companies(sandbox: Any) -> None:
    out = run_sdk_script(SDK_SCRIPT, sandbox.url, sandbox.config.token)
    assert len(out["names"]) == 2 and all(out["names"])
    assert out["after"]  # three seeded companies: a second page
    assert out["made"] == ["SDK Co", "datetime"]
    assert out["deals"] == 4
    assert out["deal_companies"] >= 1
    assert out["pipeline"] == ["Sales Pipeline"]


def test_schemas_name_associations_as_the_v3_types_endpoint_does(sandbox_api: Any) -> None:
    schema = sandbox_api.get("/crm/v3/schemas/contacts").json()
    to_companies = {a["id"]: a["name"] for a in schema["associations"] if a["toObjectTypeId"] == "0-2"}
    types = sandbox_api.get("/crm/v3/associations/contacts/companies/types").json()["results"]
    assert (
        to_companies
        == {t["id"]: t["name"] for t in types}
        == {
            "279": "contact_to_company_unlabeled",
            "1": "contact_to_company",
        }
    )
