"""The SSH transport: all of mediasyncd's asyncssh code lives in this package."""

from mediasyncd.sources.ssh.libs import quick_library_lookup, without_x509

# asyncssh's first import: no gcc run per missing optional library, no X.509 certificates (libs.py)
with quick_library_lookup(), without_x509():
    import asyncssh  # noqa: F401
