"""The code that `@dataclass` compiles at import, kept between runs beside the .pyc files.

`@dataclass` writes each class's `__init__`, `__repr__`, `__eq__` (and, frozen, `__setattr__`,
`__delattr__`, `__hash__`) as source text and compiles it with `exec()` every time the module is imported:
~0.25 ms a method on this machine, ~42 ms for the 48 dataclasses a `sync --once` imports, and ~15 ms
more for structlog's: a quarter of that command's ~0.2 s of imports (docs/benchmarks.md, issue 21). The
text is the same from one run to the next, so the code compiled from it is kept in one file in the
package's `__pycache__` (where Python keeps the .pyc files, under the same conditions: not written when
`sys.dont_write_bytecode` is set or the folder is read-only) and `exec()` is given the kept code object.
It runs exactly what compiling the same text gives: the text is the key, the code is compiled the way
`exec()` compiles it for dataclasses.py (no future flags: dataclasses.py has none), and the file is read
only when its header names this very interpreter version.

`python -m mediasyncd.precompile` imports every module of the package and writes the file whatever
`sys.dont_write_bytecode` says, as `python -m compileall` writes the .pyc files: scripts/setup runs it
after installing, so that the first start is as quick as the next.

`install()` puts the cache in place as the `exec` of the dataclasses module (its one call of `exec()`),
for the rest of the process: the package does it as it is first imported, before structlog. Only the
dataclasses of mediasyncd's and structlog's modules are kept (a test process's own are compiled as
always), so the file holds what the commands import and stays small.
"""

from __future__ import annotations

import atexit
import builtins
import contextlib
import dataclasses
import marshal
import os
import sys
from pathlib import Path
from types import CodeType
from typing import Any

# The exact interpreter that wrote the file (marshal and bytecode change between versions).
MAGIC = f"mediasyncd dataclass code {sys.implementation.name} {sys.hexversion:x}\n".encode()
PACKAGES = frozenset({"mediasyncd", "structlog"})  # whose dataclasses are kept: what a command imports
KEEP_AT_MOST = 4096  # entries; past this only what this run used is kept (old versions' code goes)


def cache_path() -> Path:
    tag = sys.implementation.cache_tag or "python"
    return Path(__file__).parent / "__pycache__" / f"dataclass_code.{tag}.marshal"


def read(path: Path) -> dict[str, CodeType]:
    """The kept code by source text; empty when the file is missing, damaged or another Python's."""
    try:
        data = path.read_bytes()
    except OSError:
        return {}
    if not data.startswith(MAGIC):
        return {}
    try:
        codes = marshal.loads(data[len(MAGIC) :])
    except (EOFError, ValueError, TypeError):
        return {}
    if not isinstance(codes, dict):
        return {}
    return {k: v for k, v in codes.items() if isinstance(k, str) and isinstance(v, CodeType)}


def write(path: Path, codes: dict[str, CodeType]) -> None:
    """Replace the file atomically; a folder that cannot be written leaves things as they were."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(exist_ok=True)
        tmp.write_bytes(MAGIC + marshal.dumps(codes))
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


class CodeCache:
    """`exec()` for dataclasses.py: source text compiled once, then taken from `codes`."""

    def __init__(self, codes: dict[str, CodeType]) -> None:
        self.codes = codes
        self.used: set[str] = set()
        self.compiled = 0

    def exec(self, source: Any, globals: Any = None, locals: Any = None) -> None:
        module = globals.get("__name__", "") if isinstance(globals, dict) else ""
        if not isinstance(source, str) or module.partition(".")[0] not in PACKAGES:
            builtins.exec(source, globals, locals)
            return
        code = self.codes.get(source)
        if code is None:
            code = compile(source, "<string>", "exec", dont_inherit=True)
            self.codes[source] = code
            self.compiled += 1
        self.used.add(source)
        builtins.exec(code, globals, locals)

    def to_keep(self) -> dict[str, CodeType] | None:
        """What the file should hold after this run, or None when it holds that already."""
        if not self.compiled:
            return None
        if len(self.codes) > KEEP_AT_MOST:
            return {k: self.codes[k] for k in self.used}
        return self.codes

    def save(self, path: Path) -> None:
        """At exit: write back what had to be compiled, where .pyc files would be written."""
        keep = self.to_keep()
        if keep is not None and not sys.dont_write_bytecode:
            write(path, keep)


def install(path: Path | None = None) -> CodeCache:
    """Serve dataclasses.py's `exec()` from the cache at `path` (the package's by default) for the rest
    of this process; what it had to compile is written back at exit."""
    path = path or cache_path()
    cache = CodeCache(read(path))
    dataclasses.exec = cache.exec  # type: ignore[attr-defined]  # found before the builtin
    atexit.register(cache.save, path)
    return cache


def prepare() -> int:
    """Import every module of the package and keep the code of all their dataclasses; how many."""
    import importlib
    import pkgutil

    import mediasyncd

    cache = getattr(getattr(dataclasses, "exec", None), "__self__", None)  # install()'s, on import
    if not isinstance(cache, CodeCache):
        raise RuntimeError("mediasyncd.dataclass_code is not installed")
    for module in pkgutil.walk_packages(mediasyncd.__path__, "mediasyncd."):
        if not module.name.endswith("__main__"):
            importlib.import_module(module.name)
    cache.codes = {source: cache.codes[source] for source in cache.used}  # none of an older version's
    cache.compiled = 0  # written now: nothing left for the exit
    write(cache_path(), cache.codes)
    return len(cache.codes)
