"""asyncssh's optional libraries are looked up in `ldconfig -p`'s listing, never by compiling."""

from __future__ import annotations

import ctypes.util
import dataclasses
import json
import subprocess
import sys
from pathlib import Path

from mediasyncd.sources.ssh import libs
from tests.sshd import SshServer

REPO = Path(__file__).resolve().parents[2]

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


def test_the_ssh_transport_loads_without_x509_and_still_connects(sshd: SshServer, tmp_path: Path) -> None:
    """Importing the SSH transport leaves asyncssh's X.509 support and cryptography.x509 unloaded (~16 ms
    of every start-up), and a connection to the real sshd still lists a root."""
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "a.png").write_bytes(b"a" * 100)
    probe = (
        "import asyncio, json, sys\n"
        "from pathlib import Path\n"
        "import mediasyncd.sources.ssh.source as s\n"
        "from tests.sshd import SshServer, connect\n"
        "fields = json.loads(sys.argv[1])\n"
        "server = SshServer(**{k: Path(v) if isinstance(v, str) and v.startswith('/') else v"
        " for k, v in fields.items()})\n"
        "async def main():\n"
        "    source = await s.SshSource.start(await connect(server))\n"
        "    try:\n"
        "        return [e.rel for e in (await source.list_roots([sys.argv[2]])).entries]\n"
        "    finally:\n"
        "        await source.close()\n"
        "listed = asyncio.run(main())\n"
        "print(json.dumps({'listed': listed, 'x509': [m for m in sys.modules if 'x509' in m]}))\n"
    )
    fields = {k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(sshd).items()}
    out = subprocess.run(
        [sys.executable, "-c", probe, json.dumps(fields), str(tmp_path / "root")],
        capture_output=True, text=True, timeout=60, check=True, cwd=REPO,
    )  # fmt: skip
    assert json.loads(out.stdout) == {"listed": ["a.png"], "x509": []}
