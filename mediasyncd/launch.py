"""The process entry (the console script and `python -m mediasyncd`): the cyclic GC is off while the
command's modules import, then `cli.entry` runs.

Start-up makes ~60,000 objects (modules, classes, functions) that live as long as the process; the
collections that their allocations trigger during the imports walk them for nothing: ~15 ms of the
~0.2 s that a `sync --once` spends importing (docs/benchmarks.md, issue 21). The command turns the GC
back on once its imports are done (`cli.main`: at once for most commands; a one-pass `sync` after it has
frozen its start-up objects out of the GC).
"""

from __future__ import annotations

import gc


def entry() -> None:
    gc.disable()
    from mediasyncd.cli import entry as run

    run()
