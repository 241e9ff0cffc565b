"""The SSH transport: all of mediasyncd's asyncssh code lives in this package."""

from mediasyncd.sources.ssh.libs import quick_library_lookup

with quick_library_lookup():  # asyncssh's first import: no gcc run per missing optional library
    import asyncssh  # noqa: F401
