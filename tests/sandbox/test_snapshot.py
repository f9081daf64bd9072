"""Snapshots: the whole state to one file and back, atomically."""

from __future__ import annotations

import gzip
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from hubspot_sandbox import objects, snapshot
from hubspot_sandbox.defaults import DEFAULT_ORDER_PIPELINE_ID, install_defaults
from hubspot_sandbox.http import HubSpotError
from hubspot_sandbox.seed import seed
from hubspot_sandbox.server import Sandbox, SandboxConfig
from hubspot_sandbox.state import SandboxState
from hubspot_sandbox.testing import SandboxSession
from tests.conftest import ROOT


def busy_state() -> SandboxState:
    """A state with something in every part: records with history, archived ones, labels, custom
    properties and groups, a changed pipeline with audit entries, write traces."""
    state = SandboxState(portal_id=4242)
    install_defaults(state)
    seed(state, contacts=10, orders=25, carts=10, now=1_760_000_000_000)
    order = next(iter(state.records["orders"]))
    objects.update_record(state, "orders", order, {"hs_fulfillment_status": "Returned", "hs_tags": "snap"})
    objects.create_record(state, "orders", {"hs_order_name": "#traced"}, trace_id="trace-1")
    doomed = objects.create_record(state, "carts", {"hs_cart_name": "gone"})
    objects.archive_record(state, "carts", doomed.id)
    state.association_labels[("orders", "contacts")] = {9001: "Gift recipient"}
    state.property_groups["orders"]["gifting"] = {
        "name": "gifting",
        "label": "Gifting",
        "displayOrder": 1,
        "archived": False,
    }
    pipeline = state.pipelines["orders"][DEFAULT_ORDER_PIPELINE_ID]
    pipeline["label"] = "Renamed"
    state.pipeline_audit[("orders", DEFAULT_ORDER_PIPELINE_ID)] = [
        {
            "portalId": 4242,
            "identifier": f"4242:{DEFAULT_ORDER_PIPELINE_ID}",
            "action": "UPDATE",
            "timestamp": "x",
        }
    ]
    return state


def comparable(state: SandboxState) -> dict[str, Any]:
    return {
        "portal": state.portal_id,
        "records": {
            t: {
                rid: (r.properties, r.created_ms, r.updated_ms, r.archived, r.archived_ms, r.history)
                for rid, r in records.items()
            }
            for t, records in state.records.items()
        },
        "associations": state.associations,
        "labels": state.association_labels,
        "properties": state.properties,
        "groups": state.property_groups,
        "pipelines": state.pipelines,
        "audit": state.pipeline_audit,
        "traces": state.write_traces,
    }


def test_round_trip_restores_everything(tmp_path: Path) -> None:
    state = busy_state()
    path = tmp_path / "sandbox.json.gz"
    snapshot.save(state, path)
    restored = SandboxState()
    assert snapshot.load(restored, path) is True
    assert comparable(restored) == comparable(state)
    # history entries are tuples again, as objects.py writes them
    order = next(iter(restored.records["orders"].values()))
    assert all(isinstance(entry, tuple) for entries in order.history.values() for entry in entries)


def test_the_file_is_gzip_json_lines(tmp_path: Path) -> None:
    path = tmp_path / "s.gz"
    snapshot.save(busy_state(), path)
    with gzip.open(path, "rt") as lines:
        header = lines.readline()
    assert '"format":"orderdeck-hubspot-sandbox"' in header


def test_new_ids_continue_after_the_saved_ones(tmp_path: Path) -> None:
    state = busy_state()
    path = tmp_path / "s.gz"
    snapshot.save(state, path)
    restored = SandboxState()
    snapshot.load(restored, path)
    for type_name, records in state.records.items():
        if not records:
            continue  # a standard type nobody wrote to
        highest = max(int(i) for i in records)
        assert int(restored.next_id(type_name)) > highest


def test_restored_records_work_with_the_api_rules(tmp_path: Path) -> None:
    state = busy_state()
    path = tmp_path / "s.gz"
    snapshot.save(state, path)
    # A state with as many orders but other values, whose unique-value index objects.py has built:
    # loading must not leave that index describing the old records.
    restored = SandboxState()
    install_defaults(restored)
    seed(restored, contacts=10, orders=25, carts=10, seed=99, now=1_700_000_000_000)
    objects.create_record(restored, "orders", {"hs_order_name": "#other", "hs_external_order_id": "X-1"})
    orders = objects.object_type("orders")
    assert objects.find_record(restored, orders, "X-1", id_property="hs_external_order_id") is not None
    assert len(restored.records["orders"]) == len(state.records["orders"])
    snapshot.load(restored, path)
    assert objects.find_record(restored, orders, "X-1", id_property="hs_external_order_id") is None
    first, second = list(restored.records["orders"].values())[:2]
    external_id = first.properties["hs_external_order_id"]
    found = objects.find_record(restored, orders, external_id, id_property="hs_external_order_id")
    assert found is not None and found.id == first.id
    with pytest.raises(HubSpotError):
        objects.update_record(restored, "orders", second.id, {"hs_external_order_id": external_id})


def test_missing_file_loads_nothing(tmp_path: Path) -> None:
    state = SandboxState()
    assert snapshot.load(state, tmp_path / "none.gz") is False
    assert all(not records for records in state.records.values())


def test_an_unreadable_file_is_moved_aside_not_lost(tmp_path: Path) -> None:
    path = tmp_path / "s.gz"
    path.write_bytes(b"not gzip at all")
    state = SandboxState()
    assert snapshot.load(state, path) is False
    assert not path.exists()
    aside = list(tmp_path.glob("s.gz.unreadable-*"))
    assert len(aside) == 1 and aside[0].read_bytes() == b"not gzip at all"


def test_another_format_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.gz"
    with gzip.open(path, "wt") as f:
        f.write('{"format": "something-else", "version": 1}\n')
    assert snapshot.load(SandboxState(), path) is False


def test_save_replaces_atomically_and_leaves_no_temporary_files(tmp_path: Path) -> None:
    path = tmp_path / "s.gz"
    snapshot.save(busy_state(), path)
    before = path.read_bytes()
    state = busy_state()
    state.records["orders"]["broken"] = object()  # type: ignore[assignment]
    with pytest.raises(AttributeError):
        snapshot.save(state, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["s.gz"]
    snapshot.save(busy_state(), path)
    assert [p.name for p in tmp_path.iterdir()] == ["s.gz"]


def test_the_sandbox_keeps_its_data_between_runs(tmp_path: Path) -> None:
    path = str(tmp_path / "demo.json.gz")
    first = Sandbox(SandboxConfig(snapshot_path=path, seed_contacts=3, seed_orders=5, seed_carts=2))
    first.start()
    with SandboxSession(first.url, first.config.token) as api:
        created = api.post("/crm/v3/objects/orders", json={"properties": {"hs_order_name": "#kept"}}).json()
        api.post("/crm/v3/pipelines/orders", json={"label": "Kept", "displayOrder": 9, "stages": [
            {"label": "Only", "displayOrder": 0, "metadata": {"state": "OPEN"}}]})  # fmt: skip
    first.stop()
    assert Path(path).exists()

    second = Sandbox(SandboxConfig(snapshot_path=path, seed_contacts=3, seed_orders=5, seed_carts=2))
    second.start()
    try:
        with SandboxSession(second.url, second.config.token) as api:
            order = api.get(f"/crm/v3/objects/orders/{created['id']}", params={"properties": "hs_order_name"})
            assert order.json()["properties"]["hs_order_name"] == "#kept"
            assert "Kept" in [p["label"] for p in api.get("/crm/v3/pipelines/orders").json()["results"]]
            # Loaded, not seeded again on top.
            assert len(api.get("/crm/v3/objects/orders", params={"limit": 100}).json()["results"]) == 6
    finally:
        second.stop(save_snapshot=False)


def test_a_snapshot_from_before_the_standard_objects_keeps_their_definitions(tmp_path: Path) -> None:
    state = SandboxState()
    install_defaults(state)
    path = tmp_path / "old.gz"
    snapshot.save(state, path)
    # Rewrite it as a sandbox that served only the four commerce types would have saved it.
    commerce = {"contacts", "orders", "carts", "line_items"}
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        items = [json.loads(line) for line in lines]
    for item in items:
        if item.get("k") in {"properties", "groups", "pipelines"}:
            item["v"] = {name: value for name, value in item["v"].items() if name in commerce}
    with gzip.open(path, "wt", encoding="utf-8") as out:
        out.writelines(json.dumps(item) + "\n" for item in items)
    restored = SandboxState()
    install_defaults(restored)
    assert snapshot.load(restored, path)
    assert restored.pipelines["deals"]["default"]["label"] == "Sales Pipeline"
    assert "name" in restored.properties["companies"]
    assert restored.pipelines["orders"] == state.pipelines["orders"]


def test_sigterm_stops_the_sandbox_command_and_saves_the_snapshot(tmp_path: Path) -> None:
    # The demo (and any process manager) stops the sandbox with SIGTERM; it used to die without saving.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    path = tmp_path / "snapshot.json.gz"
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "CELERY_BROKER_URL"}}
    env.update({"ORDERDECK_DATA_DIR": str(tmp_path), "PYTHONUNBUFFERED": "1"})
    log = (tmp_path / "sandbox.log").open("w+")
    command = [sys.executable, "manage.py", "sandbox", "--port", str(port), "--snapshot", str(path)]
    command += ["--contacts", "5", "--orders", "8", "--carts", "3"]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while "HubSpot sandbox at" not in (tmp_path / "sandbox.log").read_text():
            assert process.poll() is None and time.monotonic() < deadline, (
                tmp_path / "sandbox.log"
            ).read_text()
            time.sleep(0.1)
        assert not path.exists()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0, (tmp_path / "sandbox.log").read_text()
    finally:
        if process.poll() is None:
            process.kill()
    restored = SandboxState()
    assert snapshot.load(restored, path)
    assert len(restored.records["orders"]) == 8
