-- +goose Up
-- Every version of every route's policy is kept: the history is the audit log.
-- The primary key makes two writers of the same next version conflict.
-- The policy is bytea, not jsonb, so it comes back byte for byte.
CREATE TABLE routes (
    name       text COLLATE "C" NOT NULL,
    version    integer          NOT NULL,
    policy     bytea            NOT NULL,
    actor      text             NOT NULL DEFAULT '',
    comment    text             NOT NULL DEFAULT '',
    created_at timestamptz      NOT NULL,
    PRIMARY KEY (name, version)
);

-- +goose Down
DROP TABLE routes;
