-- The data services: kv, docs, files (metadata; contents are blobs on disk), logs, secrets.
CREATE TABLE kv (
    app        TEXT NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
    key        TEXT NOT NULL,
    value      TEXT NOT NULL,                   -- JSON
    expires_at INTEGER,                         -- ms; NULL = never
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (app, key)
) WITHOUT ROWID;
CREATE INDEX kv_expiry ON kv(expires_at) WHERE expires_at IS NOT NULL;

CREATE TABLE docs (
    app        TEXT NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
    collection TEXT NOT NULL,
    id         TEXT NOT NULL,
    body       TEXT NOT NULL,                   -- JSON object
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (app, collection, id)
); -- a rowid table: SQLite's planner then picks the expression indexes below even without statistics

-- Fields the manifests declare as indexed; each has an expression index on docs.
CREATE TABLE doc_indexes (
    app        TEXT NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
    collection TEXT NOT NULL,
    field      TEXT NOT NULL,
    PRIMARY KEY (app, collection, field)
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

CREATE TABLE logs (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    app        TEXT NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
    at         INTEGER NOT NULL,
    level      TEXT NOT NULL,
    message    TEXT NOT NULL,
    request_id TEXT
);
CREATE INDEX logs_app ON logs(app, id);

CREATE TABLE secrets (
    app        TEXT NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    sealed     BLOB NOT NULL,                   -- AES-GCM nonce + ciphertext + tag
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (app, name)
) WITHOUT ROWID;
