"""A crafted tar stream cannot write anywhere but the partials it was asked for: unrequested names,
`../` names, absolute names, links, devices and members of the wrong size are read past."""

from __future__ import annotations

import asyncio
import io
import tarfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from mediasyncd.sources.tar import Member, unpack_stream
from mediasyncd.sources.write_place import WritePlace


class Forced(WritePlace):
    def __init__(self, loop: bool) -> None:
        super().__init__(lambda: "")
        self.loop = loop

    def on_loop(self, dev: int | None) -> bool:
        return self.loop


class Stream:
    def __init__(self, data: bytes) -> None:
        self.data = io.BytesIO(data)

    async def read(self, n: int = -1) -> bytes:
        await asyncio.sleep(0)
        return self.data.read(n)


def archive(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return out.getvalue()


def regular(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def special(name: str, kind: bytes, target: str = "") -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info, None


@pytest.mark.parametrize("loop", [True, False], ids=["on-loop", "in-thread"])
async def test_only_requested_regular_members_of_the_listed_size_are_written(
    tmp_path: Path, loop: bool
) -> None:
    """Of a hostile archive only `ok.png` lands in its partial; nothing else appears anywhere."""
    partials_dir = tmp_path / "partials"
    partials = {
        "ok.png": partials_dir / "1",
        "wrong-size.png": partials_dir / "2",
        "link.png": partials_dir / "3",
        "dup.png": partials_dir / "4",
    }
    data = archive(
        [
            regular("../escape.png", b"evil"),
            regular("/tmp/abs.png", b"evil"),
            special("link.png", tarfile.SYMTYPE, "/etc/passwd"),
            special("hard.png", tarfile.LNKTYPE, "ok.png"),
            special("dev.png", tarfile.CHRTYPE),
            regular("ok.png", b"good"),
            regular("wrong-size.png", b"x" * 100),
            regular("dup.png", b"1"),
            regular("dup.png", b"2"),
            regular("unrequested.png", b"x"),
        ]
    )
    got: list[Member] = []
    with ThreadPoolExecutor(2) as executor:
        await unpack_stream(
            Stream(data), "/root", partials, executor=executor, on_member=got.append,
            sizes={"ok.png": 4, "wrong-size.png": 5, "link.png": 0, "dup.png": 1}, place=Forced(loop),
        )  # fmt: skip
    await asyncio.sleep(0.01)
    assert sorted(m.rel for m in got) == ["dup.png", "ok.png"]
    assert (partials_dir / "1").read_bytes() == b"good"
    assert (partials_dir / "4").read_bytes() == b"1"  # a second member of the same name is ignored
    assert tree(tmp_path) == ["partials", "partials/1", "partials/4"]


def tree(base: Path) -> list[str]:
    return sorted(str(p.relative_to(base)) for p in base.rglob("*"))
