-- +goose Up
-- Every version of every route's policy is kept: the history is the audit log.
-- The primary key makes two writers of the same next version conflict.
CREATE TABLE routes (
    name       TEXT    NOT NULL,
    version    INTEGER NOT NULL,
    policy     BLOB    NOT NULL,
    actor      TEXT    NOT NULL DEFAULT '',
    comment    TEXT    NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    PRIMARY KEY (name, version)
);

-- +goose Down
DROP TABLE routes;
