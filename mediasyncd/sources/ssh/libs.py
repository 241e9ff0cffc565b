"""asyncssh's optional native libraries, looked up without compiling anything.

At import, asyncssh asks `ctypes.util.find_library` for liboqs (post-quantum key exchange) and libnettle
(UMAC). On Linux a name that `ldconfig -p` does not list makes find_library run gcc and ld to look
further: on a machine with gcc and without liboqs, six child processes and ~0.1 s of every start-up
(measured with strace and `time python -c "import asyncssh"`). Here the lookup answers from one
`ldconfig -p` listing, which is where the system's shared libraries are, and falls back to the real
lookup only when there is no ldconfig. Applied while `asyncssh` is first imported, then put back.

asyncssh also imports its X.509 certificate support (and with it `cryptography.x509`, ~16 ms of CPU per
start-up, measured with getrusage over 10 imports) when it can. X.509 certificates in SSH (RFC 6187)
are not something OpenSSH speaks or mediasyncd's config can name: host keys and client keys are
OpenSSH's own. The module is hidden while asyncssh is first imported, and asyncssh treats it as absent,
as it does where cryptography lacks it.
"""

from __future__ import annotations

import contextlib
import ctypes.util
import functools
import re
import subprocess
import sys
from collections.abc import Iterator

LDCONFIG = "/sbin/ldconfig"


@functools.cache
def _ldconfig_listing() -> str | None:
    try:
        out = subprocess.run(
            [LDCONFIG, "-p"], capture_output=True, text=True, check=True, env={"LC_ALL": "C", "LANG": "C"}
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout


def soname_from_listing(listing: str, name: str) -> str | None:
    """The first `lib<name>.so…` soname in an `ldconfig -p` listing, as find_library returns it. Pure."""
    match = re.search(rf"^\s+(lib{re.escape(name)}\.so[^\s]*)\s", listing, re.MULTILINE)
    return match.group(1) if match else None


def find_library(name: str) -> str | None:
    listing = _ldconfig_listing()
    if listing is None:
        return _REAL_FIND_LIBRARY(name)
    return soname_from_listing(listing, name)


_REAL_FIND_LIBRARY = ctypes.util.find_library


@contextlib.contextmanager
def quick_library_lookup() -> Iterator[None]:
    """`ctypes.util.find_library` answers from `ldconfig -p` within this block."""
    ctypes.util.find_library = find_library
    try:
        yield
    finally:
        ctypes.util.find_library = _REAL_FIND_LIBRARY


X509_MODULE = "asyncssh.crypto.x509"


@contextlib.contextmanager
def without_x509() -> Iterator[None]:
    """Within this block `import asyncssh.crypto.x509` raises ImportError (when asyncssh is not yet
    imported: afterwards nothing changes)."""
    if X509_MODULE in sys.modules or "asyncssh" in sys.modules:
        yield
        return
    sys.modules[X509_MODULE] = None  # type: ignore[assignment]  # `import` raises ImportError
    try:
        yield
    finally:
        if sys.modules.get(X509_MODULE, 0) is None:
            del sys.modules[X509_MODULE]
