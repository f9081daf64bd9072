"""Settings: production mode is strict and passes Django's deployment checks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_manage(*args: str, env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    full_env = {
        k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "ORDERDECK_", "SECRET_KEY"))
    }
    full_env.update({"ORDERDECK_DATA_DIR": str(tmp_path), **env})
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
    )


PRODUCTION = {
    "ORDERDECK_MODE": "production",
    "SECRET_KEY": "x7#kq2!vT9zLr4@pWm8$eN3^bYc6&hJd1*sFg5(uA0)oXi-Q+Rt7Lm2Vz",
    "ALLOWED_HOSTS": "orders.shop.example",
    "DATABASE_URL": "postgres://orderdeck:secret@db.internal:5432/orderdeck",
    "CELERY_BROKER_URL": "redis://cache.internal:6379/0",
    "HUBSPOT_ACCESS_TOKEN": "pat-eu1-00000000-0000-0000-0000-000000000000",
    "HUBSPOT_CLIENT_SECRET": "0000aaaa-1111-bbbb-2222-cccc3333dddd",
}


def test_check_deploy_reports_nothing_with_production_settings(tmp_path: Path) -> None:
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION, tmp_path=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_production_refuses_to_start_without_a_secret_key(tmp_path: Path) -> None:
    env = {k: v for k, v in PRODUCTION.items() if k != "SECRET_KEY"}
    result = run_manage("check", env=env, tmp_path=tmp_path)
    assert result.returncode != 0
    assert "not set: SECRET_KEY" in result.stderr


def test_demo_mode_needs_no_server(tmp_path: Path) -> None:
    result = run_manage("check", env={}, tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    # The demo key is generated once per data folder and reused.
    assert (tmp_path / "demo-secret-key").read_text()
