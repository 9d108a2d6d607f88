-- kv, docs, files, logs, secrets. Mirrors migrations/sqlite/0002_data.sql; file contents live
-- here too (file_blobs), so that every node reads what any node wrote.
CREATE TABLE kv (
    app        TEXT NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
    key        TEXT COLLATE "C" NOT NULL,
    value      TEXT NOT NULL,                   -- JSON
    expires_at BIGINT,                          -- ms; NULL = never
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (app, key)
);
CREATE INDEX kv_expiry ON kv(expires_at) WHERE expires_at IS NOT NULL;

CREATE TABLE docs (
    app        TEXT NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
    collection TEXT NOT NULL,
    id         TEXT COLLATE "C" NOT NULL,
    body       TEXT NOT NULL,                   -- JSON object, as written; queried as body::jsonb
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (app, collection, id)
);

CREATE TABLE doc_indexes (
    app        TEXT NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
    collection TEXT NOT NULL,
    field      TEXT NOT NULL,
    PRIMARY KEY (app, collection, field)
);

CREATE TABLE files (
    app          TEXT NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
    path         TEXT COLLATE "C" NOT NULL,
    blob         TEXT NOT NULL,                 -- SHA-256 (hex) of the content
    size         BIGINT NOT NULL,
    content_type TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    PRIMARY KEY (app, path)
);

CREATE TABLE file_blobs (
    app        TEXT NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
    blob       TEXT NOT NULL,                   -- SHA-256 (hex) of content
    content    BYTEA NOT NULL,
    written_at BIGINT NOT NULL,                 -- refreshed when the same content is written again
    PRIMARY KEY (app, blob)
);

CREATE TABLE logs (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    app        TEXT NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
    at         BIGINT NOT NULL,
    level      TEXT NOT NULL,
    message    TEXT NOT NULL,
    request_id TEXT
);
CREATE INDEX logs_app ON logs(app, id);

CREATE TABLE secrets (
    app        TEXT NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    sealed     BYTEA NOT NULL,                  -- AES-GCM nonce + ciphertext + tag
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (app, name)
);
