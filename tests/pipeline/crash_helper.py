"""Run the pipeline over files one by one, announcing each, slowly enough to be killed in between.

Usage: python crash_helper.py STATE_DB LIBRARY FILE...
"""

from __future__ import annotations

import asyncio
import hashlib
import sys
from pathlib import Path

from mediasyncd.pipeline.options import PipelineOptions
from mediasyncd.pipeline.runner import Pipeline


async def main(db_path: Path, library: Path, files: list[Path]) -> None:
    pipeline = Pipeline(db_path, library, PipelineOptions(workers=1))
    for path in files:
        sha = hashlib.sha256(path.read_bytes()).hexdigest()
        await pipeline.process(path, sha, remote="forge1", rel=path.name)
        print(f"done {path.name}", file=sys.stderr, flush=True)
        await asyncio.sleep(0.5)
    await pipeline.aclose()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), Path(sys.argv[2]), [Path(arg) for arg in sys.argv[3:]]))
