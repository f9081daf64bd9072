"""The demo's local mail server and its reader.

``MailServer`` is a real SMTP server (aiosmtpd) that keeps every message it is given as an .eml file in a
folder; ``Mailbox`` reads that folder for the Mailbox page and the tests. It relays nothing: mail sent to it
never leaves the machine. A recipient address containing ``reject-5xx`` or ``reject-4xx`` is refused with
550 or 451, so the demo and the tests can show how permanent and temporary refusals are handled.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import logging
import os
import re
import tempfile
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

MESSAGE_ID = re.compile(r"^[A-Za-z0-9._-]{1,120}$")
# Refuse messages bigger than this (the server says so in EHLO: SIZE).
MAX_MESSAGE_BYTES = 10 * 1024 * 1024


class _Handler:
    def __init__(self, folder: Path, delay_s: float) -> None:
        self.folder = folder
        self.delay_s = delay_s

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if "reject-5xx" in address.lower():
            return "550 5.1.1 Mailbox unavailable (the demo mail server refuses this address)"
        if "reject-4xx" in address.lower():
            return "451 4.3.0 Try again later (the demo mail server defers this address)"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        received = datetime.now(UTC)
        # Sortable by name: time first, then a random part so two messages in one microsecond differ.
        name = f"{received:%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:12]}"
        header = (
            f"X-Mailbox-From: {envelope.mail_from}\r\n"
            f"X-Mailbox-To: {', '.join(envelope.rcpt_tos)}\r\n"
            f"X-Mailbox-Received: {received.isoformat()}\r\n"
        ).encode()
        # Written whole, then renamed: a reader never sees half a message.
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".incoming-", suffix=".tmp")
        with os.fdopen(fd, "wb") as out:
            out.write(header + content)
        os.replace(tmp, self.folder / f"{name}.eml")
        if self.delay_s:
            # A slow server: the message is kept before the client hears it was accepted.
            await asyncio.sleep(self.delay_s)
        return "250 Message accepted for delivery"


class MailServer:
    """An SMTP server on ``host:port`` (0 picks a free port) storing what it receives in ``folder``;
    ``delay_s`` holds each accepted message's answer back that long (tests of a worker killed mid-send)."""

    def __init__(
        self, folder: Path | str, host: str = "127.0.0.1", port: int = 0, delay_s: float = 0
    ) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        # aiosmtpd logs every connection at INFO.
        logging.getLogger("mail.log").setLevel(logging.WARNING)
        if port == 0:
            port = free_port(host)
        self.host = host
        self.port = port
        self._controller = Controller(
            _Handler(self.folder, delay_s),
            hostname=host,
            port=port,
            data_size_limit=MAX_MESSAGE_BYTES,
            server_hostname="orderdeck-mailbox.local",
            # aiosmtpd gives its server thread 5 s to start by default; a busy machine can take longer.
            ready_timeout=30.0,
        )

    def start(self) -> None:
        self._controller.start()
        self._running = True

    def stop(self) -> None:
        if getattr(self, "_running", False):
            self._controller.stop()
            self._running = False

    def __enter__(self) -> MailServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def free_port(host: str = "127.0.0.1") -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass
class MailMessage:
    """One message the mail server received."""

    id: str
    received_at: datetime
    mail_from: str
    to: list[str]
    subject: str
    text: str
    html: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    raw: bytes = b""

    def header(self, name: str) -> str:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return ""


def _part(message: EmailMessage, subtype: str) -> str:
    part = message.get_body(preferencelist=(subtype,))
    if part is None or part.get_content_subtype() != subtype:
        return ""
    try:
        return str(part.get_content())
    except (LookupError, UnicodeError):
        payload: Any = part.get_payload(decode=True) or b""
        return bytes(payload).decode("utf-8", errors="replace")


def parse_message(message_id: str, raw: bytes) -> MailMessage:
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    received_text = str(parsed.get("X-Mailbox-Received", ""))
    try:
        received = datetime.fromisoformat(received_text)
    except ValueError:
        received = datetime.fromtimestamp(0, UTC)
    to = [a.strip() for a in str(parsed.get("X-Mailbox-To", "")).split(",") if a.strip()]
    headers = [(k, str(v).strip()) for k, v in parsed.items() if not k.lower().startswith("x-mailbox-")]
    return MailMessage(
        id=message_id,
        received_at=received,
        mail_from=str(parsed.get("X-Mailbox-From", "")),
        to=to,
        subject=str(parsed.get("Subject", "")),
        text=_part(parsed, "plain"),
        html=_part(parsed, "html"),
        headers=headers,
        raw=raw,
    )


class Mailbox:
    """Reads the messages a ``MailServer`` stored in ``folder``."""

    def __init__(self, folder: Path | str) -> None:
        self.folder = Path(folder)

    def ids(self) -> list[str]:
        """Message ids, newest first."""
        if not self.folder.is_dir():
            return []
        return sorted((p.stem for p in self.folder.glob("*.eml")), reverse=True)

    def list(self, limit: int | None = None) -> list[MailMessage]:
        """The messages, newest first (all of them, or the newest ``limit``)."""
        found: list[MailMessage] = []
        for message_id in self.ids()[:limit]:
            message = self.get(message_id)
            if message is not None:
                found.append(message)
        return found

    def get(self, message_id: str) -> MailMessage | None:
        if not MESSAGE_ID.match(message_id):
            return None
        path = self.folder / f"{message_id}.eml"
        try:
            raw = path.read_bytes()
        except (FileNotFoundError, IsADirectoryError, PermissionError):
            return None
        return parse_message(message_id, raw)

    def count(self) -> int:
        return len(self.ids())

    def clear(self) -> None:
        for path in self.folder.glob("*.eml"):
            path.unlink(missing_ok=True)
