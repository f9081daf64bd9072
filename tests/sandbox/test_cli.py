"""``python -m hubspot_sandbox``: the emulator on its own, with every option ``manage.py sandbox`` has."""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from hubspot_sandbox import cli
from hubspot_sync.management.commands.sandbox import Command


def _options(parser: argparse.ArgumentParser) -> set[str]:
    return {option for action in parser._actions for option in action.option_strings}


def test_the_command_and_the_module_take_the_same_options() -> None:
    standalone = argparse.ArgumentParser()
    cli.add_arguments(standalone, port=1, token="t", webhook_secret="s")
    command = Command().create_parser("manage.py", "sandbox")
    assert _options(standalone) - {"-h", "--help"} <= _options(command)
    assert {"--port", "--token", "--storm", "--companies", "--deals", "--snapshot", "--live"} <= _options(
        standalone
    )


def test_a_bad_storm_is_a_clear_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        cli.main(["--storm", "often"])
    assert stopped.value.code == 2
    assert "--storm takes PERIOD:DURATION" in capsys.readouterr().err


def _environment(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO", "HUBSPOT", "SANDBOX"))}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def test_help_runs_outside_the_project(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "hubspot_sandbox", "--help"],
        cwd=tmp_path,
        env=_environment(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "python -m hubspot_sandbox" in done.stdout and "--webhook-url" in done.stdout


def test_the_module_serves_the_api_and_stops_on_sigterm(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    log_path = tmp_path / "sandbox.log"
    command = [sys.executable, "-X", "importtime", "-m", "hubspot_sandbox", "--port", str(port)]
    command += ["--token", "own-token", "--contacts", "4", "--orders", "7", "--carts", "2"]
    with log_path.open("w+") as log:
        process = subprocess.Popen(
            command, cwd=tmp_path, env=_environment(tmp_path), stdout=log, stderr=subprocess.STDOUT
        )
        try:
            deadline = time.monotonic() + 60
            while "HubSpot sandbox at" not in log_path.read_text():
                assert process.poll() is None and time.monotonic() < deadline, log_path.read_text()
                time.sleep(0.1)
            url = f"http://127.0.0.1:{port}/crm/v3/objects/orders?limit=100"
            listed = requests.get(url, headers={"Authorization": "Bearer own-token"}, timeout=10)
            assert listed.status_code == 200
            assert len(listed.json()["results"]) == 7
            refused = requests.get(url, headers={"Authorization": "Bearer other"}, timeout=10)
            assert refused.status_code == 401
            assert refused.json()["category"] == "INVALID_AUTHENTICATION"
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=30) == 0, log_path.read_text()
        finally:
            if process.poll() is None:
                process.kill()
    # -X importtime lists every module the process imported: the emulator needs no Django.
    imported = log_path.read_text()
    assert "hubspot_sandbox.server" in imported
    assert " django" not in imported and "hubspot_sync" not in imported
