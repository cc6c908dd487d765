-- +goose Up
-- Request and response bodies are bytea, not jsonb: they must come back byte
-- for byte, and one malformed upstream body must not fail a whole batch.
-- Ids collate as bytes ("C"), whatever the database's locale, so pages break
-- created_at ties in the same order as SQLite does.
CREATE TABLE records (
    id                text COLLATE "C" PRIMARY KEY,
    created_at        timestamptz      NOT NULL,
    project           text             NOT NULL DEFAULT '',
    key_id            text             NOT NULL DEFAULT '',
    endpoint          text             NOT NULL DEFAULT '',
    route             text             NOT NULL DEFAULT '',
    provider          text             NOT NULL DEFAULT '',
    model             text             NOT NULL DEFAULT '',
    stream            boolean          NOT NULL DEFAULT false,
    status            integer          NOT NULL DEFAULT 0,
    error             text             NOT NULL DEFAULT '',
    request           bytea,
    response          bytea,
    latency_ns        bigint           NOT NULL DEFAULT 0,
    ttft_ns           bigint           NOT NULL DEFAULT 0,
    prompt_tokens     bigint           NOT NULL DEFAULT 0,
    completion_tokens bigint           NOT NULL DEFAULT 0,
    usage_estimated   boolean          NOT NULL DEFAULT false,
    cost_usd          double precision NOT NULL DEFAULT 0,
    end_user          text             NOT NULL DEFAULT '',
    tags              text[],
    metadata          jsonb,
    parent_id         text             NOT NULL DEFAULT '',
    attempts          integer          NOT NULL DEFAULT 0
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
CREATE INDEX records_tags ON records USING gin (tags);
CREATE INDEX records_metadata ON records USING gin (metadata jsonb_path_ops);

CREATE TABLE feedback (
    id         bigint           GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    request_id text COLLATE "C" NOT NULL REFERENCES records (id) ON DELETE CASCADE,
    score      double precision,
    label      text             NOT NULL DEFAULT '',
    comment    text             NOT NULL DEFAULT '',
    created_at timestamptz      NOT NULL
);
CREATE INDEX feedback_request ON feedback (request_id, created_at DESC, id DESC);

CREATE TABLE keys (
    id           text        PRIMARY KEY,
    name         text        NOT NULL DEFAULT '',
    project      text        NOT NULL DEFAULT '',
    prefix       text        NOT NULL DEFAULT '',
    hash         text        NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL,
    revoked_at   timestamptz,
    last_used_at timestamptz
);
CREATE INDEX keys_project ON keys (project, created_at);

-- +goose Down
DROP TABLE keys;
DROP TABLE feedback;
DROP TABLE records;
