"""The media pipeline reads the event log: files that landed while it was not running (a kill -9 between
landing and processing looks the same) are processed from the log later, each once."""

from __future__ import annotations

import json
import os
import random
import subprocess
from pathlib import Path
from typing import Any

from mediasyncd.demo.images import write_forge_image
from tests.helpers import MEDIASYNCD, OLD, Env, make_env, once
from tests.sshd import SshServer


def test_files_landed_without_the_pipeline_are_processed_from_the_log(
    tmp_path: Path, sshd: SshServer
) -> None:
    """Three images land with the pipeline off; with it on, a pass with nothing new processes exactly
    those three (state processed, one `file_processed` event each, with the prompt), and a further pass
    processes nothing again."""
    env = make_env(tmp_path, sshd, settle="0s")
    rng = random.Random(3)
    for index in range(3):
        image = write_forge_image(env.remote_root, index, rng, size=64)
        os.utime(image, (OLD, OLD))
    assert once(env) == 0
    assert env.rows("SELECT DISTINCT state FROM files") == [("landed",)]
    env.config_path.write_text(env.config_path.read_text().replace("enabled = false", "enabled = true"))
    assert once(env) == 0
    assert env.rows("SELECT DISTINCT state FROM files") == [("processed",)]
    processed = _events(env, "file_processed")
    assert len(processed) == 3
    assert all(e["data"]["prompt"] and e["data"]["generator"] for e in processed)
    assert {e["data"]["file_id"] for e in processed} == {r[0] for r in env.rows("SELECT id FROM files")}
    assert once(env) == 0
    assert len(_events(env, "file_processed")) == 3


def _events(env: Env, kind: str) -> list[dict[str, Any]]:
    out = subprocess.run(
        [MEDIASYNCD, "events", "--json", "--type", kind, "--config", str(env.config_path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [json.loads(line) for line in out.splitlines()]
