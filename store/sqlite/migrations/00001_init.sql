-- +goose Up
-- Times are unix microseconds (UTC); durations are nanoseconds.
CREATE TABLE records (
    seq               INTEGER PRIMARY KEY,
    id                TEXT    NOT NULL UNIQUE,
    created_at        INTEGER NOT NULL,
    project           TEXT    NOT NULL DEFAULT '',
    key_id            TEXT    NOT NULL DEFAULT '',
    endpoint          TEXT    NOT NULL DEFAULT '',
    route             TEXT    NOT NULL DEFAULT '',
    provider          TEXT    NOT NULL DEFAULT '',
    model             TEXT    NOT NULL DEFAULT '',
    stream            INTEGER NOT NULL DEFAULT 0,
    status            INTEGER NOT NULL DEFAULT 0,
    error             TEXT    NOT NULL DEFAULT '',
    request           BLOB,
    response          BLOB,
    latency_ns        INTEGER NOT NULL DEFAULT 0,
    ttft_ns           INTEGER NOT NULL DEFAULT 0,
    prompt_tokens     INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    usage_estimated   INTEGER NOT NULL DEFAULT 0,
    cost_usd          REAL    NOT NULL DEFAULT 0,
    end_user          TEXT    NOT NULL DEFAULT '',
    tags              TEXT,     -- JSON array as captured; record_tags is what filters read
    metadata          TEXT,     -- JSON object of strings, filtered with json_each
    parent_id         TEXT    NOT NULL DEFAULT '',
    attempts          INTEGER NOT NULL DEFAULT 0
);
-- Every filter index ends in created_at so a filtered page is read newest-first
-- from the index. project and end_user are mostly empty: partial indexes skip
-- those rows, and queries repeat the "<> ''" term so the planner can use them.
CREATE INDEX records_created_at ON records (created_at, id);
CREATE INDEX records_project ON records (project, created_at) WHERE project <> '';
CREATE INDEX records_route ON records (route, created_at);
CREATE INDEX records_model ON records (model, created_at);
CREATE INDEX records_provider ON records (provider, created_at);
CREATE INDEX records_status ON records (status, created_at);
CREATE INDEX records_end_user ON records (end_user, created_at) WHERE end_user <> '';

-- created_at is copied from the record so a tag filter can walk one tag's
-- records newest-first straight from this table's primary key.
CREATE TABLE record_tags (
    tag        TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    record_seq INTEGER NOT NULL REFERENCES records (seq) ON DELETE CASCADE,
    PRIMARY KEY (tag, created_at, record_seq)
) WITHOUT ROWID;
CREATE INDEX record_tags_record ON record_tags (record_seq);

CREATE TABLE feedback (
    seq        INTEGER PRIMARY KEY,
    request_id TEXT    NOT NULL REFERENCES records (id) ON DELETE CASCADE,
    score      REAL,
    label      TEXT    NOT NULL DEFAULT '',
    comment    TEXT    NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL
);
CREATE INDEX feedback_request ON feedback (request_id, created_at, seq);

CREATE TABLE keys (
    id           TEXT    PRIMARY KEY,
    name         TEXT    NOT NULL DEFAULT '',
    project      TEXT    NOT NULL DEFAULT '',
    prefix       TEXT    NOT NULL DEFAULT '',
    hash         TEXT    NOT NULL UNIQUE,
    created_at   INTEGER NOT NULL,
    revoked_at   INTEGER,
    last_used_at INTEGER
);
CREATE INDEX keys_project ON keys (project, created_at);

-- +goose Down
DROP TABLE keys;
DROP TABLE feedback;
DROP TABLE record_tags;
DROP TABLE records;
