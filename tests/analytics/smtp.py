"""A real local SMTP server for the tests of e-mail (aiosmtpd), and what it received."""

from __future__ import annotations

import socket
from typing import Any


class Inbox:
    """What a local aiosmtpd server received: the envelope of each message."""

    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope)
        return "250 OK"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port
