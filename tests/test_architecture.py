"""Which way imports go (README: make lint): the integration imports no domain app, the sandbox stands alone,
and what is specific to a type registers with the integration from its app."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hubspot_sandbox.state import DEFAULT_ASSOCIATION_TYPES as SANDBOX_ASSOCIATION_TYPES
from hubspot_sync import registry
from hubspot_sync.constants import DEFAULT_ASSOCIATION_TYPES

ROOT = Path(__file__).resolve().parent.parent
DOMAIN_APPS = {"orders", "carts", "pipelines"}


def _modules(path: Path) -> set[str]:
    """Modules a file imports, anywhere in it (functions and TYPE_CHECKING blocks too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
    return found


def _imported(path: Path) -> set[str]:
    """Top-level packages a file imports."""
    return {name.split(".")[0] for name in _modules(path)}


def test_no_module_of_the_integration_imports_a_domain_app() -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(_imported(path) & DOMAIN_APPS)
        for path in (ROOT / "hubspot_sync").rglob("*.py")
        if _imported(path) & DOMAIN_APPS
    }
    assert offenders == {}


def test_the_sandbox_imports_neither_django_nor_the_project() -> None:
    project = {"django", "hubspot_sync", "config", *DOMAIN_APPS}
    offenders = {
        str(path.relative_to(ROOT)): sorted(bad)
        for path in (ROOT / "hubspot_sandbox").rglob("*.py")
        if (
            bad := {
                name
                for name in _modules(path)
                if name.split(".")[0] in project and not name.startswith("hubspot_sandbox")
            }
        )
    }
    assert offenders == {}


def test_the_sandbox_knows_the_integrations_association_types() -> None:
    """The sandbox keeps its own copy of HubSpot's commerce association ids; they must agree."""
    assert {k: SANDBOX_ASSOCIATION_TYPES[k] for k in DEFAULT_ASSOCIATION_TYPES} == DEFAULT_ASSOCIATION_TYPES


def test_the_pipelines_app_registers_its_sync_push_and_changes() -> None:
    assert registry.definitions("pipelines") is not None
    assert registry.push_operation("pipelines") is not None
    deletes = registry.push_operation("deletes")
    assert deletes is not None and deletes.must_wait is not None
    assert registry.owned_object_types() == {"pipelines", "stages"}
    assert registry.object_type_of_model("pipelines.Stage") == "stages"
    orders = registry.get("orders")
    assert orders.definitions == ("pipelines",) and orders.after_definitions and orders.names_unknown
    assert {spec.name for spec in registry.all_types() if spec.copies_contact} == {"orders", "carts"}


@pytest.mark.skipif(
    shutil.which("lint-imports", path=str(Path(sys.executable).parent)) is None, reason="no import-linter"
)
def test_the_import_contracts_hold() -> None:
    tool = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert tool is not None
    result = subprocess.run([tool], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "0 broken" in result.stdout


def test_the_integration_keeps_its_app_label_and_tables() -> None:
    """Renamed to leave ``hubspot`` to HubSpot's SDK, the integration kept its label: existing databases
    (tables, migration history, content types, admin URLs) carry over without a migration."""
    from django.apps import apps
    from django.db.migrations.loader import MigrationLoader

    from hubspot_sync.models import Change, Contact, SyncRun

    config = apps.get_app_config("hubspot")
    assert config.name == "hubspot_sync"
    assert {model._meta.db_table for model in (Change, Contact, SyncRun)} == {
        "hubspot_change",
        "hubspot_contact",
        "hubspot_syncrun",
    }
    loader = MigrationLoader(None, ignore_no_migrations=True)
    assert ("hubspot", "0001_initial") in loader.disk_migrations
