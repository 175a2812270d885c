-- How many times each picture's message was handed to the queue. The sweep
-- republishes a pending picture whose message went unanswered; after a bounded
-- number of publishes it stops and marks the picture failed with the reason,
-- instead of republishing a message that is dead-lettered every time.
ALTER TABLE images ADD COLUMN publishes INTEGER NOT NULL DEFAULT 0;
