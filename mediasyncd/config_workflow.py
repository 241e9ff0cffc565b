"""`[workflow]` (SPEC §3.8, §3.11): the stages each landed file passes through after the media pipeline,
and which of them purge waits for. Validated like the rest of the config: every problem with its key and
line, and the rules that tie stages together (e.g. `keep_original = false` needs a verified archive first).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from mediasyncd.config_values import (
    Reader,
    as_bool,
    as_nonempty_str,
    as_path,
    as_positive_int,
    choice,
    join_key,
)

STAGE_NAMES = ("archive", "compress", "syncthing")
IMPLEMENTED = frozenset(STAGE_NAMES)
CompressFormat = Literal["webp", "avif", "jpeg"]
VIDEO_PROFILES = ("h264", "hevc", "av1", "vp9")  # mediasyncd.workflow.video.PROFILES


@dataclass(frozen=True)
class ArchiveConfig:
    dest: Path | None = None


@dataclass(frozen=True)
class CompressConfig:
    format: CompressFormat = "webp"
    quality: int = 90
    min_saving: float = 0.10  # a fraction of the original size
    keep_original: bool = True
    dest: Path | None = None  # default: <library>/.mediasyncd/compressed
    video_profile: str | None = None  # None: videos are left alone
    video_crf: int | None = None  # None: the profile's default


@dataclass(frozen=True)
class SyncthingConfig:
    url: str = "http://127.0.0.1:8384"
    api_key_file: Path | None = None
    folder: str = ""
    path: Path | None = None
    devices: tuple[str, ...] = ()
    batch: int = 5
    remove_after: bool = True


@dataclass(frozen=True)
class WorkflowConfig:
    stages: tuple[str, ...] = ()
    purge_after: tuple[str, ...] = ()
    archive: ArchiveConfig = field(default_factory=ArchiveConfig)
    compress: CompressConfig = field(default_factory=CompressConfig)
    syncthing: SyncthingConfig = field(default_factory=SyncthingConfig)

    @property
    def enabled(self) -> bool:
        return bool(self.stages)


def as_stage_list(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise TypeError(f"must be a list of stage names ({', '.join(STAGE_NAMES)})")
    unknown = [v for v in value if v not in STAGE_NAMES]
    if unknown:
        raise ValueError(f"unknown stage {unknown[0]!r}; stages are {', '.join(STAGE_NAMES)}")
    if len(set(value)) != len(value):
        raise ValueError("names a stage twice")
    return tuple(value)


def as_fraction(value: Any) -> float:
    """ "10%" or 0.1 -> 0.1."""
    if isinstance(value, str) and value.strip().endswith("%"):
        number = float(value.strip()[:-1])
        fraction = number / 100
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        fraction = float(value)
    else:
        raise TypeError(f'must be a percentage such as "10%" or a fraction such as 0.1, got {value!r}')
    if not 0 <= fraction < 1:
        raise ValueError(f"must be from 0% to under 100%, got {value!r}")
    return fraction


def as_quality(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 100:
        raise ValueError(f"must be a whole number 1-100, got {value!r}")
    return value


def as_crf(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 63:
        raise ValueError(f"must be a whole number 0-63 (x264/x265 stop at 51), got {value!r}")
    return value


def as_devices(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise TypeError("must be a non-empty list of Syncthing device ids")
    return tuple(value)


def as_http_url(value: Any) -> str:
    s = as_nonempty_str(value)
    if not s.startswith(("http://", "https://")):
        raise ValueError(f"must be an http:// or https:// URL, got {s!r}")
    return s.rstrip("/")


def workflow_section(r: Reader, data: Mapping[str, Any]) -> WorkflowConfig:
    p = "workflow"
    t = r.table(data, p)
    r.check_keys(t, p, {"stages", "purge_after", *STAGE_NAMES})
    none: tuple[str, ...] = ()
    stages = r.get(t, "stages", p, as_stage_list, none)
    purge_after = r.get(t, "purge_after", p, as_stage_list, none)
    for name in purge_after:
        if name not in stages:
            r.problem(join_key(p, "purge_after"), f"names {name!r}, which is not in workflow.stages")
    for name in stages:
        if name not in IMPLEMENTED:
            r.problem(join_key(p, "stages"), f"the {name!r} stage is not implemented yet in this version")
    for name in STAGE_NAMES:
        if name in t and name not in stages:
            r.warning(join_key(p, name), f"is configured but {name!r} is not in workflow.stages")
    archive = _archive(r, r.table(t, "archive", p), stages)
    compress = _compress(r, r.table(t, "compress", p), stages, purge_after)
    syncthing = _syncthing(r, r.table(t, "syncthing", p), stages)
    return WorkflowConfig(stages, purge_after, archive, compress, syncthing)


def _archive(r: Reader, t: Mapping[str, Any], stages: tuple[str, ...]) -> ArchiveConfig:
    p = "workflow.archive"
    r.check_keys(t, p, {"dest"})
    if "archive" not in stages:
        return ArchiveConfig(r.get(t, "dest", p, as_path, None))
    dest = r.require(t, "dest", p, as_path)
    if dest is not None and not dest.is_absolute():
        r.problem(join_key(p, "dest"), f"must be an absolute path, got {str(dest)!r}")
    return ArchiveConfig(dest)


def _compress(
    r: Reader, t: Mapping[str, Any], stages: tuple[str, ...], purge_after: tuple[str, ...]
) -> CompressConfig:
    p = "workflow.compress"
    r.check_keys(
        t, p, {"format", "quality", "min_saving", "keep_original", "dest", "video_profile", "video_crf"}
    )
    d = CompressConfig()
    config = CompressConfig(
        format=r.get(t, "format", p, choice("webp", "avif", "jpeg"), d.format),
        quality=r.get(t, "quality", p, as_quality, d.quality),
        min_saving=r.get(t, "min_saving", p, as_fraction, d.min_saving),
        keep_original=r.get(t, "keep_original", p, as_bool, d.keep_original),
        dest=r.get(t, "dest", p, as_path, None),
        video_profile=r.get(t, "video_profile", p, choice(*VIDEO_PROFILES), None),
        video_crf=r.get(t, "video_crf", p, as_crf, None),
    )
    if config.video_crf is not None and config.video_profile is None:
        r.problem(join_key(p, "video_crf"), "is set but video_profile is not (videos are left alone)")
    if "compress" in stages and config.format == "avif" and not _pillow_has("avif"):
        r.problem(join_key(p, "format"), '"avif" needs a Pillow with AVIF support (the wheels of 11.3+)')
    if "compress" in stages and not config.keep_original:
        before = "archive" in stages and stages.index("archive") < stages.index("compress")
        if not before or "archive" not in purge_after:
            r.problem(
                join_key(p, "keep_original"),
                "false replaces the library file, so it needs 'archive' before 'compress' in "
                "workflow.stages and 'archive' in workflow.purge_after",
            )
    return config


def _syncthing(r: Reader, t: Mapping[str, Any], stages: tuple[str, ...]) -> SyncthingConfig:
    p = "workflow.syncthing"
    r.check_keys(t, p, {"url", "api_key_file", "folder", "path", "devices", "batch", "remove_after"})
    d = SyncthingConfig()
    needed = "syncthing" in stages

    def key(name: str, convert: Any, default: Any) -> Any:
        if needed and default is None:
            return r.require(t, name, p, convert)
        return r.get(t, name, p, convert, default)

    return SyncthingConfig(
        url=key("url", as_http_url, d.url),
        api_key_file=key("api_key_file", as_path, None),
        folder=key("folder", as_nonempty_str, None) or "",
        path=key("path", as_path, None),
        devices=key("devices", as_devices, None) or (),
        batch=r.get(t, "batch", p, as_positive_int, d.batch),
        remove_after=r.get(t, "remove_after", p, as_bool, d.remove_after),
    )


def _pillow_has(feature: str) -> bool:
    """Whether Pillow was built with `feature`; PIL is imported only for a config that asks (every
    command reads the config: `sync --once` should not pay ~10 ms for it)."""
    from PIL import features

    return bool(features.check(feature))
