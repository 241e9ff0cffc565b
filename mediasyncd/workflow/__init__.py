"""Workflow stages (SPEC §3.8): what happens to a landed file after the media pipeline — a verified
archive copy, a re-encode (a copy, or replacing the library file) and a Syncthing hand-off — each
recorded per file in the state DB, each done announced by a `file_staged` event, and purge gated on
them (`[workflow] purge_after`).

Each stage lives in its own module and registers by name in `registry`; `runner.Workflow` runs the
configured ones in order.
"""
