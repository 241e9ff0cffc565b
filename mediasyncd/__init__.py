"""mediasyncd: pull generated media from remote GPU containers into a local library."""

import sys as _sys

__version__ = "0.1.0"


def _structlog_without_rich() -> None:
    """Import structlog with rich hidden: structlog imports rich, when it is installed, for tracebacks
    mediasyncd never renders (its console renderer formats exceptions plainly), which cost every start
    ~50 ms of CPU and ~5 MB (docs/benchmarks.md). rich itself stays importable for the CLI's live views."""
    if "structlog" in _sys.modules or "rich" in _sys.modules:
        return
    _sys.modules["rich"] = None  # type: ignore[assignment]  # `import rich` raises ImportError
    try:
        import structlog  # noqa: F401
    finally:
        del _sys.modules["rich"]


_structlog_without_rich()
