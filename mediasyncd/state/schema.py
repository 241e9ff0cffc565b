"""The state DB's schema: one list of migrations, applied in order, each in its own transaction.

`PRAGMA user_version` holds how many have run. A migration is never edited once released: later ones
change what earlier ones made.
"""

from __future__ import annotations

from collections.abc import Sequence

from mediasyncd.state.events import EventType
from mediasyncd.state.lifecycle import LANDED, FileState, sql_set

_NOW = "((julianday('now') - 2440587.5) * 86400.0)"

MIGRATIONS: Sequence[str] = (
    # 1: files and their lifecycle
    """
    CREATE TABLE files (
        id INTEGER PRIMARY KEY,
        remote TEXT NOT NULL,
        root TEXT NOT NULL,
        rel TEXT NOT NULL,
        size INTEGER NOT NULL,
        mtime REAL NOT NULL,
        state TEXT NOT NULL,
        first_seen REAL NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        next_attempt REAL,
        sha256 TEXT,
        local_path TEXT,
        landing_path TEXT,
        landed_at REAL,
        purged_at REAL,
        current INTEGER NOT NULL DEFAULT 1
    );
    CREATE UNIQUE INDEX files_current ON files(remote, root, rel) WHERE current = 1;
    CREATE INDEX files_state ON files(state, remote);
    """,
    # 2: purge runs and per-file purge bookkeeping (mediasyncd.purge)
    """
    CREATE TABLE purge_runs (
        id INTEGER PRIMARY KEY,
        remote TEXT NOT NULL,
        source TEXT NOT NULL,
        dry_run INTEGER NOT NULL,
        started_at REAL NOT NULL,
        finished_at REAL,
        outcome TEXT,
        error TEXT,
        deleted_files INTEGER NOT NULL DEFAULT 0,
        freed_bytes INTEGER NOT NULL DEFAULT 0,
        kept TEXT NOT NULL DEFAULT '{}',
        deleted_locally INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX purge_runs_remote ON purge_runs(remote, source, started_at);
    ALTER TABLE files ADD COLUMN purge_reason TEXT;
    ALTER TABLE files ADD COLUMN purge_run INTEGER;
    CREATE INDEX files_purge_run ON files(purge_run) WHERE purge_run IS NOT NULL;
    """,
    # 3: local retention (mediasyncd.purge): library copies removed by `[purge] local_retention`, per run
    f"""
    ALTER TABLE files ADD COLUMN library_expired_at REAL;
    CREATE INDEX files_retention ON files(remote, landed_at)
        WHERE state = '{FileState.PURGED}' AND library_expired_at IS NULL;
    CREATE INDEX files_local_path ON files(local_path) WHERE local_path IS NOT NULL;
    CREATE INDEX files_sha256 ON files(sha256) WHERE local_path IS NOT NULL;
    ALTER TABLE purge_runs ADD COLUMN library_deleted_files INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE purge_runs ADD COLUMN library_freed_bytes INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE purge_runs ADD COLUMN library_kept TEXT NOT NULL DEFAULT '{{}}';
    """,
    # 4: the event log (SPEC §3.7) and the positions its consumers acknowledged; one back-filled
    # file_synced (and file_processed) per file landed before the log existed, stamped with the time of
    # the migration (the retention counts from when an event was written).
    f"""
    CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        type TEXT NOT NULL,
        time REAL NOT NULL,
        remote TEXT,
        path TEXT,
        sync_id TEXT,
        data TEXT NOT NULL
    );
    CREATE INDEX events_type ON events(type, id);
    CREATE INDEX events_time ON events(time);
    CREATE TABLE consumers (
        name TEXT PRIMARY KEY,
        acked_id INTEGER NOT NULL DEFAULT 0,
        enabled INTEGER NOT NULL DEFAULT 1,
        updated_at REAL NOT NULL
    );
    INSERT INTO events (type, time, remote, path, sync_id, data)
        SELECT '{EventType.FILE_SYNCED}', {_NOW}, remote, rel, NULL,
               json_object('file_id', id, 'sha256', sha256, 'size', size, 'mtime', mtime,
                           'library_path', local_path, 'landed_at', landed_at, 'backfill', json('true'))
        FROM files WHERE state IN {sql_set(LANDED)} AND local_path IS NOT NULL
        ORDER BY COALESCE(landed_at, first_seen), id;
    INSERT INTO events (type, time, remote, path, sync_id, data)
        SELECT '{EventType.FILE_PROCESSED}', {_NOW}, remote, rel, NULL,
               json_object('file_id', id, 'sha256', sha256, 'library_path', local_path, 'backfill', json('true'))
        FROM files WHERE state = '{FileState.PROCESSED}' AND local_path IS NOT NULL
        ORDER BY COALESCE(landed_at, first_seen), id;
    """,
    # 5: the media pipeline's catalog (stage progress, records, search index), until now created by the
    # pipeline itself: IF NOT EXISTS adopts the tables an earlier version made.
    """
CREATE TABLE IF NOT EXISTS pipeline_stages (
    path       TEXT NOT NULL,
    sha256     TEXT NOT NULL,
    stage      TEXT NOT NULL,
    status     TEXT NOT NULL CHECK (status IN ('pending', 'running', 'done', 'skipped', 'error')),
    detail     TEXT,
    runs       INTEGER NOT NULL DEFAULT 0,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (path, sha256, stage)
);
CREATE TABLE IF NOT EXISTS media (
    path            TEXT PRIMARY KEY,
    sha256          TEXT NOT NULL,
    remote          TEXT,
    rel             TEXT,
    generator       TEXT,
    prompt          TEXT,
    negative_prompt TEXT,
    model           TEXT,
    record          TEXT NOT NULL,
    error           TEXT,
    sidecar         TEXT,
    thumbnail       TEXT,
    updated_at      TEXT NOT NULL
);
CREATE VIRTUAL TABLE IF NOT EXISTS media_fts USING fts5(
    path, prompt, negative_prompt, model, generator,
    tokenize = 'unicode61 remove_diacritics 2'
);
""",
    # 6: whether the media pipeline is done with a file, apart from its remote lifecycle (a file purged
    # from the remote before the pipeline reached it is still processed); copies already expired from the
    # library get their `file_expired` in the log, as if it had existed then.
    f"""
    ALTER TABLE files ADD COLUMN processed_at REAL;
    UPDATE files SET processed_at = COALESCE(landed_at, first_seen) WHERE state = '{FileState.PROCESSED}'
        OR (local_path IS NOT NULL AND EXISTS
            (SELECT 1 FROM media WHERE media.path = files.local_path AND media.sha256 = files.sha256));
    CREATE INDEX files_unprocessed ON files(id) WHERE local_path IS NOT NULL AND processed_at IS NULL;
    INSERT INTO events (type, time, remote, path, sync_id, data)
        SELECT '{EventType.FILE_EXPIRED}', {_NOW}, remote, rel, NULL,
               json_object('file_id', id, 'sha256', sha256, 'library_path', local_path, 'size', size,
                           'backfill', json('true'))
        FROM files WHERE library_expired_at IS NOT NULL AND local_path IS NOT NULL
            AND id IN (SELECT json_extract(data, '$.file_id') FROM events
                       WHERE type = '{EventType.FILE_SYNCED}' AND json_extract(data, '$.backfill'))
        ORDER BY library_expired_at, id;
    """,
    # 7: sinks (SPEC §3.7): back-filled events addressed to one sink only (`sink`), each sink's own state
    # (created = back-filled; a 410 that disabled it; requests of `events replay|retry` to the daemon) and
    # the events a sink rejected ("poison": retried, then parked, with a copy of the envelope, which the
    # retention may drop from the log once the sink moved past it).
    """
    ALTER TABLE events ADD COLUMN sink TEXT;
    CREATE INDEX events_sink ON events(sink, id) WHERE sink IS NOT NULL;
    CREATE TABLE sink_state (
        name TEXT PRIMARY KEY,
        created_at REAL NOT NULL,
        gone_fingerprint TEXT,
        gone_reason TEXT,
        rewind_to INTEGER,
        requeued INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE sink_rejects (
        sink TEXT NOT NULL,
        event_id INTEGER NOT NULL,
        envelope TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        error TEXT,
        parked INTEGER NOT NULL DEFAULT 0,
        updated_at REAL NOT NULL,
        PRIMARY KEY (sink, event_id)
    );
    """,
    # 8: workflow stages (SPEC §3.8): one row per landed file version and stage, with its state
    # (pending, waiting, running, done, failed), attempts, last error and its verified output.
    """
    CREATE TABLE file_stages (
        file_id INTEGER NOT NULL REFERENCES files(id),
        stage TEXT NOT NULL,
        state TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        output_path TEXT,
        output_sha256 TEXT,
        started_at REAL,
        finished_at REAL,
        updated_at REAL NOT NULL,
        PRIMARY KEY (file_id, stage)
    );
    CREATE INDEX file_stages_state ON file_stages(stage, state);
    """,
    # 9 (issue 19, "search filters"): what `mediasyncd search` and GET /api/v1/files?q= filter on, as
    # columns of `media`, filled from the records already stored. The seed is TEXT (seeds reach 2**64);
    # `loras` holds the LoRA names one per line. `file_size`/`file_mtime_ns` are the library file's when
    # it was processed, so the start-up audit sees files replaced or deleted outside mediasyncd.
    """
    ALTER TABLE media ADD COLUMN file_size INTEGER;
    ALTER TABLE media ADD COLUMN file_mtime_ns INTEGER;
    ALTER TABLE media ADD COLUMN seed TEXT;
    ALTER TABLE media ADD COLUMN steps INTEGER;
    ALTER TABLE media ADD COLUMN cfg REAL;
    ALTER TABLE media ADD COLUMN sampler TEXT;
    ALTER TABLE media ADD COLUMN scheduler TEXT;
    ALTER TABLE media ADD COLUMN loras TEXT;
    ALTER TABLE media ADD COLUMN width INTEGER;
    ALTER TABLE media ADD COLUMN height INTEGER;
    UPDATE media SET
        seed = CAST(json_extract(record, '$.seed') AS TEXT),
        steps = json_extract(record, '$.steps'),
        cfg = json_extract(record, '$.cfg'),
        sampler = json_extract(record, '$.sampler'),
        scheduler = json_extract(record, '$.scheduler'),
        loras = (SELECT group_concat(json_extract(value, '$.name'), char(10))
                 FROM json_each(media.record, '$.loras')),
        width = json_extract(record, '$.width'),
        height = json_extract(record, '$.height')
    WHERE json_valid(record) AND json_type(record) = 'object';
    """,
    # 10: the library's files newest first (GET /api/v1/files, the dashboard's gallery) without sorting
    # the whole table on the state DB's one thread.
    """
    CREATE INDEX files_newest ON files(COALESCE(landed_at, first_seen), id) WHERE local_path IS NOT NULL;
    """,
    # 11 (issue 20, compress with keep_original = false): the SHA-256 of the library copy when a workflow
    # stage replaced it with a re-encoded file (NULL: the library copy is the landed file, `sha256`).
    # `sha256` stays the hash verified at landing: what the remote and the archived original hold.
    # `file_stages.replaced_path`: the library path a replacing stage is taking over (its intent, recorded
    # before it touches the library, so that a restart after kill -9 finishes or rolls back).
    """
    ALTER TABLE files ADD COLUMN library_sha256 TEXT;
    ALTER TABLE file_stages ADD COLUMN replaced_path TEXT;
    """,
)
