-- What ended, remembered for a while: an external key (an app's record of the provider's
-- sid) or a user, with the time it ended. A session written under it afterwards (a sign-in
-- that crossed a back-channel logout) is refused by the app.
CREATE TABLE ended_keys (
    marker TEXT PRIMARY KEY,
    ended_at BIGINT NOT NULL,
    keep_until BIGINT NOT NULL
);
CREATE INDEX ended_keys_keep_until ON ended_keys (keep_until);
