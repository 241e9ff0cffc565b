"""The code that `@dataclass` compiles at import, kept between runs beside each module's .pyc file.

`@dataclass` writes each class's `__init__`, `__repr__`, `__eq__` (and, frozen, `__setattr__`,
`__delattr__`, `__hash__`) as source text and compiles it with `exec()` every time the module is imported:
~0.25 ms a method on this machine, ~42 ms for the 48 dataclasses a `sync --once` imports, and more for
structlog's: a fifth of that command's ~0.2 s of imports (docs/benchmarks.md, issue 21). The text is
the same from one run to the next, so the code compiled from it is kept, one file per module in the
module's `__pycache__` (`<module>.<cache tag>.dataclasses`), where Python keeps the .pyc files and under
the same conditions (not written when `sys.dont_write_bytecode` is set or the folder is read-only), and
`exec()` is given the kept code object. A module's file is read as the module makes its first dataclass,
so a process holds the code of the modules it imports and no other. It runs exactly what compiling the
same text gives: the key is the text's BLAKE2b digest (128 bits; the texts themselves are not kept in
memory), the code is compiled the way `exec()` compiles it for dataclasses.py (no future flags:
dataclasses.py has none), and a file is read only when its header names this very interpreter version.

`python -m mediasyncd.precompile` imports every module of the package and writes their files whatever
`sys.dont_write_bytecode` says, as `python -m compileall` writes the .pyc files: scripts/setup runs it
after installing, so that the first start is as quick as the next.

`install()` puts the cache in place as the `exec` of the dataclasses module (its one call of `exec()`),
for the rest of the process: the package does it as it is first imported, before structlog. Only the
dataclasses of mediasyncd's and structlog's modules are kept; any other module's are compiled as always.
"""

from __future__ import annotations

import atexit
import builtins
import contextlib
import dataclasses
import hashlib
import marshal
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import CodeType
from typing import Any

# The exact interpreter that wrote the file (marshal and bytecode change between versions).
MAGIC = f"mediasyncd dataclass code {sys.implementation.name} {sys.hexversion:x}\n".encode()
PACKAGES = frozenset({"mediasyncd", "structlog"})  # whose dataclasses are kept: what a command imports


def cache_path(module_file: str) -> Path:
    """Where the dataclass code of the module at `module_file` is kept."""
    source = Path(module_file)
    tag = sys.implementation.cache_tag or "python"
    return source.parent / "__pycache__" / f"{source.stem}.{tag}.dataclasses"


def key(source: str) -> bytes:
    return hashlib.blake2b(source.encode(), digest_size=16).digest()


def read(path: Path) -> dict[bytes, CodeType]:
    """The kept code by its text's key; empty when the file is missing, damaged or another Python's."""
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
    return {k: v for k, v in codes.items() if isinstance(k, bytes) and isinstance(v, CodeType)}


def write(path: Path, codes: dict[bytes, CodeType]) -> None:
    """Replace the file atomically; a folder that cannot be written leaves things as they were."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(exist_ok=True)
        tmp.write_bytes(MAGIC + marshal.dumps(codes))
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


@dataclass
class ModuleCode:
    """One module's kept code: what its file held, and the texts this process asked for."""

    path: Path
    kept: dict[bytes, CodeType]
    used: dict[bytes, CodeType] = field(default_factory=dict)
    compiled: int = 0  # texts that were not in the file


class CodeCache:
    """`exec()` for dataclasses.py: source text compiled once, then taken from each module's file."""

    def __init__(self) -> None:
        self.modules: dict[str, ModuleCode] = {}

    @property
    def compiled(self) -> int:
        return sum(m.compiled for m in self.modules.values())

    def exec(self, source: Any, globals: Any = None, locals: Any = None) -> None:
        module = self._module(source, globals)
        if module is None:
            builtins.exec(source, globals, locals)
            return
        digest = key(source)
        code = module.kept.get(digest)
        if code is None:
            code = compile(source, "<string>", "exec", dont_inherit=True)
            module.compiled += 1
        module.used[digest] = code
        builtins.exec(code, globals, locals)

    def _module(self, source: Any, globals: Any) -> ModuleCode | None:
        """The kept code of the module whose dataclass `source` is for (read on first use), or None
        when it is not one of PACKAGES' modules with a file."""
        if not isinstance(source, str) or not isinstance(globals, dict):
            return None
        name, file = globals.get("__name__"), globals.get("__file__")
        if not isinstance(name, str) or not isinstance(file, str) or name.partition(".")[0] not in PACKAGES:
            return None
        module = self.modules.get(name)
        if module is None:
            path = cache_path(file)
            module = self.modules[name] = ModuleCode(path, read(path))
        return module

    def save(self, *, force: bool = False) -> int:
        """Write the file of each module that had to compile something (with `force`: of every module
        seen), holding what this process used; where .pyc files would be written. How many written."""
        if sys.dont_write_bytecode and not force:
            return 0
        written = 0
        for module in self.modules.values():
            if module.compiled or (force and module.used.keys() != module.kept.keys()):
                write(module.path, module.used)
                module.kept, module.compiled = dict(module.used), 0
                written += 1
        return written


def install() -> CodeCache:
    """Serve dataclasses.py's `exec()` from the kept code for the rest of this process; what had to be
    compiled is written back at exit."""
    cache = CodeCache()
    dataclasses.exec = cache.exec  # type: ignore[attr-defined]  # found before the builtin
    atexit.register(cache.save)
    return cache


def installed() -> CodeCache:
    cache = getattr(getattr(dataclasses, "exec", None), "__self__", None)  # install()'s, on import
    if not isinstance(cache, CodeCache):
        raise RuntimeError("mediasyncd.dataclass_code is not installed")
    return cache


def prepare() -> int:
    """Import every module of the package and write the kept code of all their dataclasses (structlog's
    too); how many methods they hold."""
    import importlib
    import pkgutil

    import mediasyncd

    cache = installed()
    for module in pkgutil.walk_packages(mediasyncd.__path__, "mediasyncd."):
        if not module.name.endswith("__main__"):
            importlib.import_module(module.name)
    cache.save(force=True)
    return sum(len(m.used) for m in cache.modules.values())
