"""compress with a `video_profile`: videos re-encoded by Debian's ffmpeg, ComfyUI's prompt/workflow
(VideoHelperSuite's `comment`, SaveVideo's own tags) carried so that inspect reads the same record;
without a profile videos are left alone."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from mediasyncd.digest import sha256_file
from mediasyncd.pipeline.metadata import extract
from mediasyncd.workflow.video import PROFILES, ffmpeg_command
from tests.helpers import MEDIASYNCD, wait_for
from tests.procs import processes
from tests.workflow.conftest import World, make_world, set_workflow
from tests.workflow.test_compress import FIELDS, comfy_prompt

PIPELINE = {"enabled": True, "thumbnails": False}
PROMPT = json.dumps(comfy_prompt())
WORKFLOW = json.dumps({"nodes": [{"id": 3, "type": "KSampler"}], "links": []})


def lossless_mp4(path: Path, tags: dict[str, str]) -> Path:
    """A 2 s 320x240 test pattern with a tone, H.264 lossless (so a re-encode saves), tagged."""
    command = ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=24:duration=2",
               "-f", "lavfi", "-i", "sine=duration=2", "-c:v", "libx264", "-qp", "0", "-c:a", "aac", "-shortest",
               "-movflags", "use_metadata_tags"]  # fmt: skip
    for key, value in tags.items():
        command += ["-metadata", f"{key}={value}"]
    subprocess.run([*command, str(path)], check=True)
    return path


GENERATORS = {
    "videohelpersuite": {"comment": json.dumps({"prompt": PROMPT, "workflow": json.loads(WORKFLOW)})},
    "savevideo": {"prompt": PROMPT, "workflow": WORKFLOW},
}


def video_record(path: Path) -> dict[str, Any]:
    doc = extract(path, "ffprobe").record.as_json(str(path), None)
    return {k: doc[k] for k in FIELDS} | {"workflow": json.loads(doc["raw"]["workflow"])}


def video_world(tmp_path: Path, compress: dict[str, Any]) -> World:
    world = make_world(tmp_path, pipeline=PIPELINE)
    doc = tomllib.loads(world.config_path.read_text())
    doc["remotes"][0]["include"] = ["*.mp4", "*.png"]
    world.config_path.write_text(tomli_w.dumps(doc))
    set_workflow(world.config_path, {
        "stages": ["archive", "compress"], "purge_after": ["archive"], "archive": {"dest": str(world.nas)},
        "compress": {"min_saving": "0%"} | compress,
    }, PIPELINE)  # fmt: skip
    return world


@pytest.mark.parametrize("generator", sorted(GENERATORS))
def test_a_video_copy_carries_comfyuis_prompt_and_workflow(tmp_path: Path, generator: str) -> None:
    """video_profile = "h264": the copy is a smaller H.264 MP4 under compress.dest, and inspect (ffprobe)
    reads the same generator, prompt, seed, steps and the same workflow from it."""
    world = video_world(tmp_path, {"video_profile": "h264"})
    source = lossless_mp4(tmp_path / "src.mp4", GENERATORS[generator])
    world.write("v.mp4", source.read_bytes())
    assert world.sync() == 0
    copy = world.library / ".mediasyncd/compressed/r1/v.mp4.mp4"
    assert copy.is_file() and copy.stat().st_size < source.stat().st_size
    assert video_record(copy) == video_record(source)
    assert video_record(copy)["generator"] == "comfyui"
    probe = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                            "stream=codec_name", "-of", "csv=p=0", str(copy)], capture_output=True, text=True,
                           check=True).stdout.strip()  # fmt: skip
    assert probe == "h264"
    assert not list(world.library.rglob("*.mediasyncd-partial"))


def test_a_video_replaces_the_library_file_under_the_same_name(tmp_path: Path) -> None:
    """keep_original = false with a profile whose container is the original's (mp4 -> mp4): the library
    file is replaced in place, the state DB records its new hash, the archive keeps the original."""
    world = video_world(tmp_path, {"video_profile": "h264", "video_crf": 30, "keep_original": False})
    source = lossless_mp4(tmp_path / "src.mp4", GENERATORS["savevideo"])
    world.write("v.mp4", source.read_bytes())
    assert world.sync() == 0
    library = world.library / "r1/v.mp4"
    assert library.stat().st_size < source.stat().st_size
    assert (world.nas / "r1/v.mp4").read_bytes() == source.read_bytes()
    with sqlite3.connect(world.state_dir / "state.db") as db:
        local, sha, lib_sha = db.execute("SELECT local_path, sha256, library_sha256 FROM files").fetchone()
    assert (local, sha, lib_sha) == ("r1/v.mp4", sha256_file(source), sha256_file(library))
    assert video_record(library) == video_record(source)


def test_videos_are_left_alone_without_a_profile(tmp_path: Path) -> None:
    """No video_profile: the video's compress stage is done without output, the file untouched."""
    world = video_world(tmp_path, {"keep_original": False})
    source = lossless_mp4(tmp_path / "src.mp4", GENERATORS["savevideo"])
    world.write("v.mp4", source.read_bytes())
    assert world.sync() == 0
    assert (world.library / "r1/v.mp4").read_bytes() == source.read_bytes()
    with sqlite3.connect(world.state_dir / "state.db") as db:
        state, output, error = db.execute(
            "SELECT state, output_path, last_error FROM file_stages WHERE stage = 'compress'"
        ).fetchone()
    assert (state, output, error) == ("done", None, None)
    assert not (world.library / ".mediasyncd/compressed").exists()


def test_profiles_build_the_ffmpeg_command(tmp_path: Path) -> None:
    """Each profile: its encoder, the CRF (given or default), tags copied, the muxer named explicitly;
    MP4 keeps tags of their own names."""
    for name, profile in PROFILES.items():
        command = ffmpeg_command("ffmpeg", Path("/in.mov"), Path("/.x.mediasyncd-partial"), profile, None)
        assert command[-3:] == ["-f", profile.muxer, "/.x.mediasyncd-partial"], name
        at = command.index("-map_metadata")
        assert command[at + 1] == "0"
        assert command[command.index("-crf") + 1] == str(profile.crf)
        assert ("+faststart+use_metadata_tags" in command) == (profile.muxer == "mp4")
    assert "17" in ffmpeg_command("ffmpeg", Path("/a"), Path("/b"), PROFILES["vp9"], 17)
    encoders = subprocess.run(["ffmpeg", "-hide_banner", "-encoders"], capture_output=True, text=True).stdout
    for profile in PROFILES.values():  # Debian's ffmpeg has every profile's encoders
        for encoder in (profile.video[1], profile.audio[1]):
            assert f" {encoder} " in encoders, encoder


def ffmpeg_writing(partial_name: str) -> list[int]:
    """PIDs of running processes whose command line names `partial_name`."""
    return processes(
        lambda argv: any(partial_name.encode() in a for a in argv) and argv[0].endswith(b"ffmpeg")
    )


def test_a_kill_9_mid_encode_leaves_no_ffmpeg_behind(tmp_path: Path) -> None:
    """`workflow run` killed -9 while ffmpeg writes the partial (a 30 s encode): ffmpeg dies with it
    within 2 s (no writer left on the partial) and the library file is untouched. (That the next run
    finishes a replacement is shown for images in test_faults.py and test_replace.py.)"""
    world = video_world(tmp_path, {"video_profile": "h264", "keep_original": False})
    replacing = tomllib.loads(world.config_path.read_text())["workflow"]
    set_workflow(world.config_path, replacing | {"stages": ["archive"]}, PIPELINE)  # land and archive first
    source = tmp_path / "long.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=640x480:rate=30:duration=30",
                    "-c:v", "libx264", "-preset", "ultrafast", "-qp", "0", "-metadata", f"prompt={PROMPT}",
                    "-movflags", "use_metadata_tags", str(source)], check=True)  # fmt: skip
    world.write("long.mp4", source.read_bytes())
    assert world.sync() == 0
    set_workflow(world.config_path, replacing, PIPELINE)
    library = world.library / "r1/long.mp4"
    partial = ".long.mp4.mediasyncd-partial"
    proc = subprocess.Popen([MEDIASYNCD, "workflow", "run", "--config", str(world.config_path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        wait_for(lambda: (world.library / "r1" / partial).is_file(), timeout=60, interval=0.05)
        assert ffmpeg_writing(partial)
    finally:
        proc.kill()
        proc.wait()
    wait_for(lambda: not ffmpeg_writing(partial), timeout=2, interval=0.05)
    assert library.read_bytes() == source.read_bytes()
    with sqlite3.connect(world.state_dir / "state.db") as db:
        assert db.execute("SELECT local_path, library_sha256 FROM files").fetchone() == ("r1/long.mp4", None)
