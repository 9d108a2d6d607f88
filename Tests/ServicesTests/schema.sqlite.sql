CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    app          TEXT REFERENCES apps(name) ON DELETE CASCADE,   -- NULL: an instance key
    name         TEXT NOT NULL,
    prefix       TEXT NOT NULL,                 -- first characters, to recognise a key in lists
    hash         BLOB NOT NULL UNIQUE,          -- SHA-256 of the whole key; the key itself is never stored
    scopes       TEXT NOT NULL,                 -- space-separated
    created_at   INTEGER NOT NULL
);
CREATE TABLE app_secrets (
    app        TEXT NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    sealed     BLOB NOT NULL,                           -- AES-GCM under the master key
    created_at INTEGER NOT NULL,
    PRIMARY KEY (app, name)
) WITHOUT ROWID;
CREATE TABLE apps (
    name            TEXT PRIMARY KEY,
    created_at      INTEGER NOT NULL,           -- ms since the epoch
    current_version INTEGER                     -- the deployment serving now, NULL before the first
);
CREATE TABLE cron_state (
    trigger_id     TEXT PRIMARY KEY,
    app            TEXT NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
    last_fired_at  INTEGER NOT NULL
);
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
CREATE TABLE deployments (
    app        TEXT NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
    version    INTEGER NOT NULL,
    manifest   TEXT NOT NULL,                   -- picloud.toml as deployed
    files      TEXT NOT NULL,                   -- JSON object: path -> source
    created_at INTEGER NOT NULL,
    created_by TEXT,                            -- key id
    PRIMARY KEY (app, version)
);
CREATE TABLE doc_indexes (
    app        TEXT NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
    collection TEXT NOT NULL,
    field      TEXT NOT NULL,
    PRIMARY KEY (app, collection, field)
);
CREATE TABLE docs (
    app        TEXT NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
    collection TEXT NOT NULL,
    id         TEXT NOT NULL,
    body       TEXT NOT NULL,                   -- JSON object
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (app, collection, id)
);
CREATE TABLE files (
    app          TEXT NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
    path         TEXT NOT NULL,
    blob         TEXT NOT NULL,                 -- SHA-256 (hex) of the content, its name on disk
    size         INTEGER NOT NULL,
    content_type TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (app, path)
) WITHOUT ROWID;
CREATE TABLE kv (
    app        TEXT NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
    key        TEXT NOT NULL,
    value      TEXT NOT NULL,                   -- JSON
    expires_at INTEGER,                         -- ms; NULL = never
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (app, key)
) WITHOUT ROWID;
CREATE TABLE logs (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    app        TEXT NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
    at         INTEGER NOT NULL,
    level      TEXT NOT NULL,
    message    TEXT NOT NULL,
    request_id TEXT
);
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
CREATE TABLE schema_migrations (
    version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL);
CREATE TABLE secrets (
    app        TEXT NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    sealed     BLOB NOT NULL,                   -- AES-GCM nonce + ciphertext + tag
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (app, name)
) WITHOUT ROWID;
CREATE TABLE topic_events (
    app          TEXT NOT NULL,
    topic        TEXT NOT NULL,
    seq          INTEGER NOT NULL,
    message      TEXT NOT NULL,                         -- JSON
    published_at INTEGER NOT NULL,
    PRIMARY KEY (app, topic, seq),
    FOREIGN KEY (app, topic) REFERENCES topics(app, name) ON DELETE CASCADE
) WITHOUT ROWID;
CREATE TABLE topics (
    app                   TEXT NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
    name                  TEXT NOT NULL,
    external_subscribable INTEGER NOT NULL DEFAULT 0,   -- 1: browsers may subscribe over SSE
    auth_mode             TEXT NOT NULL CHECK (auth_mode IN ('public', 'token')),
    history_events        INTEGER,                      -- events kept for resume; NULL: the instance default
    history_seconds       INTEGER,                      -- how long they are kept; NULL: the instance default
    source                TEXT NOT NULL,                -- 'manifest' (kept in step with deployments) or 'api'
    last_seq              INTEGER NOT NULL DEFAULT 0,   -- the id of the newest event; ids count up from 1
    created_at            INTEGER NOT NULL,
    updated_at            INTEGER NOT NULL,
    PRIMARY KEY (app, name)
) WITHOUT ROWID;
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
CREATE INDEX api_keys_app ON api_keys(app);
CREATE INDEX dead_letters_app ON dead_letters(app, failed_at);
CREATE INDEX kv_expiry ON kv(expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX logs_app ON logs(app, id);
CREATE INDEX outbox_app ON outbox(app, id);
CREATE INDEX outbox_due ON outbox(due_at, id);
CREATE INDEX topic_events_age ON topic_events(published_at);
CREATE INDEX triggers_app ON triggers(app)
