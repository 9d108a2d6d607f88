-- Realtime: registered topics, the recent events of each (so a reconnecting subscriber gets what it
-- missed), and per-app keys the server keeps for itself (the subscriber-token signing key).
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

CREATE TABLE topic_events (
    app          TEXT NOT NULL,
    topic        TEXT NOT NULL,
    seq          INTEGER NOT NULL,
    message      TEXT NOT NULL,                         -- JSON
    published_at INTEGER NOT NULL,
    PRIMARY KEY (app, topic, seq),
    FOREIGN KEY (app, topic) REFERENCES topics(app, name) ON DELETE CASCADE
) WITHOUT ROWID;
CREATE INDEX topic_events_age ON topic_events(published_at);

CREATE TABLE app_secrets (
    app        TEXT NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    sealed     BLOB NOT NULL,                           -- AES-GCM under the master key
    created_at INTEGER NOT NULL,
    PRIMARY KEY (app, name)
) WITHOUT ROWID;
