-- What the classifier saw besides the category, and an operator's
-- corrections. Numbered 4 like PostgreSQL's twin (3 is PostgreSQL's roles).
ALTER TABLE images ADD COLUMN breed TEXT;
ALTER TABLE images ADD COLUMN breed_probability REAL;
-- JSON: [{"label": "tabby", "probability": 0.61}, …], the top three classes.
ALTER TABLE images ADD COLUMN why TEXT;
ALTER TABLE images ADD COLUMN relabelled_by TEXT;
ALTER TABLE images ADD COLUMN relabelled_at INTEGER;
ALTER TABLE images ADD COLUMN relabelled_from TEXT
    CHECK (relabelled_from IN ('cat', 'dog', 'other'));

-- Refused pictures (judged neither, or not decodable) now get a listing
-- position too, so they can be paged like cats and dogs: the ones refused
-- before this migration get positions after every existing one, in the order
-- they were refused.
WITH refused AS (
    SELECT id, ROW_NUMBER() OVER (ORDER BY classified_at, id) AS n
    FROM images
    WHERE gallery_seq IS NULL AND (category = 'other' OR status = 'rejected')
)
UPDATE images
SET gallery_seq = (SELECT gallery_seq FROM gallery_state WHERE id = 1)
    + (SELECT n FROM refused WHERE refused.id = images.id)
WHERE id IN (SELECT id FROM refused);
UPDATE gallery_state
SET gallery_seq = MAX(gallery_seq, (SELECT COALESCE(MAX(gallery_seq), 0) FROM images))
WHERE id = 1;

-- The refused listing, newest first.
CREATE INDEX images_refused ON images (gallery_seq DESC)
    WHERE gallery_seq IS NOT NULL AND (category = 'other' OR status = 'rejected');
-- `breed=` filters, case-insensitively.
CREATE INDEX images_by_breed ON images (lower(breed), gallery_seq DESC)
    WHERE gallery_seq IS NOT NULL;

-- The refused listing's size, kept like the other counts.
ALTER TABLE gallery_state ADD COLUMN rejected_count BIGINT NOT NULL DEFAULT 0;
UPDATE gallery_state
SET rejected_count = (SELECT COUNT(*) FROM images WHERE status = 'rejected')
WHERE id = 1;
