"""The demo's mail server (`manage.py mailserver`) keeps what it receives; the Mailbox reads it back."""

from __future__ import annotations

import smtplib
import subprocess
import sys
import time
from email.message import EmailMessage
from pathlib import Path

import pytest

from carts.mailbox import Mailbox, MailServer, free_port
from tests.conftest import ROOT, wait_until


def _message(to: str, subject: str = "Hello") -> EmailMessage:
    message = EmailMessage()
    message["From"] = "shop@shop.example"
    message["To"] = to
    message["Subject"] = subject
    message.set_content("plain part: héllo")
    message.add_alternative("<p>html part: h&eacute;llo</p>", subtype="html")
    return message


def test_the_mailserver_command_stores_messages_the_mailbox_reads(tmp_path: Path) -> None:
    port = free_port()
    folder = tmp_path / "mailbox"
    process = subprocess.Popen(
        [sys.executable, "manage.py", "mailserver", "--port", str(port), "--dir", str(folder)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:

        def listening() -> bool:
            assert process.poll() is None, process.communicate()[0].decode(errors="replace")
            try:
                with smtplib.SMTP("127.0.0.1", port, timeout=2):
                    return True
            except OSError:
                return False

        wait_until(listening, timeout_s=60, interval_s=0.2)
        with smtplib.SMTP("127.0.0.1", port, timeout=5) as smtp:
            smtp.send_message(_message("first@customer.example", "First"))
            time.sleep(0.01)
            smtp.send_message(_message("second@customer.example", "Second"))
    finally:
        process.terminate()
        process.wait(timeout=20)
    assert process.returncode == 0

    mailbox = Mailbox(folder)
    messages = mailbox.list()
    assert [m.subject for m in messages] == ["Second", "First"], "newest first"
    first = mailbox.get(messages[1].id)
    assert first is not None
    assert first.to == ["first@customer.example"] and first.mail_from == "shop@shop.example"
    assert first.text.strip() == "plain part: héllo" and "html part" in first.html
    assert first.header("subject") == "First" and first.received_at.year >= 2024
    assert not any(name.lower().startswith("x-mailbox") for name, _ in first.headers)


@pytest.mark.parametrize("message_id", ["../secret", "a/b", "", "x" * 200, "..", "a\x00b"])
def test_the_mailbox_reads_only_its_own_files(tmp_path: Path, message_id: str) -> None:
    (tmp_path / "secret.eml").write_text("Subject: secret\r\n\r\nno")
    folder = tmp_path / "box"
    folder.mkdir()
    assert Mailbox(folder).get(message_id) is None


def test_refusals_on_request(tmp_path: Path) -> None:
    with MailServer(tmp_path) as server, smtplib.SMTP("127.0.0.1", server.port, timeout=5) as smtp:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as permanent:
            smtp.send_message(_message("reject-5xx@customer.example"))
        assert permanent.value.recipients["reject-5xx@customer.example"][0] == 550
        with pytest.raises(smtplib.SMTPRecipientsRefused) as temporary:
            smtp.send_message(_message("reject-4xx@customer.example"))
        assert temporary.value.recipients["reject-4xx@customer.example"][0] == 451
    assert Mailbox(tmp_path).count() == 0
