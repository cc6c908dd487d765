-- +goose Up
-- Background jobs (training runs). The record is the owner's JSON, stored
-- byte for byte; the other columns are what lists sort and filter on.
CREATE TABLE jobs (
    id         TEXT    PRIMARY KEY,
    kind       TEXT    NOT NULL,
    status     TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    record     BLOB    NOT NULL
);
CREATE INDEX jobs_created ON jobs (created_at DESC, id);
CREATE INDEX jobs_status ON jobs (status, created_at DESC);

-- +goose Down
DROP TABLE jobs;
