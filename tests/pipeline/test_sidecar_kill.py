"""A sidecar write killed with SIGKILL leaves nothing beside the image (found by `python -m bench.faults
--only crash`: a `.<image>.xmp.<random>.tmp` stayed in the library folder after a kill -9 during pipeline
work). The temporary lives under the library's `.mediasyncd/tmp` and the next start sweeps it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from mediasyncd.pipeline.work import TEMP_DIR
from mediasyncd.pipeline.xmp import sweep_temps

# Writes a sidecar whose fsync never returns, so the kill lands between the temporary's creation and
# its rename, the window a real kill -9 can hit.
WRITER = """
import os, sys, time
from pathlib import Path
from mediasyncd.pipeline import xmp
os.fsync = lambda fd: (print("writing", flush=True), time.sleep(60))
library, image = Path(sys.argv[1]), Path(sys.argv[2])
xmp.write_sidecar(image.with_name(image.name + ".xmp"), "<x/>", 0o644, library / sys.argv[3])
"""


def test_a_sidecar_write_killed_mid_way_leaves_nothing_beside_the_image(tmp_path: Path) -> None:
    library = tmp_path / "library"
    folder = library / "r1" / "day"
    folder.mkdir(parents=True)
    image = folder / "00001-1.png"
    image.write_bytes(b"png")
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(library), str(image), str(TEMP_DIR)], stdout=subprocess.PIPE
    )
    assert proc.stdout is not None and proc.stdout.readline() == b"writing\n"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    assert sorted(p.name for p in folder.iterdir()) == ["00001-1.png"]
    left = list((library / TEMP_DIR).iterdir())
    assert len(left) == 1 and left[0].name.endswith(".tmp")
    assert sweep_temps(str(library / TEMP_DIR)) == 0  # young: it may be a write in progress
    old = time.time() - 3600
    os.utime(left[0], (old, old))
    assert sweep_temps(str(library / TEMP_DIR)) == 1
    assert list((library / TEMP_DIR).iterdir()) == []
