"""asyncssh's optional libraries are looked up in `ldconfig -p`'s listing, never by compiling."""

from __future__ import annotations

import ctypes.util

from mediasyncd.sources.ssh import libs

LISTING = """1234 libs found in cache `/etc/ld.so.cache'
\tlibnettle.so.8 (libc6,x86-64) => /lib/x86_64-linux-gnu/libnettle.so.8
\tlibnettle.so (libc6,x86-64) => /lib/x86_64-linux-gnu/libnettle.so
\tlibnettle-extra.so.1 (libc6,x86-64) => /lib/x86_64-linux-gnu/libnettle-extra.so.1
"""


def test_the_first_soname_of_the_name_is_found_and_a_missing_one_is_none() -> None:
    assert libs.soname_from_listing(LISTING, "nettle") == "libnettle.so.8"
    assert libs.soname_from_listing(LISTING, "nettle-extra") == "libnettle-extra.so.1"
    assert libs.soname_from_listing(LISTING, "oqs") is None


def test_the_lookup_finds_this_machines_libc_and_is_put_back_after_the_block() -> None:
    """The real `ldconfig -p` lists libc; outside the block find_library is ctypes' own again."""
    with libs.quick_library_lookup():
        assert ctypes.util.find_library("c") == "libc.so.6"
        assert ctypes.util.find_library("surely-not-a-library-here") is None
    assert ctypes.util.find_library is libs._REAL_FIND_LIBRARY
