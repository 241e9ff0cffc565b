"""mediasyncd: pull generated media from remote GPU containers into a local library."""

import sys as _sys

__version__ = "0.1.0"


def _structlog_lean() -> None:
    """Import structlog with rich and greenlet hidden: structlog imports rich, when it is installed, for
    tracebacks mediasyncd never renders (its console renderer formats exceptions plainly), which cost
    every start ~50 ms of CPU and ~5 MB (docs/benchmarks.md); and greenlet, when installed (a test
    tool's dependency), for its deprecated thread-local context that mediasyncd does not use (~4 ms).
    Both stay importable for whoever does use them (the CLI's live views, the browser tests)."""
    if "structlog" in _sys.modules:
        return
    hidden = [m for m in ("rich", "greenlet") if m not in _sys.modules]
    for name in hidden:
        _sys.modules[name] = None  # type: ignore[assignment]  # `import rich` raises ImportError
    try:
        import structlog  # noqa: F401
    finally:
        for name in hidden:
            del _sys.modules[name]


def _keep_dataclass_code() -> None:
    """Compile each dataclass's methods once, not at every start (dataclass_code.py): before structlog,
    whose dataclasses are kept too."""
    from mediasyncd import dataclass_code

    dataclass_code.install()


_keep_dataclass_code()
_structlog_lean()
