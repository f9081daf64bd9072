"""`manage.py demo` starts the product, serves the login page, accepts the demo login, and Ctrl-C leaves
no process behind."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import ROOT, wait_until

pytestmark = pytest.mark.worker


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def descendants(pid: int) -> set[int]:
    """Every live process whose parent chain leads to pid."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found: set[int] = set()
    stack = [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.parametrize("with_sandbox", [False, True], ids=["no-sandbox", "with-sandbox"])
def test_demo_serves_login_and_ctrl_c_stops_everything(tmp_path: Path, with_sandbox: bool) -> None:
    if with_sandbox and not (ROOT / "hubspot_sync" / "management" / "commands" / "sandbox.py").exists():
        pytest.fail("the sandbox command is missing")
    port, sandbox_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "CELERY_BROKER_URL"}}
    env.update({"ORDERDECK_DATA_DIR": str(tmp_path), "PYTHONUNBUFFERED": "1", "ORDERDECK_QUEUE": "demo-test"})
    args = [
        sys.executable,
        "manage.py",
        "demo",
        "--port",
        str(port),
        "--sandbox-port",
        str(sandbox_port),
        "--orders",
        "40",
        "--live",
        "0",
    ]
    if not with_sandbox:
        args.append("--no-sandbox")
    log = (tmp_path / "demo.log").open("w+")
    demo = subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: "OrderDeck is running at" in (tmp_path / "demo.log").read_text(), timeout_s=120)
        output = (tmp_path / "demo.log").read_text()
        url = re.search(r"running at (\S+)", output).group(1)  # type: ignore[union-attr]
        assert url == f"http://127.0.0.1:{port}/"
        assert "demo" in output and "orderdeck-demo" in output

        session = requests.Session()
        login = session.get(url + "login/", timeout=10)
        assert login.status_code == 200
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text).group(1)  # type: ignore[union-attr]
        signed_in = session.post(
            url + "login/",
            data={"username": "demo", "password": "orderdeck-demo", "csrfmiddlewaretoken": token},
            headers={"Referer": url + "login/"},
            timeout=10,
        )
        assert signed_in.status_code == 200
        # The boards open on the first pipeline's board (or say there is none yet, without a sandbox).
        assert re.search(r"/boards/(\d+/)?$", signed_in.url), signed_in.url
        assert ">Sync</a>" in signed_in.text
        if with_sandbox:
            listed = requests.get(
                f"http://127.0.0.1:{sandbox_port}/crm/v3/objects/orders?limit=5",
                headers={"Authorization": "Bearer demo-sandbox-token"},
                timeout=10,
            )
            assert listed.status_code == 200
            assert len(listed.json()["results"]) == 5
            # The demo synced the sandbox into its own cache before printing the URL.
            assert "Synced from the sandbox" in output
            assert "Succeeded" in session.get(url + "sync/", timeout=10).text

        started = descendants(demo.pid)
        assert len(started) >= 3  # worker (and its pool), beat, web (and the sandbox)
    finally:
        demo.send_signal(signal.SIGINT)
        try:
            demo.wait(timeout=60)
        except subprocess.TimeoutExpired:
            demo.kill()
            raise
    time.sleep(0.5)
    left = [pid for pid in started if alive(pid)]
    assert left == [], f"processes left running after Ctrl-C: {left}\n{(tmp_path / 'demo.log').read_text()}"


def start_demo(
    tmp_path: Path, port: int, sandbox_port: int, log_name: str
) -> tuple[subprocess.Popen[bytes], Path]:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "CELERY_BROKER_URL"}}
    env.update({"ORDERDECK_DATA_DIR": str(tmp_path), "PYTHONUNBUFFERED": "1", "ORDERDECK_QUEUE": "demo-test"})
    args = [sys.executable, "manage.py", "demo", "--port", str(port), "--sandbox-port", str(sandbox_port)]
    args += ["--orders", "30", "--live", "0"]
    log_path = tmp_path / log_name
    log = log_path.open("w+")
    demo = subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    wait_until(
        lambda: "OrderDeck is running at" in log_path.read_text() or demo.poll() is not None, timeout_s=120
    )
    assert demo.poll() is None, log_path.read_text()
    return demo, log_path


def stop_demo(demo: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    demo.send_signal(sig)
    try:
        demo.wait(timeout=60)
    except subprocess.TimeoutExpired:
        demo.kill()
        raise


def signed_in(url: str) -> requests.Session:
    session = requests.Session()
    login = session.get(url + "login/", timeout=10)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text).group(1)  # type: ignore[union-attr]
    session.post(
        url + "login/",
        data={"username": "demo", "password": "orderdeck-demo", "csrfmiddlewaretoken": token},
        headers={"Referer": url + "login/"},
        timeout=10,
    )
    return session


def test_sigterm_saves_the_snapshot_and_a_reseeded_sandbox_is_reported(tmp_path: Path) -> None:
    port, sandbox_port = free_port(), free_port()
    snapshot = tmp_path / "sandbox-snapshot.json.gz"

    demo, log = start_demo(tmp_path, port, sandbox_port, "first.log")
    try:
        assert "Synced from the sandbox" in log.read_text()
    finally:
        stop_demo(demo, signal.SIGTERM)
    # The demo stops the sandbox with SIGTERM: the snapshot its console line promises is written.
    assert snapshot.exists(), log.read_text()
    assert (tmp_path / "hubspot-portal.json").exists()

    # Without its snapshot the sandbox seeds afresh: other records than the ones the cache holds.
    snapshot.unlink()
    demo, log = start_demo(tmp_path, port, sandbox_port, "second.log")
    try:
        output = log.read_text()
        assert "The local cache does not match HubSpot" in output and "Full resync" in output
        assert "Synced from the sandbox" not in output  # no incremental read mixing the two portals
        page = signed_in(f"http://127.0.0.1:{port}/").get(f"http://127.0.0.1:{port}/sync/", timeout=10).text
        assert 'id="portal-mismatch"' in page and 'value="full"' in page
    finally:
        stop_demo(demo, signal.SIGINT)
