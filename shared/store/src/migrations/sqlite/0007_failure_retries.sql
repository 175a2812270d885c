-- How many rounds of publishes the sweep has given a failed picture. A
-- picture is marked failed when its message went unanswered max_publishes
-- times; such a failure is ours (storage, database, a timeout: a picture that
-- cannot be decoded is rejected instead), and the fault may be gone later, so
-- the sweep makes it pending again after a wait that doubles with each round,
-- a bounded number of rounds (ImageStore::retry_failed).
ALTER TABLE images ADD COLUMN retries INTEGER NOT NULL DEFAULT 0;
