"""The floors of bench.ssh_floor, each run as a process of its own: `python -P -m bench.floor_child JOB`.

Kept apart from bench.ssh_floor so that a floor's start-up is what it needs (the standard library,
asyncssh and the parts of mediasyncd it uses) and not the benchmark's own modules (bench.ab, the test
sshd, ~0.3–0.5 s of imports that the first version of the floors counted).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

STREAMS = 2  # mediasyncd's tar streams at a time on a fast link (sources/ssh/rtt.py)
TAR = "tar -cf - --format=gnu --null --no-recursion -T -"


async def _stream(
    conn: Any, root: str, rels: list[str], mode: str, partial: dict[str, Path], pool: Any
) -> dict[str, str]:
    """One tar stream of `rels`: dropped (`read`) or unpacked into partials under `dest`; their hashes."""
    from mediasyncd.sources.tar import Member, unpack_stream

    process = await conn.create_process(f"cd {root} && {TAR}", encoding=None)
    process.stdin.write(b"".join(r.encode() + b"\0" for r in rels))
    process.stdin.write_eof()
    got: dict[str, str] = {}
    if mode == "read":
        while await process.stdout.read(1 << 20):
            pass
    else:
        partials = {rel: partial[rel] for rel in rels}

        def member(m: Member) -> None:
            got[m.rel] = m.sha256

        await unpack_stream(process.stdout, root, partials, executor=pool, on_member=member)
    await process.wait()
    return got


async def _remote_hashes(conn: Any, root: str, rels: list[str]) -> dict[str, str]:
    result = await conn.run(
        f"cd {root} && xargs -0 openssl dgst -sha256 -r",  # as mediasyncd hashes (SHA extensions)
        input=b"".join(r.encode() + b"\0" for r in rels),
        encoding=None,
    )
    out: dict[str, str] = {}
    for line in result.stdout.decode().splitlines():
        digest, _, name = line.partition(" ")
        out[name.removeprefix("*")] = digest
    return out


async def _connect(job: dict[str, Any]) -> Any:
    """asyncssh to the job's sshd, with mediasyncd's cipher and receive path."""
    import asyncssh

    from mediasyncd.sources.ssh.receive import receive_fast

    class Client(asyncssh.SSHClient):
        def connection_made(self, conn: asyncssh.SSHClientConnection) -> None:
            receive_fast(conn)  # as mediasyncd's own connections do

    conn, _ = await asyncssh.create_connection(
        Client, job["host"], job["port"], username=job["user"], client_keys=[job["key"]],
        known_hosts=job["known_hosts"], encryption_algs=["aes128-gcm@openssh.com"], compression_algs=None,
        agent_path=None,
    )  # fmt: skip
    return conn


async def _floor(job: dict[str, Any]) -> None:
    rels: list[str] = job["rels"]
    dest = Path(job["dest"])
    mode = job["mode"]
    conn = await _connect(job)
    groups = [rels[i::STREAMS] for i in range(STREAMS)]
    partial = {rel: dest / f".p{i}" for i, rel in enumerate(rels)}
    with ThreadPoolExecutor(4) as pool:
        async with conn:
            tasks = [_stream(conn, job["root"], g, mode, partial, pool) for g in groups if g]
            remote = _remote_hashes(conn, job["root"], rels) if mode == "verified" else None
            results = await asyncio.gather(*tasks, *([remote] if remote else []))
        local: dict[str, str] = {}
        for r in results[: len(tasks)]:
            local.update(r)
        if mode == "read":
            return
        from mediasyncd.transfer.landing import sync_filesystem

        if remote is not None and local != results[-1]:
            raise SystemExit(
                f"floor verified: {sum(local.get(r) != results[-1].get(r) for r in rels)} mismatches"
            )

        def land() -> None:
            sync_filesystem(dest)
            made: set[Path] = set()
            for rel in rels:
                final = dest / rel
                if final.parent not in made:
                    final.parent.mkdir(parents=True, exist_ok=True)
                    made.add(final.parent)
                os.rename(partial[rel], final)

        await asyncio.get_running_loop().run_in_executor(pool, land)


async def _kept_floor(job: dict[str, Any]) -> None:
    """`sync --once` into a library that holds the dataset (`--scenario noop|incremental`), done the
    least way: one exec (`sh`) carries the listing, then the new files' tar stream, then their SHA-256;
    what is known is a JSON list of names. No probe, no state DB, no second channel."""
    from mediasyncd.sources.commands import hash_command, parse_hashes
    from mediasyncd.sources.listing import find_command, parse_find
    from mediasyncd.sources.ssh.shell import CommandChannel
    from mediasyncd.sources.tar import Member
    from mediasyncd.sources.tar_shells import TarShells
    from mediasyncd.transfer.landing import sync_filesystem

    known_file, dest, root = Path(job["known"]), Path(job["dest"]), job["root"]
    known: set[str] = job["known_names"]
    conn = await _connect(job)
    async with conn:
        process = await conn.create_process("exec sh", encoding=None)
        shell = CommandChannel(process)
        listing = parse_find((await shell.run(find_command([root]))).stdout, [root])
        new = [e.rel for e in listing.entries if e.rel not in known]
        if not new:
            return
        partial = {rel: dest / f".p{i}" for i, rel in enumerate(new)}
        local: dict[str, str] = {}

        def member(m: Member) -> None:
            local[m.rel] = m.sha256

        shells = TarShells(lambda: conn.create_process("exec sh", encoding=None))
        shells._idle.append(process)  # the stream on the listing's shell: no second exec
        with ThreadPoolExecutor(4) as pool:
            await shells.stream(root, partial, executor=pool, on_member=member)
            paths = [f"{root}/{rel}" for rel in new]
            hashed = await shell.run(hash_command("openssl", paths, [root]))
            remote = {
                p.removeprefix(root + "/"): h for p, h in parse_hashes(hashed.stdout, paths, [root]).items()
            }
            if local != remote:
                raise SystemExit(f"floor: {sum(local.get(r) != remote.get(r) for r in new)} mismatches")

            def land() -> None:
                sync_filesystem(dest)
                for rel in new:
                    final = dest / rel
                    final.parent.mkdir(parents=True, exist_ok=True)
                    os.rename(partial[rel], final)
                known_file.write_text(json.dumps(sorted(known | set(new))))

            await asyncio.get_running_loop().run_in_executor(pool, land)


def main(argv: list[str]) -> int:
    job = json.loads(argv[0])
    if job["mode"] == "kept":
        known = Path(job["known"])
        job["known_names"] = set(json.loads(known.read_text())) if known.exists() else set()
        asyncio.run(_kept_floor(job))
    else:
        job["rels"] = json.loads(Path(job["names"]).read_text())
        asyncio.run(_floor(job))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
