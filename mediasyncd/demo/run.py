"""Run the demo: a generated container behind the embedded SSH server, synced by the real daemon."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import getpass
import random
import socket
import sys
from pathlib import Path

import structlog
import tomli_w

from mediasyncd.config import load_config
from mediasyncd.daemon import Daemon
from mediasyncd.demo.images import write_comfyui_image, write_forge_image
from mediasyncd.demo.server import start_demo_server

log = structlog.get_logger("mediasyncd.demo")


def write_demo_config(library: Path, work: Path, port: int, listen: str) -> Path:
    """The demo's config file: two ordinary remotes pointing at the embedded server."""
    keys = work / "keys"
    container = work / "container"
    common = {
        "host": "127.0.0.1",
        "port": port,
        "user": getpass.getuser(),
        "identity_file": str(keys / "client_key"),
        "known_hosts": str(keys / "known_hosts"),
        "poll_interval": "2s",
        "settle": "1s",
    }
    doc = {
        "daemon": {
            "library": str(library),
            "state_dir": str(work / "state"),
            "status_listen": listen,
            "library_min_free": "0",
        },
        "remotes": [
            {
                "name": "demo-forge",
                "kind": "forge",
                "roots": [str(container / "stable-diffusion-webui" / "outputs")],
            }
            | common,
            {"name": "demo-comfyui", "kind": "comfyui", "roots": [str(container / "ComfyUI" / "output")]}
            | common,
        ],
    }
    path = work / "config.toml"
    path.write_text("# written by `mediasyncd demo`\n" + tomli_w.dumps(doc), encoding="utf-8")
    return path


class Generator:
    """Keeps producing images in the demo container, alternating Forge and ComfyUI."""

    def __init__(self, container: Path, seed: int | None = None) -> None:
        self.forge = container / "stable-diffusion-webui" / "outputs"
        self.comfy = container / "ComfyUI" / "output"
        self.rng = random.Random(seed)
        self.count = 0

    def _next_index(self, folder: Path, pattern: str) -> int:
        return sum(1 for _ in folder.rglob(pattern)) if folder.exists() else 0

    def one(self) -> Path:
        self.count += 1
        if self.count % 3:
            return write_forge_image(self.forge, self._next_index(self.forge, "*.png"), self.rng)
        return write_comfyui_image(self.comfy, self._next_index(self.comfy, "*.png") + 1, self.rng)

    async def run(self, every: float) -> None:
        while True:
            path = await asyncio.to_thread(self.one)
            log.info("demo container generated an image", path=str(path))
            await asyncio.sleep(every)


async def run_demo(library: Path, *, listen: str, every: float, duration: float = 0.0) -> int:
    library = await asyncio.to_thread(_make_library, library)
    work = library / ".mediasyncd" / "demo"
    acceptor, port = await start_demo_server(work / "keys")
    listen, taken = free_listen(listen)
    config = load_config(await asyncio.to_thread(write_demo_config, library, work, port, listen))
    generator = Generator(work / "container")
    for _ in range(3):
        await asyncio.to_thread(generator.one)
    if taken:
        print(
            f"mediasyncd demo: {taken} is in use by another program; using {listen} instead", file=sys.stderr
        )
    print(
        f"mediasyncd demo: a generated container on 127.0.0.1:{port} (SSH) makes an image every {every:g}s;\n"
        f"  it syncs into {library}/demo-forge and {library}/demo-comfyui\n"
        f"  status: curl http://{listen}/status    (Ctrl-C to stop)\n"
        f"  config: {config.path}  (use it with --config for status, search, inspect)",
        file=sys.stderr,
        flush=True,
    )
    daemon = Daemon(config)
    try:
        async with asyncio.TaskGroup() as tg:
            gen = tg.create_task(generator.run(every))
            if duration > 0:
                tg.create_task(_stop_after(daemon, duration))
            await daemon.run()
            gen.cancel()
    finally:
        acceptor.close()
        with contextlib.suppress(Exception):
            await acceptor.wait_closed()
    return 0


def free_listen(listen: str) -> tuple[str, str | None]:
    """`listen` if it can be bound now, else the same host on a free port, and the address that was taken."""
    host, _, port = listen.rpartition(":")
    bare = host.strip("[]")
    family = socket.AF_INET6 if ":" in bare else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((bare, int(port)))
            return listen, None
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                return listen, None  # the daemon reports anything else itself
        probe.bind((bare, 0))
        return f"{host}:{probe.getsockname()[1]}", listen


def _make_library(library: Path) -> Path:
    library = library.expanduser().resolve()
    library.mkdir(parents=True, exist_ok=True)  # the demo makes its own library; the daemon never does
    return library


async def _stop_after(daemon: Daemon, seconds: float) -> None:
    await asyncio.sleep(seconds)
    daemon.stop.set()
