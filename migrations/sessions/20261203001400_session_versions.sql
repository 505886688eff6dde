-- Every write of a session's record (not a touch) moves its version on, and is made only if
-- the version is the one the writer read: concurrent requests of one session never write
-- back each other's stale data (a compare-and-set).
ALTER TABLE sessions ADD COLUMN version BIGINT NOT NULL DEFAULT 0;
