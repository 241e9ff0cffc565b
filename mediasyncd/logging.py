"""The only place that configures structlog.

Log lines go to stderr (command output owns stdout). `--log-format auto` (the default) renders for a
person on a terminal and as JSON lines otherwise (journald, pipes, files). Under systemd (JOURNAL_STREAM
set) each JSON line starts with the `<N>` syslog priority journald understands, so that `journalctl -p
warning` filters work.

Two kinds of lines are for one audience only. A per-file line (`detail=True`: "landed" for each file) is
what a journal keeps as the audit trail, but on a terminal it is noise: there it shows only at debug. A
summary line (`summary=True`: "landed batch") restates per-file lines for a person, so JSON output drops it.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import MutableMapping
from typing import Any, Literal, TextIO

import structlog

PRIORITY = {"critical": 2, "error": 3, "warning": 4, "info": 6, "debug": 7}
LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}
LogFormat = Literal["auto", "json", "console"]
FORMATS: tuple[LogFormat, ...] = ("auto", "json", "console")


def _journald_prefix(_: Any, method: str, event: str | bytes) -> str:
    text = event.decode() if isinstance(event, bytes) else event
    return f"<{PRIORITY.get(method, 6)}>{text}"


class _ForwardToStructlog(logging.Handler):
    """Route warnings from libraries that use stdlib logging (asyncssh, aiohttp) through structlog."""

    def emit(self, record: logging.LogRecord) -> None:
        log = structlog.get_logger(record.name)
        level = record.levelname.lower()
        # A library's error with its exception (APScheduler's "Job … raised an exception") keeps it.
        extra = {"exc_info": record.exc_info} if record.exc_info else {}
        getattr(log, level if level in LEVELS else "warning")(record.getMessage(), **extra)


class _CurrentStderr:
    """sys.stderr as it is when a line is written, not when logging was configured: a live progress
    display (rich) redirects it, and log lines then print above the bars instead of through them."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def audience_filter(*, console: bool, debug: bool) -> Any:
    """A processor that drops what this output's reader does not need (see the module docstring)."""

    def keep(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        detail = event.pop("detail", False)
        summary = event.pop("summary", False)
        if (detail and console and not debug) or (summary and not console):
            raise structlog.DropEvent
        return event

    return keep


def configure_logging(
    level: str = "info", *, stream: TextIO | None = None, fmt: LogFormat = "auto", json: bool | None = None
) -> None:
    """`stream` defaults to stderr (followed when redirected); `json` overrides `fmt` (tests)."""
    out: Any = stream if stream is not None else _CurrentStderr()
    if json is None:
        json = fmt == "json" or (fmt == "auto" and not (stream or sys.stderr).isatty())
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        audience_filter(console=not json, debug=level == "debug"),
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]
    if json:
        processors += [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
        if os.environ.get("JOURNAL_STREAM"):
            processors.append(_journald_prefix)
    else:
        # Plain tracebacks, without local variables (a frame of the status server holds the token), and
        # without rich (not imported for logging: mediasyncd/__init__.py).
        processors.append(structlog.dev.ConsoleRenderer(exception_formatter=structlog.dev.plain_traceback))
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(LEVELS.get(level, logging.INFO)),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )
    root = logging.getLogger()
    root.handlers[:] = [_ForwardToStructlog()]
    root.setLevel(logging.WARNING)
