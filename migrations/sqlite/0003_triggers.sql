-- Triggers, the transactional outbox, dead letters and cron state.
CREATE TABLE triggers (
    id              TEXT PRIMARY KEY,
    app             TEXT NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
    source          TEXT NOT NULL,              -- 'manifest' (replaced by each deployment) or 'api'
    kind            TEXT NOT NULL,              -- kv, docs, files, topic, cron, dead_letter
    config          TEXT NOT NULL,              -- JSON: what the trigger matches
    handler         TEXT NOT NULL,
    max_attempts    INTEGER NOT NULL,
    backoff_base_ms INTEGER NOT NULL,
    backoff_cap_ms  INTEGER NOT NULL,
    timeout_ms      INTEGER,
    created_at      INTEGER NOT NULL
);
CREATE INDEX triggers_app ON triggers(app);

-- One row per (event, trigger) waiting for delivery. Written in the same transaction as the change
-- that caused it; deleted when its handler succeeded.
CREATE TABLE outbox (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id          TEXT NOT NULL,            -- stable across retries: handlers can be idempotent
    app               TEXT NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
    trigger_id        TEXT NOT NULL,
    kind              TEXT NOT NULL,
    handler           TEXT NOT NULL,
    event             TEXT NOT NULL,            -- JSON
    depth             INTEGER NOT NULL,         -- how many triggers led here (0: a request or cron)
    attempts          INTEGER NOT NULL DEFAULT 0,
    max_attempts      INTEGER NOT NULL,
    backoff_base_ms   INTEGER NOT NULL,
    backoff_cap_ms    INTEGER NOT NULL,
    timeout_ms        INTEGER,
    to_dead_letter    INTEGER NOT NULL,         -- 1: this delivers to a dead_letter trigger (never dead-lettered itself)
    due_at            INTEGER NOT NULL,
    leased_until      INTEGER,                  -- NULL: free; a lease that ran out is free again
    lease_owner       TEXT,
    last_error        TEXT,
    created_at        INTEGER NOT NULL
);
CREATE INDEX outbox_due ON outbox(due_at, id);
CREATE INDEX outbox_app ON outbox(app, id);

CREATE TABLE dead_letters (
    id               TEXT PRIMARY KEY,
    app              TEXT NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
    event_id         TEXT NOT NULL,
    trigger_id       TEXT NOT NULL,
    kind             TEXT NOT NULL,
    handler          TEXT NOT NULL,
    event            TEXT NOT NULL,             -- the original event, JSON
    depth            INTEGER NOT NULL,
    attempts         INTEGER NOT NULL,
    last_error       TEXT NOT NULL,
    first_enqueued_at INTEGER NOT NULL,
    failed_at        INTEGER NOT NULL
);
CREATE INDEX dead_letters_app ON dead_letters(app, failed_at);

-- The last scheduled time each cron trigger fired for.
CREATE TABLE cron_state (
    trigger_id     TEXT PRIMARY KEY,
    app            TEXT NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
    last_fired_at  INTEGER NOT NULL
);
