-- How many pictures each status holds, kept as the rows change, so that
-- /api/v1/stats reads four rows instead of counting the whole table (a
-- million rows cost 286 ms of database CPU per count; each list-images
-- instance renders stats at most once a second, but every instance does).
--
-- Triggers keep the counts, so no statement that changes a status can
-- forget them: inserts, verdicts, refusals, the sweeps' bulk updates, retries
-- and deletions all go through it, in the transaction that makes the change.
-- It locks the rows it moves in one fixed order (by status name), so two
-- transactions moving pictures between the same statuses in opposite
-- directions (a give-up and a retry) wait for each other instead of
-- deadlocking. Writers (catdog_writer) update the table under the default
-- privileges migration 0003 set; deletions are the owner's.
--
-- The images table is locked against writes while the counts are taken and
-- the trigger made (this migration's transaction), so an instance of the
-- previous release writing during a deploy cannot slip a change between the
-- two. No CHECK (n >= 0): were a count ever wrong, a wrong number in the
-- stats is better than refusing the verdict that would take it below zero.
LOCK TABLE images IN SHARE ROW EXCLUSIVE MODE;

CREATE TABLE status_counts (
    status  text PRIMARY KEY CHECK (status IN ('pending', 'classified', 'rejected', 'failed')),
    n       bigint NOT NULL
);

INSERT INTO status_counts (status, n)
SELECT s.status, (SELECT count(*) FROM images WHERE images.status = s.status)
FROM (VALUES ('pending'), ('classified'), ('rejected'), ('failed')) AS s (status);

-- Statement triggers with transition tables: one bulk statement (a sweep,
-- a seeded benchmark's million rows) moves each count once, where a row
-- trigger would update the same counter row once per picture, each time
-- walking the versions that transaction already made of it.
CREATE FUNCTION catdog_count_statuses() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    moved record;
BEGIN
    -- Each branch names only the transition tables its trigger declares;
    -- PL/pgSQL plans a statement when it first runs, so the others are
    -- never looked up.
    IF TG_OP = 'INSERT' THEN
        FOR moved IN
            SELECT status, count(*) AS delta FROM added GROUP BY status ORDER BY status
        LOOP
            UPDATE status_counts SET n = n + moved.delta WHERE status = moved.status;
        END LOOP;
    ELSIF TG_OP = 'DELETE' THEN
        FOR moved IN
            SELECT status, -count(*) AS delta FROM removed GROUP BY status ORDER BY status
        LOOP
            UPDATE status_counts SET n = n + moved.delta WHERE status = moved.status;
        END LOOP;
    ELSE
        FOR moved IN
            SELECT status, sum(delta) AS delta
            FROM (
                SELECT r.status, -1 AS delta
                FROM removed r JOIN added a USING (id) WHERE a.status <> r.status
                UNION ALL
                SELECT a.status, 1
                FROM removed r JOIN added a USING (id) WHERE a.status <> r.status
            ) AS changes
            GROUP BY status HAVING sum(delta) <> 0 ORDER BY status
        LOOP
            UPDATE status_counts SET n = n + moved.delta WHERE status = moved.status;
        END LOOP;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER images_inserted_counted
AFTER INSERT ON images REFERENCING NEW TABLE AS added
FOR EACH STATEMENT EXECUTE FUNCTION catdog_count_statuses();

CREATE TRIGGER images_updated_counted
AFTER UPDATE ON images REFERENCING OLD TABLE AS removed NEW TABLE AS added
FOR EACH STATEMENT EXECUTE FUNCTION catdog_count_statuses();

CREATE TRIGGER images_deleted_counted
AFTER DELETE ON images REFERENCING OLD TABLE AS removed
FOR EACH STATEMENT EXECUTE FUNCTION catdog_count_statuses();

-- The relabelled pictures, counted by /api/v1/stats too: few, so a partial
-- index makes the count read only them.
CREATE INDEX images_relabelled ON images (id) WHERE relabelled_by IS NOT NULL;
