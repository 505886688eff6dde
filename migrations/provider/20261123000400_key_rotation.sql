-- Key rotation: a key is published from its creation and signs from activates_at (the newest
-- active key of each algorithm signs); a superseded key is deleted once every token it signed
-- has expired. Existing keys have been active all along.
ALTER TABLE signing_keys ADD COLUMN activates_at BIGINT NOT NULL DEFAULT 0;
