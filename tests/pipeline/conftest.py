from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mediasyncd.pipeline.options import PipelineOptions
from mediasyncd.pipeline.runner import Pipeline


@pytest.fixture
def library(tmp_path: Path) -> Path:
    root = tmp_path / "library"
    (root / "forge1" / "txt2img-images").mkdir(parents=True)
    return root


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "state.db"


@pytest.fixture
async def pipeline(library: Path, db_path: Path) -> AsyncIterator[Pipeline]:
    db_path.parent.mkdir(exist_ok=True)
    running = Pipeline(db_path, library, PipelineOptions(workers=2))
    yield running
    await running.aclose()


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
