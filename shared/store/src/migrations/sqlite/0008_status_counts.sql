-- How many pictures each status holds, kept as the rows change, so that
-- /api/v1/stats reads four rows instead of counting the whole table. Triggers
-- keep the counts, in the transaction that changes a status, whichever
-- statement does it (PostgreSQL's migration 0008 does the same).
CREATE TABLE status_counts (
    status  TEXT PRIMARY KEY CHECK (status IN ('pending', 'classified', 'rejected', 'failed')),
    n       INTEGER NOT NULL
);

INSERT INTO status_counts (status, n)
SELECT s.status, (SELECT count(*) FROM images WHERE images.status = s.status)
FROM (SELECT 'pending' AS status UNION ALL SELECT 'classified'
      UNION ALL SELECT 'rejected' UNION ALL SELECT 'failed') AS s;

CREATE TRIGGER images_status_inserted AFTER INSERT ON images
BEGIN
    UPDATE status_counts SET n = n + 1 WHERE status = NEW.status;
END;

CREATE TRIGGER images_status_changed AFTER UPDATE OF status ON images
WHEN OLD.status IS NOT NEW.status
BEGIN
    UPDATE status_counts SET n = n - 1 WHERE status = OLD.status;
    UPDATE status_counts SET n = n + 1 WHERE status = NEW.status;
END;

CREATE TRIGGER images_status_deleted AFTER DELETE ON images
BEGIN
    UPDATE status_counts SET n = n - 1 WHERE status = OLD.status;
END;

-- The relabelled pictures, counted by /api/v1/stats too: few, so a partial
-- index makes the count read only them.
CREATE INDEX images_relabelled ON images (id) WHERE relabelled_by IS NOT NULL;
