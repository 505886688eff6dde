-- Durable session ends. The ledger of SSO sessions is now written at sign-in, before the
-- session store holds the session, and it is the authority on which sessions exist: an end is
-- recorded here (with its revocations and back-channel logouts, in one transaction) before the
-- session is removed from the session store, and `removed_at` says that removal was confirmed,
-- so an end interrupted between the two (a crash, an outage) is finished by the maintenance
-- loop rather than lost.
ALTER TABLE sso_sessions ADD COLUMN removed_at BIGINT;
UPDATE sso_sessions SET removed_at = ended_at WHERE ended_at IS NOT NULL;
CREATE INDEX sso_sessions_unremoved ON sso_sessions (ended_at) WHERE removed_at IS NULL;
CREATE INDEX sso_sessions_user ON sso_sessions (user_id);

-- A user's sessions epoch: moved on by "sign out everywhere", a password change and a
-- disabled account. A sign-in records its session only if the epoch (and the password hash)
-- it read before hashing are still current, so such a change made during the hash wins.
ALTER TABLE users ADD COLUMN session_epoch BIGINT NOT NULL DEFAULT 0;
