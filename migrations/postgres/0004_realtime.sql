-- Registered topics, their history, per-app server keys. Mirrors migrations/sqlite/0004_realtime.sql;
-- topic_spill carries events too large for a NOTIFY payload to the other nodes.
CREATE TABLE topics (
    app                   TEXT NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
    name                  TEXT COLLATE "C" NOT NULL,
    external_subscribable BOOLEAN NOT NULL DEFAULT FALSE, -- true: browsers may subscribe over SSE
    auth_mode             TEXT NOT NULL CHECK (auth_mode IN ('public', 'token')),
    history_events        INTEGER,                      -- events kept for resume; NULL: the instance default
    history_seconds       INTEGER,                      -- how long they are kept; NULL: the instance default
    source                TEXT NOT NULL,                -- 'manifest' (kept in step with deployments) or 'api'
    last_seq              BIGINT NOT NULL DEFAULT 0,    -- the id of the newest event; ids count up from 1
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL,
    PRIMARY KEY (app, name)
);

CREATE TABLE topic_events (
    app          TEXT NOT NULL,
    topic        TEXT NOT NULL,
    seq          BIGINT NOT NULL,
    message      TEXT NOT NULL,                         -- JSON
    published_at BIGINT NOT NULL,
    PRIMARY KEY (app, topic, seq),
    FOREIGN KEY (app, topic) REFERENCES topics(app, name) ON DELETE CASCADE
);
CREATE INDEX topic_events_age ON topic_events(published_at);

CREATE TABLE topic_spill (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message      TEXT NOT NULL,
    published_at BIGINT NOT NULL
);

CREATE TABLE app_secrets (
    app        TEXT NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    sealed     BYTEA NOT NULL,                          -- AES-GCM under the master key
    created_at BIGINT NOT NULL,
    PRIMARY KEY (app, name)
);
