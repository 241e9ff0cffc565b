"""`mediasyncd doctor` (= `config check --connect`): after the config validates, check this machine
(library, state dir) and reach every remote through its Source (host key, roots, tools, python3, inotify,
free space, purge permission). `checks` decides (pure), `gather` collects and prints."""

from __future__ import annotations

from mediasyncd.doctor.gather import run_doctor

__all__ = ["run_doctor"]
