"""The benchmark's datasets, generated on local disk and served to the tools by the remote's sshd.

- PNG: realistic SD outputs, 1024² (or `png_size`), ~1.3–2 MB, each with its own A1111 `parameters` chunk.
  Pixels come from a pool of distinct images (gradients plus noise, like smooth renders with grain), and
  each file gets a unique iTXt chunk spliced in after IHDR, so every file is a different valid PNG without
  paying Pillow's encoder 2,000 times.
- MANY: ~100 KB files (random bytes, named .png) in ~170 dated folders, like a long-lived txt2img tree.
- BIG: video-like files (an MP4 `ftyp` box, then random bytes: incompressible).

Every file's mtime is set an hour back, so a settle window never delays the first pull. `ensure_datasets`
keeps them in a cache directory between runs, regenerating only what the parameters no longer match.
"""

from __future__ import annotations

import io
import json
import os
import random
import shutil
import struct
import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from PIL import Image

from mediasyncd.demo.images import a1111_parameters

GENERATOR_VERSION = 2  # bump when the files a parameter set produces change
PNG_POOL = 32  # distinct pixel bodies
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
EXTRA_DIRS = ("9999-incremental", "9999-latency")  # scenario folders inside MANY, removed after use


@dataclass(frozen=True)
class Dataset:
    name: str  # PNG, MANY or BIG
    root: Path
    files: int
    bytes: int

    @property
    def megabytes(self) -> float:
        return self.bytes / 1e6


@dataclass(frozen=True)
class DatasetSpec:
    """How big each dataset is; part of the cache key."""

    png: int = 2000
    png_size: int = 1024
    many: int = 20_000
    many_folders: int = 170
    many_kb: int = 100
    big: int = 5
    big_mb: int = 200


class PngFactory:
    """Valid, distinct PNGs with A1111 metadata, fast: pooled pixel bodies plus a unique iTXt chunk."""

    def __init__(self, size: int, rng: random.Random, pool: int = PNG_POOL) -> None:
        self.rng = rng
        self.size = size
        self.bodies = [_encode(_pixels(rng, size)) for _ in range(pool)]

    def png(self, seed: int) -> bytes:
        body = self.rng.choice(self.bodies)
        chunk = _itxt("parameters", a1111_parameters(self.rng, seed, self.size))
        ihdr_end = len(PNG_SIGNATURE) + 25  # length, type, 13 bytes of IHDR, CRC
        return body[:ihdr_end] + chunk + body[ihdr_end:]

    def write(self, folder: Path, index: int) -> Path:
        seed = self.rng.randrange(2**32)
        path = folder / f"{index:05d}-{seed}.png"
        path.write_bytes(self.png(seed))
        return path


def _pixels(rng: random.Random, size: int) -> Image.Image:
    gradient = Image.linear_gradient("L").resize((size, size)).rotate(rng.randrange(360))
    radial = Image.radial_gradient("L").resize((size, size))
    noise = Image.effect_noise((size, size), rng.uniform(25, 65))
    bands = [gradient, radial, noise]
    rng.shuffle(bands)
    return Image.merge("RGB", bands)


def _encode(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=1)
    return out.getvalue()


def _itxt(keyword: str, text: str) -> bytes:
    data = keyword.encode("latin-1") + b"\0\0\0" + b"\0" + b"\0" + text.encode()
    return struct.pack(">I", len(data)) + b"iTXt" + data + struct.pack(">I", zlib.crc32(b"iTXt" + data))


def make_png(root: Path, spec: DatasetSpec, rng: random.Random) -> Dataset:
    folder = root / "png" / "txt2img-images" / "2026-11-21"
    folder.mkdir(parents=True, exist_ok=True)
    factory = PngFactory(spec.png_size, rng)
    for i in range(spec.png):
        factory.write(folder, i)
    return scan("PNG", root / "png")


def make_many(root: Path, spec: DatasetSpec, rng: random.Random) -> Dataset:
    outputs = root / "many" / "txt2img-images"
    per = max(1, -(-spec.many // spec.many_folders))
    low, high = spec.many_kb * 800, spec.many_kb * 1200
    for i in range(spec.many):
        day = i // per
        folder = outputs / f"{2024 + day // 336}-{1 + day // 28 % 12:02d}-{1 + day % 28:02d}"
        if i % per == 0:
            folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{i:05d}-{rng.randrange(2**32)}.png").write_bytes(os.urandom(rng.randrange(low, high)))
    return scan("MANY", root / "many")


def make_big(root: Path, spec: DatasetSpec, rng: random.Random) -> Dataset:
    folder = root / "big" / "videos"
    folder.mkdir(parents=True, exist_ok=True)
    ftyp = struct.pack(">I", 24) + b"ftypisom" + struct.pack(">I", 512) + b"isomiso2"
    for i in range(spec.big):
        with (folder / f"animatediff-{i:03d}-{rng.randrange(2**32)}.mp4").open("wb") as f:
            f.write(ftyp)
            left = spec.big_mb * 1_000_000 - len(ftyp)
            while left > 0:
                left -= f.write(os.urandom(min(left, 8 << 20)))
    return scan("BIG", root / "big")


def scan(name: str, root: Path, age_s: float = 3600.0) -> Dataset:
    """Count the tree's files and bytes and backdate their mtimes by `age_s`."""
    old = time.time() - age_s
    files = total = 0
    for path in walk_files(root):
        os.utime(path, (old, old))
        files += 1
        total += path.stat().st_size
    return Dataset(name, root, files, total)


def walk_files(root: Path) -> Iterable[Path]:
    for folder, _, names in os.walk(root):
        for name in names:
            yield Path(folder) / name


def tree_totals(root: Path, skip: str = ".mediasyncd") -> tuple[int, int]:
    """(files, bytes) under `root`, leaving out the `skip` folder (mediasyncd's partials and state)."""
    files = total = 0
    for folder, dirs, names in os.walk(root):
        if skip in dirs:
            dirs.remove(skip)
        for name in names:
            files += 1
            total += os.stat(os.path.join(folder, name)).st_size
    return files, total


def ensure_datasets(cache: Path, spec: DatasetSpec, log: Callable[[str], None] = print) -> list[Dataset]:
    """The three datasets under `cache`, reusing ones made earlier with the same parameters."""
    cache.mkdir(parents=True, exist_ok=True)
    manifest = cache / "manifest.json"
    wanted = {"version": GENERATOR_VERSION, **asdict(spec)}
    made: dict[str, object] = json.loads(manifest.read_text()) if manifest.exists() else {}
    clean_extras(cache / "many")
    result = []
    for name, make, keys in (
        ("PNG", make_png, ("png", "png_size")),
        ("MANY", make_many, ("many", "many_folders", "many_kb")),
        ("BIG", make_big, ("big", "big_mb")),
    ):
        key = {k: wanted[k] for k in ("version", *keys)}
        root = cache / name.lower()
        if made.get(name) == key and root.is_dir():
            result.append(scan(name, root))
            continue
        log(f"generating {name} dataset in {root} ...")
        shutil.rmtree(root, ignore_errors=True)
        made.pop(name, None)
        manifest.write_text(json.dumps(made))
        result.append(make(cache, spec, random.Random(f"{name}-{GENERATOR_VERSION}")))
        made[name] = key
        manifest.write_text(json.dumps(made))
    return result


def clean_extras(many_root: Path) -> None:
    """Remove scenario folders (incremental, latency) a previous, interrupted run left in MANY."""
    for extra in EXTRA_DIRS:
        shutil.rmtree(many_root / "txt2img-images" / extra, ignore_errors=True)


def extra_dir(many: Dataset, which: str) -> Path:
    """A scenario folder inside MANY (one of EXTRA_DIRS), created empty."""
    assert which in EXTRA_DIRS
    folder = many.root / "txt2img-images" / which
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder
