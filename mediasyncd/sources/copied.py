"""What a local copy already knows: the SHA-256 of the bytes it just copied, while the file provably has
not changed since. LocalSource feeds it stat results (from several threads: one lock).

Verification asks the source for each file's SHA-256 after the copy. For a local folder that meant reading
every file a second time. The copy hashed the bytes it wrote, so that hash is the file's hash as long as
nothing wrote to the file during the copy or after it. The kernel marks every write (and every
metadata change) in the file's ctime, which nobody can set back; the copy's hash is taken as the file's
only when the copy read the whole file in one go and the same inode shows the same size, mtime and ctime
before the copy, after it and at verification, and the ctime before the copy was older than
CTIME_MARGIN_NS (a write in the same clock tick as an earlier change could leave ctime as it was). In any
other case the file is read again.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

COPY_READ = 1 << 20  # bytes read, hashed and written per system call while copying
CTIME_MARGIN_NS = 1_000_000_000
KEEP = 4096  # copies remembered at most (a copy whose verification never comes is forgotten)


@dataclass(frozen=True)
class Fingerprint:
    dev: int
    ino: int
    size: int
    mtime_ns: int
    ctime_ns: int

    @classmethod
    def of(cls, st: os.stat_result) -> Fingerprint:
        return cls(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class Copied:
    """path -> (digest of the whole copy, the file's fingerprint after it). Copies in several threads
    remember and verification takes: one lock."""

    def __init__(self, keep: int = KEEP) -> None:
        self.keep = keep
        self._known: dict[str, tuple[str, Fingerprint]] = {}
        self._lock = threading.Lock()

    def remember(
        self,
        path: str,
        digest: str,
        before: os.stat_result,
        after: os.stat_result,
        *,
        whole: bool,
        started_ns: int,
    ) -> bool:
        """Keep `digest` for `path` if the copy read the whole file (`whole`) and the file did not
        change during it (see the module's comment); True if kept."""
        first, last = Fingerprint.of(before), Fingerprint.of(after)
        with self._lock:
            self._known.pop(path, None)
            if not whole or first != last or first.ctime_ns > started_ns - CTIME_MARGIN_NS:
                return False
            if len(self._known) >= self.keep:
                del self._known[next(iter(self._known))]
            self._known[path] = (digest, last)
        return True

    def take(self, path: str, now: os.stat_result | None) -> str | None:
        """The copy's digest if the file at `path` is still the one copied (`now`: its lstat), else
        None; either way it is forgotten."""
        with self._lock:
            known = self._known.pop(path, None)
        if known is None or now is None:
            return None
        digest, fingerprint = known
        return digest if Fingerprint.of(now) == fingerprint else None

    def __len__(self) -> int:
        return len(self._known)
