"""The cache notices when HubSpot is not the portal it was filled from (a reseeded sandbox, another portal),
says so on the Sync page and every page's banner with a "Full resync" button, and a full sync ends it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from hubspot_sandbox.server import Sandbox
from hubspot_sandbox.testing import start_sandbox
from hubspot_sync import portal_check
from hubspot_sync.models import SyncKind, SyncRun, SyncStatus

pytestmark = pytest.mark.django_db


@pytest.fixture
def data_dir(settings: Any, tmp_path: Path) -> Path:
    settings.DATA_DIR = tmp_path
    return tmp_path


@pytest.fixture
def other_sandbox(hubspot_sandbox: Sandbox) -> Iterator[Sandbox]:
    """The same portal started again without its snapshot: seeded afresh (other records, same ids)."""
    other = start_sandbox(seed=2, token=hubspot_sandbox.config.token)
    try:
        yield other
    finally:
        other.stop(save_snapshot=False)


def test_the_same_sandbox_matches(hubspot_sandbox: Sandbox, data_dir: Path) -> None:
    assert portal_check.check_at_start() is None  # nothing written down yet: nothing to compare
    portal_check.remember_if_new()
    stored = portal_check.Fingerprint.from_json(portal_check._load()["fingerprint"])
    assert stored is not None and stored.portal_id == hubspot_sandbox.config.portal_id
    assert [len(v) for v in stored.samples.values()] == [3, 3]
    assert portal_check.check_at_start() is None
    assert portal_check.mismatch() is None


def test_a_reseeded_sandbox_is_found_shown_and_ended_by_a_full_sync(
    hubspot_sandbox: Sandbox, other_sandbox: Sandbox, data_dir: Path, settings: Any, support_client: Any
) -> None:
    portal_check.remember_if_new()
    settings.HUBSPOT_API_BASE = other_sandbox.url

    found = portal_check.check_at_start()

    assert found is not None
    assert "reset or reseeded" in found.reason
    assert portal_check.mismatch() is not None  # kept for the pages
    page = support_client.get("/sync/").content.decode()
    section = re.search(r'<section[^>]*id="portal-mismatch".*?</section>', page, re.S)
    assert section is not None, page
    assert "does not match HubSpot" in section.group(0)
    assert 'name="kind" value="full"' in section.group(0) and "Full resync" in section.group(0)
    assert "csrfmiddlewaretoken" in section.group(0)
    assert page.count("does not match HubSpot") >= 2  # the page's section and the banner

    # An incremental sync does not end it; a full one does.
    SyncRun.objects.create(
        kind=SyncKind.INCREMENTAL,
        object_types="orders",
        status=SyncStatus.SUCCEEDED,
        finished_at=timezone.now(),
    )
    assert portal_check.mismatch() is not None
    SyncRun.objects.create(
        kind=SyncKind.FULL, object_types="orders", status=SyncStatus.SUCCEEDED, finished_at=timezone.now()
    )
    assert portal_check.mismatch() is None
    assert "does not match HubSpot" not in support_client.get("/sync/").content.decode()
    # The next start writes down the portal the full sync read: it matches from now on.
    assert portal_check.check_at_start() is None
    assert portal_check.check_at_start() is None
    assert portal_check.mismatch() is None


def test_another_portal_is_found_by_its_id(hubspot_sandbox: Sandbox, data_dir: Path, settings: Any) -> None:
    portal_check.remember_if_new()
    other = start_sandbox(portal_id=99_001, token=hubspot_sandbox.config.token)
    try:
        settings.HUBSPOT_API_BASE = other.url
        found = portal_check.check_at_start()
    finally:
        other.stop(save_snapshot=False)
    assert found is not None and "portal 99001" in found.reason


def test_records_deleted_since_are_no_mismatch(
    hubspot_sandbox: Sandbox, data_dir: Path, sandbox_api: Any
) -> None:
    stored = portal_check.remember()
    first_order = stored.samples["orders"][0][0]
    assert sandbox_api.delete(f"/crm/v3/objects/orders/{first_order}").status_code == 204
    assert portal_check.check_at_start() is None


def test_hubspot_errors_skip_the_check(data_dir: Path, settings: Any, hubspot_sandbox: Sandbox) -> None:
    portal_check.remember_if_new()
    settings.HUBSPOT_ACCESS_TOKEN = "wrong-token"
    assert portal_check.check_at_start() is None
    assert portal_check.mismatch() is None


@pytest.mark.django_db(transaction=True)
def test_a_real_full_resync_ends_the_finding(
    hubspot_sandbox: Sandbox, other_sandbox: Sandbox, data_dir: Path, settings: Any
) -> None:
    from hubspot_sync import sync

    settings.HUBSPOT_SYNC_LOOKBACK_S = 0
    settings.HUBSPOT_SEARCH_LAG_S = 0
    assert sync.run_sync(SyncKind.FULL, manual=True).status == SyncStatus.SUCCEEDED
    portal_check.remember_if_new()
    settings.HUBSPOT_API_BASE = other_sandbox.url
    assert portal_check.check_at_start() is not None

    assert sync.run_sync(SyncKind.FULL, manual=True).status == SyncStatus.SUCCEEDED

    assert portal_check.mismatch() is None
    assert portal_check.check_at_start() is None  # the resynced portal is the cache's now
    stored = portal_check.Fingerprint.from_json(portal_check._load()["fingerprint"])
    assert stored == portal_check.current()
