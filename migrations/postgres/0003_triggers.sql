-- Triggers, the transactional outbox, dead letters, cron state. Mirrors
-- migrations/sqlite/0003_triggers.sql. Nodes claim outbox rows with FOR UPDATE SKIP LOCKED.
CREATE TABLE triggers (
    id              TEXT PRIMARY KEY,
    app             TEXT NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
    source          TEXT NOT NULL,              -- 'manifest' (replaced by each deployment) or 'api'
    kind            TEXT NOT NULL,              -- kv, docs, files, topic, cron, dead_letter
    config          TEXT NOT NULL,              -- JSON: what the trigger matches
    handler         TEXT NOT NULL,
    max_attempts    INTEGER NOT NULL,
    backoff_base_ms BIGINT NOT NULL,
    backoff_cap_ms  BIGINT NOT NULL,
    timeout_ms      BIGINT,
    created_at      BIGINT NOT NULL
);
CREATE INDEX triggers_app ON triggers(app);

CREATE TABLE outbox (
    id                BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id          TEXT NOT NULL,            -- stable across retries: handlers can be idempotent
    app               TEXT NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
    trigger_id        TEXT NOT NULL,
    kind              TEXT NOT NULL,
    handler           TEXT NOT NULL,
    event             TEXT NOT NULL,            -- JSON
    depth             INTEGER NOT NULL,         -- how many triggers led here (0: a request or cron)
    attempts          INTEGER NOT NULL DEFAULT 0,
    max_attempts      INTEGER NOT NULL,
    backoff_base_ms   BIGINT NOT NULL,
    backoff_cap_ms    BIGINT NOT NULL,
    timeout_ms        BIGINT,
    to_dead_letter    BOOLEAN NOT NULL,         -- true: this delivers to a dead_letter trigger (never dead-lettered itself)
    due_at            BIGINT NOT NULL,
    leased_until      BIGINT,                   -- NULL: free; a lease that ran out is free again
    lease_owner       TEXT,
    last_error        TEXT,
    created_at        BIGINT NOT NULL
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
    first_enqueued_at BIGINT NOT NULL,
    failed_at        BIGINT NOT NULL
);
CREATE INDEX dead_letters_app ON dead_letters(app, failed_at);

CREATE TABLE cron_state (
    trigger_id     TEXT PRIMARY KEY,
    app            TEXT NOT NULL REFERENCES apps(name) ON DELETE CASCADE,
    last_fired_at  BIGINT NOT NULL
);

-- Every transaction that adds outbox rows wakes the dispatchers of every node at its commit
-- (NOTIFY is transactional and one per transaction); a dispatcher also polls, as NOTIFY is lost
-- while a node is not listening.
CREATE FUNCTION picloud_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('picloud_outbox', '');
    RETURN NULL;
END;
$$;
CREATE TRIGGER outbox_notify AFTER INSERT ON outbox FOR EACH STATEMENT EXECUTE FUNCTION picloud_outbox_notify();
