-- Sign-in throttling: failed attempts per account (keyed by a hash of the username, so typed
-- names, and passwords typed into the wrong field, are not kept) and per client address.
CREATE TABLE login_throttle (
    throttle_key TEXT PRIMARY KEY,
    failures BIGINT NOT NULL,
    window_start BIGINT NOT NULL,
    blocked_until BIGINT NOT NULL
);
