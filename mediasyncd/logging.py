"""The only place that configures structlog.

JSON lines when stdout is not a terminal (journald, pipes), console rendering on a TTY. Under systemd
(JOURNAL_STREAM set) each line starts with the `<N>` syslog priority journald understands, so that
`journalctl -p warning` filters work.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any, TextIO

import structlog

PRIORITY = {"critical": 2, "error": 3, "warning": 4, "info": 6, "debug": 7}
LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


def _journald_prefix(_: Any, method: str, event: str | bytes) -> str:
    text = event.decode() if isinstance(event, bytes) else event
    return f"<{PRIORITY.get(method, 6)}>{text}"


class _ForwardToStructlog(logging.Handler):
    """Route warnings from libraries that use stdlib logging (asyncssh, aiohttp) through structlog."""

    def emit(self, record: logging.LogRecord) -> None:
        log = structlog.get_logger(record.name)
        level = record.levelname.lower()
        getattr(log, level if level in LEVELS else "warning")(record.getMessage())


def configure_logging(level: str = "info", *, stream: TextIO | None = None, json: bool | None = None) -> None:
    out = stream or sys.stdout
    use_json = (not out.isatty()) if json is None else json
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]
    if use_json:
        processors += [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
        if os.environ.get("JOURNAL_STREAM"):
            processors.append(_journald_prefix)
    else:
        processors.append(structlog.dev.ConsoleRenderer())
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(LEVELS.get(level, logging.INFO)),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )
    root = logging.getLogger()
    root.handlers[:] = [_ForwardToStructlog()]
    root.setLevel(logging.WARNING)
