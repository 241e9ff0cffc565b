"""Two Linux calls the standard library lacks, through the C library (ctypes): syncfs(2), and
renameat2(2) with RENAME_NOREPLACE, a rename that refuses an occupied target in one step.

Landing never overwrites a file in the library. A check before the rename (`lexists`, then `rename`)
leaves a moment in which a file written there by someone else would be replaced without a trace;
`rename_noreplace` closes it where the kernel and the filesystem can (Linux 3.15 and later on ext4, xfs,
btrfs, tmpfs, ...), and falls back to the check and the rename where they cannot (NFS, SMB and most FUSE
filesystems answer EINVAL; a C library without renameat2), as before.
"""

from __future__ import annotations

import ctypes
import errno
import os
from pathlib import Path

AT_FDCWD = -100
RENAME_NOREPLACE = 1
_UNSUPPORTED = {errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP}


def _load() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syncfs.argtypes = [ctypes.c_int]
    except (OSError, AttributeError):
        return None
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is not None:
        renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    return libc


_LIBC = _load()


def syncfs(fd: int) -> bool:
    """Flush the filesystem holding the open `fd`; False where syncfs is unavailable or failed."""
    return _LIBC is not None and _LIBC.syncfs(fd) == 0


def rename_noreplace(src: Path, dst: Path) -> None:
    """Rename `src` to `dst`; FileExistsError (nothing renamed) when something is at `dst`, a dangling
    symlink included."""
    renameat2 = getattr(_LIBC, "renameat2", None)
    if renameat2 is not None:
        if renameat2(AT_FDCWD, os.fsencode(src), AT_FDCWD, os.fsencode(dst), RENAME_NOREPLACE) == 0:
            return
        code = ctypes.get_errno()
        if code not in _UNSUPPORTED:
            raise OSError(code, os.strerror(code), str(src), None, str(dst))
    if os.path.lexists(dst):
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(dst))
    os.rename(src, dst)
