"""A small mail interface; the default backend writes a log line instead of sending."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Protocol

logger = logging.getLogger("reference_app.mail")


class MailBackend(Protocol):
    async def send(self, to: str, subject: str, body: str) -> None: ...


class LoggingMailBackend:
    async def send(self, to: str, subject: str, body: str) -> None:
        logger.info("mail sent", extra={"mail_to": to, "mail_subject": subject})


@dataclass
class RecordingMailBackend:
    """Keeps what was sent; for tests and demos."""

    sent: list[tuple[str, str, str]] = field(default_factory=list)

    async def send(self, to: str, subject: str, body: str) -> None:
        self.sent.append((to, subject, body))


async def send_welcome_email(mailer: MailBackend, email: str, full_name: str | None) -> None:
    """Runs as a FastAPI background task, after the response (and so after the commit)."""
    greeting = f"Hello {full_name}," if full_name else "Hello,"
    await mailer.send(email, "Welcome to the Core Concepts Kit", f"{greeting}\n\nWelcome aboard.")
