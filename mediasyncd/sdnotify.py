"""systemd's notify protocol (sd_notify): READY, RELOADING, STOPPING, STATUS and WATCHDOG datagrams."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping


class Notifier:
    """Sends datagrams to $NOTIFY_SOCKET; does nothing when not started by systemd."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        addr = env.get("NOTIFY_SOCKET", "")
        self._addr: str | None = ("\0" + addr[1:]) if addr.startswith("@") else (addr or None)
        self._sock: socket.socket | None = None
        if self._addr:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        usec = env.get("WATCHDOG_USEC")
        pid = env.get("WATCHDOG_PID")
        self.watchdog_usec = (
            int(usec) if usec and usec.isdigit() and (not pid or pid == str(os.getpid())) else 0
        )

    @property
    def enabled(self) -> bool:
        return self._sock is not None

    def send(self, *fields: str) -> None:
        if self._sock is None or self._addr is None:
            return
        try:
            self._sock.sendto("\n".join(fields).encode(), self._addr)
        except OSError:
            pass  # systemd went away; nothing useful to do

    def ready(self, status: str) -> None:
        self.send("READY=1", f"STATUS={status}")

    def reloading(self) -> None:
        self.send("RELOADING=1", "STATUS=reloading configuration")

    def stopping(self) -> None:
        self.send("STOPPING=1", "STATUS=stopping")

    def status(self, text: str) -> None:
        self.send(f"STATUS={text}")

    def watchdog(self) -> None:
        self.send("WATCHDOG=1")

    @property
    def watchdog_interval(self) -> float | None:
        """Seconds between heartbeats: half the watchdog timeout, or None when there is none."""
        return self.watchdog_usec / 2e6 if self.watchdog_usec else None

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
