-- The same schema as SQLite's 0001, in PostgreSQL's own types: times are
-- timestamptz (kept to the microsecond, like our values, so they read back
-- exactly), ids are uuid, the classifier's scores are jsonb.
CREATE TABLE images (
    id               uuid PRIMARY KEY,
    sha256           text NOT NULL UNIQUE,
    source           text NOT NULL,
    source_ref       text,
    object_name      text NOT NULL,
    content_type     text NOT NULL,
    byte_size        bigint NOT NULL,
    width            integer,
    height           integer,
    status           text NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'classified', 'rejected', 'failed')),
    category         text CHECK (category IN ('cat', 'dog', 'other')),
    confidence       real,
    scores           jsonb,
    model_version    text,
    attempts         integer NOT NULL DEFAULT 0,
    last_error       text,
    created_at       timestamptz NOT NULL,
    classified_at    timestamptz,
    published_at     timestamptz,
    thumbnail_object text,
    thumbnail_width  integer,
    thumbnail_height integer,
    placeholder      text,
    -- Its unique index also serves the all-categories listing (scanned
    -- backwards for newest first).
    gallery_seq      bigint UNIQUE
);

-- Gallery pages per column, newest first, without a sort.
CREATE INDEX images_by_category ON images (category, gallery_seq DESC)
    WHERE gallery_seq IS NOT NULL;
-- The publish sweep and the counts by status.
CREATE INDEX images_by_status ON images (status, created_at);

-- One row: the numbers every listing needs, kept up to date by the writes
-- that change them, so no request counts the images table. Classification
-- increments gallery_seq here inside its transaction; the row lock this takes
-- is what makes gallery positions increase in commit order.
CREATE TABLE gallery_state (
    id             integer PRIMARY KEY CHECK (id = 1),
    created_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    gallery_seq    bigint NOT NULL DEFAULT 0,
    cat_count      bigint NOT NULL DEFAULT 0,
    dog_count      bigint NOT NULL DEFAULT 0,
    other_count    bigint NOT NULL DEFAULT 0,
    last_ingest_at timestamptz,
    lease_holder   text,
    lease_until    timestamptz
);
INSERT INTO gallery_state (id) VALUES (1);

CREATE TABLE ingest_runs (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    started_at  timestamptz NOT NULL,
    finished_at timestamptz NOT NULL,
    fetched     bigint NOT NULL,
    stored      bigint NOT NULL,
    duplicates  bigint NOT NULL,
    published   bigint NOT NULL,
    errors      jsonb NOT NULL
);

CREATE TABLE source_status (
    name            text PRIMARY KEY,
    last_error      text,
    last_error_at   timestamptz,
    last_success_at timestamptz
);
