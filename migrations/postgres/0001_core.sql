-- Apps, keys, deployments: the control plane. Mirrors migrations/sqlite/0001_core.sql.
-- Text that is sorted or range-scanned uses COLLATE "C" (byte order, as in SQLite), whatever
-- the database's locale.
CREATE TABLE apps (
    name            TEXT PRIMARY KEY,
    created_at      BIGINT NOT NULL,            -- ms since the epoch
    current_version INTEGER                     -- the deployment serving now, NULL before the first
);

CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    app          TEXT REFERENCES apps(name) ON DELETE CASCADE,   -- NULL: an instance key
    name         TEXT NOT NULL,
    prefix       TEXT NOT NULL,                 -- first characters, to recognise a key in lists
    hash         BYTEA NOT NULL UNIQUE,         -- SHA-256 of the whole key; the key itself is never stored
    scopes       TEXT NOT NULL,                 -- space-separated
    created_at   BIGINT NOT NULL
);
CREATE INDEX api_keys_app ON api_keys(app);

CREATE TABLE deployments (
    app        TEXT NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
    version    INTEGER NOT NULL,
    manifest   TEXT NOT NULL,                   -- picloud.toml as deployed
    files      TEXT NOT NULL,                   -- JSON object: path -> source
    created_at BIGINT NOT NULL,
    created_by TEXT,                            -- key id
    PRIMARY KEY (app, version)
);

-- Values every node of a cluster must agree on (a check value sealed with the master key).
CREATE TABLE cluster_settings (
    name       TEXT PRIMARY KEY,
    value      BYTEA NOT NULL,
    created_at BIGINT NOT NULL
);
