"""The scenario modules, in the order they run. Each is a module of bench/faults/ (see report.py)."""

from __future__ import annotations

SCENARIOS: tuple[str, ...] = (
    # data path (crash, link, disk, soak)
    "crash",
    "link",
    "disk",
    "soak",
    # security (hostile container, purge races, host keys, config, API)
    "hostile",
    "purge_race",
    "hostkeys",
    "config_fuzz",
    "api",
    # workflow stages (kill -9 during archive and compress, purge gated on them)
    "workflow",
)
