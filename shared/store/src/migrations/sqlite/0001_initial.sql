-- Times are microseconds since the Unix epoch (UTC), so they sort as numbers
-- and read back exactly.
CREATE TABLE images (
    id               TEXT PRIMARY KEY,
    sha256           TEXT NOT NULL UNIQUE,
    source           TEXT NOT NULL,
    source_ref       TEXT,
    object_name      TEXT NOT NULL,
    content_type     TEXT NOT NULL,
    byte_size        INTEGER NOT NULL,
    width            INTEGER,
    height           INTEGER,
    status           TEXT NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'classified', 'rejected', 'failed')),
    category         TEXT CHECK (category IN ('cat', 'dog', 'other')),
    confidence       REAL,
    scores           TEXT,
    model_version    TEXT,
    attempts         INTEGER NOT NULL DEFAULT 0,
    last_error       TEXT,
    created_at       INTEGER NOT NULL,
    classified_at    INTEGER,
    published_at     INTEGER,
    thumbnail_object TEXT,
    thumbnail_width  INTEGER,
    thumbnail_height INTEGER,
    placeholder      TEXT,
    gallery_seq      INTEGER UNIQUE
);

-- Gallery pages per column, newest first, without a sort.
CREATE INDEX images_by_category ON images (category, gallery_seq DESC)
    WHERE gallery_seq IS NOT NULL;
-- The publish sweep and the counts by status.
CREATE INDEX images_by_status ON images (status, created_at);

-- One row: the numbers every listing needs, kept up to date by the writes
-- that change them, so no request counts the images table.
CREATE TABLE gallery_state (
    id             INTEGER PRIMARY KEY CHECK (id = 1),
    created_at     INTEGER NOT NULL,
    gallery_seq    INTEGER NOT NULL DEFAULT 0,
    cat_count      INTEGER NOT NULL DEFAULT 0,
    dog_count      INTEGER NOT NULL DEFAULT 0,
    other_count    INTEGER NOT NULL DEFAULT 0,
    last_ingest_at INTEGER,
    lease_holder   TEXT,
    lease_until    INTEGER
);
INSERT INTO gallery_state (id, created_at)
VALUES (1, CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER));

CREATE TABLE ingest_runs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at  INTEGER NOT NULL,
    finished_at INTEGER NOT NULL,
    fetched     INTEGER NOT NULL,
    stored      INTEGER NOT NULL,
    duplicates  INTEGER NOT NULL,
    published   INTEGER NOT NULL,
    errors      TEXT NOT NULL
);

CREATE TABLE source_status (
    name            TEXT PRIMARY KEY,
    last_error      TEXT,
    last_error_at   INTEGER,
    last_success_at INTEGER
);
