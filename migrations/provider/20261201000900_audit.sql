-- The audit trail: security events, newest last. No secrets: sessions appear by their public
-- handle (the `sid` of tokens), tokens by kind, users and clients by id.
CREATE TABLE audit_events (
    id TEXT PRIMARY KEY,
    at_us BIGINT NOT NULL,
    kind TEXT NOT NULL,
    user_id TEXT,
    client_id TEXT,
    session TEXT,
    addr TEXT,
    request_id TEXT,
    detail TEXT
);
CREATE INDEX audit_events_at ON audit_events (at_us, id);
