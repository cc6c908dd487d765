-- +goose Up
-- Background jobs (training runs). The record is the owner's JSON in bytea,
-- not jsonb, so it comes back byte for byte; the other columns are what
-- lists sort and filter on.
CREATE TABLE jobs (
    id         text COLLATE "C" PRIMARY KEY,
    kind       text             NOT NULL,
    status     text             NOT NULL,
    created_at timestamptz      NOT NULL,
    updated_at timestamptz      NOT NULL,
    record     bytea            NOT NULL
);
CREATE INDEX jobs_created ON jobs (created_at DESC, id);
CREATE INDEX jobs_status ON jobs (status, created_at DESC);

-- +goose Down
DROP TABLE jobs;
