-- Single logout. Portable SQL (SQLite and PostgreSQL).

-- Which clients obtained a code through which SSO session (sid): the audience of its logout.
CREATE TABLE session_clients (
    sid TEXT NOT NULL,
    client_id TEXT NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    user_id TEXT NOT NULL,
    joined_at BIGINT NOT NULL,
    PRIMARY KEY (sid, client_id)
);
CREATE INDEX session_clients_user_id ON session_clients (user_id);

-- The back-channel logout outbox: one row per (ended session, client), delivered with retries,
-- kept across restarts, claimed by one instance at a time (next_attempt_at is the lease).
CREATE TABLE logout_deliveries (
    id TEXT PRIMARY KEY,
    sid TEXT NOT NULL,
    client_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    uri TEXT NOT NULL,
    cause TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    delivered_at BIGINT
);
CREATE INDEX logout_deliveries_due ON logout_deliveries (state, next_attempt_at);
CREATE INDEX logout_deliveries_user ON logout_deliveries (user_id, created_at);

-- OIDC Back-Channel Logout 1.0 §2.2 client metadata.
ALTER TABLE clients ADD COLUMN backchannel_logout_session_required BIGINT NOT NULL DEFAULT 1;

-- Users can be disabled and change passwords; both end their sessions.
